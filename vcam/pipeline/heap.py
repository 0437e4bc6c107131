"""Returning freed heap memory to the OS after large objects (an ONNX Runtime session) go.

glibc keeps freed memory in per-thread arenas; after a model is replaced a few times the
resident size creeps up although nothing leaks. ``malloc_trim(0)`` gives it back. On other
C libraries and systems this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import platform

__all__ = ["trim_heap"]

log = logging.getLogger(__name__)
_libc: ctypes.CDLL | None = None
_checked = False


def trim_heap() -> bool:
    """Collect garbage and return free heap memory to the OS; True when glibc did it."""
    global _libc, _checked
    gc.collect()
    if not _checked:
        _checked = True
        if platform.system() == "Linux":
            try:
                _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                _libc.malloc_trim  # noqa: B018 - absent on musl: AttributeError
            except (OSError, AttributeError):
                _libc = None
    if _libc is None:
        return False
    _libc.malloc_trim(0)
    return True
