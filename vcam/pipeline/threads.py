"""Worker threads: joining them at shutdown (bounded, and loud when one does not stop),
naming them for the OS, and reading each one's CPU time (for ``vcam bench``)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable

from vcam.pipeline.libc import libc

__all__ = ["join_threads", "name_native_thread", "thread_cpu_seconds"]

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


_PR_SET_NAME = 15  # from <linux/prctl.h>


def name_native_thread(name: str) -> None:
    """Give the calling thread ``name`` (15 bytes at most) at the OS level too, so ``top -H``,
    ``ps -L`` and :func:`thread_cpu_seconds` show it. Linux only; elsewhere it does nothing."""
    c = libc()
    prctl = getattr(c, "prctl", None) if c is not None else None
    if prctl is not None:  # names are cosmetic: without prctl there are none
        prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def thread_cpu_seconds() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) each thread of this process has used, by thread id, with
    its OS-level name. Empty where ``/proc`` is not available."""
    out: dict[int, tuple[str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return out
