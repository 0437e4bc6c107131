"""vcam's compiled loops (numba), loaded when a pipeline is put together, cached in the user
cache folder.

Loading is deferred: a module declares its loops with :func:`compiled` and a signature made of
names and :class:`Array` specs, which neither imports numba nor compiles. :func:`load_all`
(called by :class:`~vcam.pipeline.Stages` once a run's inputs were checked, so the first frame
does not wait) compiles every loop declared so far, from the on-disk cache after the first
time; a loop not loaded yet is loaded on its first call. So bad input (a missing source,
background or output folder) fails without importing numba (and scipy, which numba imports
when it is installed): docs/performance.md, "Bad input fails before numba loads".

numba caches a compiled function beside its source (``__pycache__``) when that folder is
writable. In an installed vcam that is ``site-packages/vcam/``, with files pip does not know
of: after ``pip uninstall``, or an editable install over a plain one (what ``scripts/check``
does after the README's quick start), the leftover folder shadowed the new install
(``cannot import name '__version__' from 'vcam' (unknown location)``). So the cache goes to
``$XDG_CACHE_HOME/vcam/numba`` (``~/.cache/vcam/numba``); a ``NUMBA_CACHE_DIR`` the user
set is kept.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Array", "Loop", "cache_dir", "compiled", "load_all"]


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/vcam/numba``, else ``~/.cache/vcam/numba``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME", "~"), ".cache")
    return Path(os.path.expanduser(base)) / "vcam" / "numba"


@dataclass(frozen=True)
class Array:
    """A C-contiguous array type in a loop's signature: numba's ``types.Array(dtype, ndim,
    "C", readonly=readonly)``, built when the loop is compiled. ``dtype`` names a numba type
    (``"uint8"``, ``"float32"``, ``"int64"``)."""

    dtype: str
    ndim: int
    readonly: bool = False


_Type = str | Array  # a numba scalar type by name ("void", "int64", "boolean", ...) or an Array


def _resolve(spec: _Type, types: Any) -> Any:
    if isinstance(spec, Array):
        return types.Array(getattr(types, spec.dtype), spec.ndim, "C", readonly=spec.readonly)
    return getattr(types, spec)


_LOCK = threading.RLock()
_LOOPS: list[Loop] = []


class Loop:
    """A loop declared with :func:`compiled`: callable as the function it wraps; compiled on
    :meth:`load` (or its first call). Once loaded, the module's global of the same name is the
    compiled function itself, so compiled loops that call each other, and later calls from
    Python, go to numba directly."""

    def __init__(self, func: Callable[..., Any], result: Any, args: tuple[_Type, ...]) -> None:
        functools.update_wrapper(self, func)
        self._func, self._result, self._args = func, result, args
        self._compiled: Any = None

    def load(self) -> Any:
        """Compile (or read from the cache) once; returns numba's dispatcher."""
        with _LOCK:
            if self._compiled is None:
                scope = self._func.__globals__
                for name in self._func.__code__.co_names:  # loops it calls are compiled first
                    callee = scope.get(name)
                    if isinstance(callee, Loop) and callee is not self:
                        callee.load()
                from numba import config, njit, types

                if not config.CACHE_DIR:  # type: ignore[attr-defined]  # numba read NUMBA_CACHE_DIR at its import
                    config.CACHE_DIR = str(cache_dir())  # type: ignore[attr-defined]
                if isinstance(self._result, (str, Array)):
                    signature = _resolve(self._result, types)(*(_resolve(a, types) for a in self._args))
                else:  # a signature numba built already (types.void(...))
                    signature = self._result
                self._compiled = njit(signature, cache=True, nogil=True)(self._func)
                name = self._func.__name__
                if scope.get(name) is self:
                    scope[name] = self._compiled
            return self._compiled

    def __call__(self, *args: Any) -> Any:
        compiled = self._compiled
        if compiled is None:
            compiled = self.load()
        return compiled(*args)


def compiled(result: Any, *args: _Type) -> Callable[[Callable[..., Any]], Any]:
    """Declare a loop ``numba.njit(result(*args), cache=True, nogil=True)``, caching in
    :func:`cache_dir`, compiled by :func:`load_all` or on its first call (module notes).
    ``result`` and ``args`` are numba type names or :class:`Array` specs (``result`` may also
    be a whole numba signature, with no ``args``)."""

    def declare(func: Callable[..., Any]) -> Loop:
        loop = Loop(func, result, args)
        with _LOCK:
            _LOOPS.append(loop)
        return loop

    return declare


def load_all() -> None:
    """Compile (or load from the cache) every loop declared so far, that is in every module
    imported so far; the ones loaded already cost nothing."""
    with _LOCK:
        loops = list(_LOOPS)
    for loop in loops:
        loop.load()
