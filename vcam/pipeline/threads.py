"""Joining worker threads at shutdown: bounded, and loud when one does not stop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

__all__ = ["join_threads"]

log = logging.getLogger(__name__)


def join_threads(threads: Iterable[threading.Thread], timeout_s: float) -> list[str]:
    """Join each thread for at most ``timeout_s`` seconds; log and return the names of the
    ones still running (daemon threads, so they cannot keep the process alive)."""
    stuck = []
    for t in threads:
        t.join(timeout_s)
        if t.is_alive():
            log.error("thread %s did not stop within %.0f s", t.name, timeout_s)
            stuck.append(t.name)
    return stuck
