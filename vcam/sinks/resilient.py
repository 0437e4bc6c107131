"""A sink that survives write failures of a device (the virtual camera) while running.

When ``send`` fails, the device is closed, the failure is logged with the device and the
reason, and it is reopened with exponential backoff; frames offered in between are dropped
(counted in ``dropped``). Opening at start is not wrapped: a device that cannot be opened
at all is a clear error for the user.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from vcam.backoff import Backoff
from vcam.errors import VcamError
from vcam.sinks import Sink

__all__ = ["ResilientSink"]

log = logging.getLogger(__name__)


class ResilientSink:
    """Wraps a sink made by ``open_sink()``; ``first`` is the already opened one."""

    def __init__(
        self,
        open_sink: Callable[[], Sink],
        first: Sink,
        *,
        backoff_s: tuple[float, float] = (0.5, 10.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open = open_sink
        self._inner: Sink | None = first
        self.name = first.name
        # the device node (for counting its consumers) stays the same across reopens
        self.device: str | None = getattr(first, "device", None)
        self._backoff = Backoff(*backoff_s)
        self._clock = clock
        self.dropped = 0
        self.failures = 0
        self.reopens = 0

    @property
    def available(self) -> bool:
        """Whether the device is open (False while it is being reopened)."""
        return self._inner is not None

    def send(self, image: np.ndarray, pts: float | None = None) -> None:
        if self._inner is None and not self._reopen():
            self.dropped += 1
            return
        assert self._inner is not None
        try:
            self._inner.send(image, pts)
        except VcamError as exc:
            self.failures += 1
            self.dropped += 1
            log.warning("%s: %s; reopening it", self.name, exc)
            try:
                self._inner.close()
            except Exception as close_exc:  # noqa: BLE001 - a failed device may not close cleanly
                log.debug("closing %s failed: %s", self.name, close_exc)
            self._inner = None
            self._backoff.failed(self._clock())

    def _reopen(self) -> bool:
        now = self._clock()
        if not self._backoff.due(now):
            return False
        try:
            self._inner = self._open()
        except VcamError as exc:
            delay = self._backoff.retry_failed(now)
            log.info("%s still unavailable (%s); next try in %.1f s", self.name, exc, delay)
            return False
        self.reopens += 1
        log.warning("%s is back", self.name)
        return True

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None
