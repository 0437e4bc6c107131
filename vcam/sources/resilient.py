"""A source that survives camera faults: it never stops delivering frames while live.

When the wrapped source fails (unplugged, taken by another application, read errors), the
last good frame is repeated for ``hold_s`` seconds, then a "camera unavailable" placeholder
is shown, while the source is reopened with exponential backoff. The first frame after a
reopen is marked ``restart`` so the matting state is reset.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from vcam.backoff import Backoff
from vcam.errors import VcamError
from vcam.frames import Frame, placeholder_image
from vcam.sources import Source
from vcam.sources.pacing import StopSleep, bind_stop

__all__ = ["ResilientSource"]

log = logging.getLogger(__name__)


class ResilientSource:
    """Wraps ``open_source()``; see the module docstring. ``read()`` never returns None and
    raises nothing for source failures (they are logged); it paces stand-in frames at ``fps``.
    """

    def __init__(
        self,
        open_source: Callable[[], Source],
        size: tuple[int, int],
        fps: float,
        *,
        hold_s: float = 1.0,
        backoff_s: tuple[float, float] = (0.5, 10.0),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        first: Source | None = None,
    ) -> None:
        self._open = open_source
        self.size, self.fps = size, fps
        self.hold_s = hold_s
        self._backoff = Backoff(*backoff_s)
        self._clock, self._sleep = clock, StopSleep(sleep)
        self._stop: threading.Event | None = None
        self._inner: Source | None = first
        self.name = first.name if first is not None else "camera"
        self._last: Frame | None = None
        self._failed_at: float | None = None
        self._restart = False
        self._index = 0
        self._next_standin = 0.0
        self._placeholder = placeholder_image(size, "camera unavailable - reconnecting")
        self.failures = 0
        self.reopens = 0

    @property
    def available(self) -> bool:
        """Whether the real source is delivering."""
        return self._inner is not None

    def _fail(self, exc: BaseException) -> None:
        now = self._clock()
        self.failures += 1
        log.warning("%s failed: %s; reconnecting", self.name, exc)
        if self._inner is not None:
            try:
                self._inner.close()
            except Exception as close_exc:  # noqa: BLE001 - a broken device may fail to close too
                log.debug("closing %s failed: %s", self.name, close_exc)
        self._inner = None
        self._failed_at = now
        self._backoff.failed(now)

    def _try_reopen(self) -> None:
        now = self._clock()
        if not self._backoff.due(now):
            return
        try:
            self._inner = self._open()
        except VcamError as exc:
            delay = self._backoff.retry_failed(now)
            log.info("%s still unavailable (%s); next try in %.1f s", self.name, exc, delay)
            return
        if self._stop is not None:
            bind_stop(self._inner, self._stop)
        self.name = self._inner.name
        self.reopens += 1
        self._restart = True
        log.warning("%s is back", self.name)

    def _standin(self) -> Frame:
        now = self._clock()
        if self._next_standin > now:
            self._sleep(self._next_standin - now)  # ends early on a stop (stop_on)
            now = self._clock()
        self._next_standin = now + 1.0 / self.fps
        holding = self._last is not None and self._failed_at is not None and now - self._failed_at < self.hold_s
        image = self._last.image if holding and self._last is not None else self._placeholder
        frame = Frame(image, self._index, now, placeholder=True)
        self._index += 1
        return frame

    def read(self) -> Frame:
        if self._inner is None:
            self._try_reopen()
        if self._inner is not None:
            try:
                frame = self._inner.read()
                if frame is None:
                    raise VcamError(f"{self.name} ended")
            except Exception as exc:  # noqa: BLE001 - any source failure is survivable here
                self._fail(exc)
                return self._standin()
            out = Frame(frame.image, self._index, frame.timestamp, frame.pts, restart=self._restart or frame.restart)
            self._restart = False
            self._index += 1
            self._last = out
            return out
        return self._standin()

    def stop_on(self, stop: threading.Event) -> None:
        """End the wait for a stand-in frame, and the wrapped source's waits (this one's and
        those of sources reopened later), as soon as ``stop`` is set."""
        self._stop = stop
        self._sleep.bind(stop)
        if self._inner is not None:
            bind_stop(self._inner, stop)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None
