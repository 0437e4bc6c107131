"""The wait of a pacing source, which a stop cuts short.

A source that hands frames out at a rate sleeps until the next frame is due; at a low rate
that is a long time (``--fps 0.01``: 100 s), longer than a service manager waits after
SIGTERM. :class:`StopSleep` sleeps on the stop event the live runner binds to the source
(``source.stop_on(stop)``, see :mod:`vcam.sources`), so a stop ends the wait at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["StopSleep", "bind_stop"]


class StopSleep:
    """``sleep(seconds)``: wait that long, or until the bound stop event is set (no wait at
    all once it is). ``sleep`` given: use that instead of the real clock (tests pass a fake
    clock's sleep; it is still skipped once the stop is set)."""

    def __init__(self, sleep: Callable[[float], None] | None = None) -> None:
        self._sleep = sleep
        self._stop: threading.Event | None = None

    def bind(self, stop: threading.Event) -> None:
        """Cut waits short when ``stop`` is set, from now on (replaces an earlier event)."""
        self._stop = stop

    @property
    def stopped(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def __call__(self, seconds: float) -> None:
        stop = self._stop
        if seconds <= 0 or (stop is not None and stop.is_set()):
            return
        if self._sleep is not None:
            self._sleep(seconds)
        elif stop is not None:
            stop.wait(seconds)
        else:
            time.sleep(seconds)


def bind_stop(source: object, stop: threading.Event) -> None:
    """``source.stop_on(stop)`` where the source has it (sources that never wait need not)."""
    stop_on = getattr(source, "stop_on", None)
    if stop_on is not None:
        stop_on(stop)
