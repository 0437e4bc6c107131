"""The C library through ctypes, loaded once; Linux only (None elsewhere or when it cannot be
loaded). Used for malloc_trim (:mod:`vcam.pipeline.heap`) and thread names
(:mod:`vcam.pipeline.threads`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

__all__ = ["libc"]


@functools.cache
def libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
