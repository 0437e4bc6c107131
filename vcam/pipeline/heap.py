"""Returning freed heap memory to the OS after large objects (an ONNX Runtime session) go.

glibc keeps freed memory in per-thread arenas; after a model is replaced a few times the
resident size creeps up although nothing leaks. ``malloc_trim(0)`` gives it back. On other
C libraries and systems this does nothing.
"""

from __future__ import annotations

import gc
import logging

from vcam.pipeline.libc import libc

__all__ = ["trim_heap"]

log = logging.getLogger(__name__)


def trim_heap() -> bool:
    """Collect garbage and return free heap memory to the OS; True when glibc did it."""
    gc.collect()
    c = libc()
    trim = getattr(c, "malloc_trim", None) if c is not None else None  # absent on musl
    if trim is None:
        return False
    trim(0)
    return True
