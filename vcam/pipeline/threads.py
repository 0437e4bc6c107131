"""Worker threads: :class:`Workers` (named threads that hand their first error back), joining
them at shutdown (bounded, and loud when one does not stop), naming them for the OS, and
reading each one's CPU time (for ``vcam bench``)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable

from vcam.pipeline.libc import libc

__all__ = ["Workers", "join_threads", "name_native_thread", "thread_cpu_seconds"]

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


class Workers:
    """Named daemon threads that hand their first error to the thread that started them.

    ``start(name, body)`` runs ``body()`` on a thread called ``name`` (at the OS level too).
    When a body raises, the exception is kept in ``errors`` (logged first with ``log_errors``)
    and ``stop`` is set, so the others end; every body that ends sets ``ended``, which the
    starting thread may wait on. ``join()`` sets ``stop`` and joins each thread for at most
    ``join_s``; ``raise_first()`` re-raises the first error on the calling thread.
    """

    def __init__(self, stop: threading.Event | None = None, *, join_s: float = 5.0, log_errors: bool = False) -> None:
        self.stop = stop if stop is not None else threading.Event()
        self.ended = threading.Event()
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []
        self._join_s, self._log_errors = join_s, log_errors

    def start(self, name: str, body: Callable[[], object]) -> threading.Thread:
        def target() -> None:
            name_native_thread(name)
            try:
                body()
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                if self._log_errors:
                    log.error("%s failed: %s", name, exc)
                self.errors.append(exc)
                self.stop.set()
            finally:
                self.ended.set()

        t = threading.Thread(target=target, name=name, daemon=True)
        self.threads.append(t)
        t.start()
        return t

    def join(self) -> list[str]:
        """Stop and join every thread started; returns the names of those still running.
        (A stop signal may land between a thread's creation and its start: that one is skipped.)"""
        self.stop.set()
        return join_threads([t for t in self.threads if t.ident is not None], self._join_s)

    def raise_first(self) -> None:
        if self.errors:
            raise self.errors[0]
