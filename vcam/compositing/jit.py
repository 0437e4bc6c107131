"""vcam's compiled loops (numba), with their on-disk cache in the user cache folder.

numba caches a compiled function beside its source (``__pycache__``) when that folder is
writable. In an installed vcam that is ``site-packages/vcam/``, with files pip does not know
of: after ``pip uninstall``, or an editable install over a plain one (what ``scripts/check``
does after the README's quick start), the leftover folder shadowed the new install
(``cannot import name '__version__' from 'vcam' (unknown location)``). So the cache goes to
``$XDG_CACHE_HOME/vcam/numba`` (``~/.cache/vcam/numba``); a ``NUMBA_CACHE_DIR`` the user
set is kept.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from numba import config, njit

__all__ = ["cache_dir", "compiled"]


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/vcam/numba``, else ``~/.cache/vcam/numba``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME", "~"), ".cache")
    return Path(os.path.expanduser(base)) / "vcam" / "numba"


def compiled(signature: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(signature, cache=True, nogil=True)``, caching in :func:`cache_dir`: compiled
    when the decorated module is imported (the first frame does not wait), from the cache
    after the first time."""
    if not config.CACHE_DIR:  # type: ignore[attr-defined]  # numba read NUMBA_CACHE_DIR at its import
        config.CACHE_DIR = str(cache_dir())  # type: ignore[attr-defined]
    decorate: Callable[[Callable[..., Any]], Any] = njit(signature, cache=True, nogil=True)
    return decorate
