"""Consumers of the virtual camera: :func:`count_consumers` / :class:`ConsumerMonitor` count
the processes that hold the v4l2loopback device open, by scanning ``/proc/<pid>/fd`` (Linux
only), so live mode can open the webcam on demand (the gate of
:class:`~vcam.sources.gated.GatedSource`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from vcam.frames import placeholder_image
from vcam.media.devices import count_consumers, device_holders
from vcam.sources.gated import GatedSource

__all__ = [
    "ConsumerMonitor",
    "GatedSource",
    "count_consumers",
    "device_holders",
    "placeholder_image",
]

log = logging.getLogger(__name__)


class ConsumerMonitor:
    """Polls ``counter()`` and reports changes of the count to ``on_change(count)``.

    ``poll()`` is the thread-free twin of ``run(stop)``, which polls every ``interval`` seconds
    in the calling thread until ``stop`` is set. ``enabled()`` (default: always) skips the
    scan while on-demand mode is switched off. The first poll always reports.
    """

    def __init__(
        self,
        counter: Callable[[], int],
        on_change: Callable[[int], None],
        *,
        interval: float = 0.5,
        enabled: Callable[[], bool] | None = None,
    ) -> None:
        self._counter, self._on_change = counter, on_change
        self.interval = interval
        self._enabled = enabled or (lambda: True)
        self.count: int | None = None

    def poll(self) -> int | None:
        """Count once; calls ``on_change`` when the count differs from the last one."""
        if not self._enabled():
            return self.count
        n = self._counter()
        if n != self.count:
            if self.count is not None:
                log.info("virtual camera consumers: %d -> %d", self.count, n)
            self.count = n
            self._on_change(n)
        return n

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            self.poll()
