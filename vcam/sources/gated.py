"""A source behind a gate: the real camera is open only while someone needs it.

:class:`GatedSource` wraps the real source. Before every frame it asks its ``gate`` whether
the camera may be open; while the gate says no (paused, or no application watches the
virtual camera) the camera is released and a placeholder picture is handed out instead, so
the virtual device keeps receiving frames and stays valid for the applications that list it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from vcam.errors import VcamError
from vcam.frames import Frame, placeholder_image
from vcam.sources import Source
from vcam.sources.pacing import bind_stop

__all__ = ["Gate", "GatedSource"]

log = logging.getLogger(__name__)

PLACEHOLDER_FPS = 10.0
RETRY_S = 2.0


Gate = Callable[[], "str | None"]


class GatedSource:
    """A :class:`~vcam.sources.Source` that opens ``factory()`` only while ``gate()`` is None.

    ``gate()`` returns None when the camera is wanted, or the reason it is not (shown on the
    placeholder, e.g. ``"paused"``). The real source is opened at construction, so a missing
    camera is reported at start-up; the first read with a closed gate releases it. While the
    gate is closed, ``read()`` returns placeholder frames of ``size`` at ``placeholder_fps``.
    When the camera cannot be (re)opened, the error is logged once, the placeholder says
    "camera unavailable" and opening is retried every ``retry_s`` seconds.

    ``read``, ``replace`` and ``close`` may be called from different threads.
    """

    def __init__(
        self,
        factory: Callable[[], Source],
        size: tuple[int, int],
        *,
        gate: Gate | None = None,
        placeholder_fps: float = PLACEHOLDER_FPS,
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._factory = factory
        self.size = size
        self._gate: Gate = gate or (lambda: None)
        self._period = 1.0 / placeholder_fps
        self._retry_s = retry_s
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None
        self._closed = False
        self._index = 0
        self._next_placeholder: float | None = None
        self._retry_at = 0.0
        self._error: str | None = None
        self._reason: str | None = None
        self._placeholders: dict[str, np.ndarray] = {}
        self._inner: Source | None = factory()
        self.name = self._inner.name
        self.fps = self._inner.fps

    def stop_on(self, stop: threading.Event) -> None:
        """End the wrapped source's waits as soon as ``stop`` is set (this one's and those of
        sources opened later). Without the lock: a read in progress holds it while it waits."""
        self._stop = stop
        inner = self._inner
        if inner is not None:
            bind_stop(inner, stop)

    def set_gate(self, gate: Gate) -> None:
        """Use ``gate`` from the next frame on."""
        self._gate = gate

    @property
    def state(self) -> str:
        """``"open"``, ``"released (REASON)"`` or ``"unavailable (ERROR)"``, for status displays.

        Read without the lock (which a frame being read may hold for a while): a snapshot.
        """
        inner, error, reason = self._inner, self._error, self._reason
        if inner is not None:
            return "open"
        if error is not None and reason is None:
            return f"unavailable ({error})"
        return f"released ({reason})" if reason else "released"

    def read(self) -> Frame | None:
        reason = self._gate()
        with self._lock:
            if self._closed:
                return self._placeholder("stopped")
            if reason is not None:
                self._reason = reason
                if self._inner is not None:
                    self._release(reason)
                return self._placeholder(reason)
            self._reason = None
            if self._inner is None and not self._try_open():
                return self._placeholder("camera unavailable")
            assert self._inner is not None
            frame = self._inner.read()
            self._next_placeholder = None
            if frame is None:
                return None
            frame.index = self._index
            self._index += 1
            return frame

    def replace(self, factory: Callable[[], Source]) -> None:
        """Switch to a new camera (or camera settings): the current one is closed first.

        When the camera is wanted now, the new one is opened at once; if that fails, the old
        factory is restored (and reopened) and the error is raised.
        """
        with self._lock:
            old = self._factory
            wanted = self._inner is not None
            if self._inner is not None:
                self._inner.close()
                self._inner = None
            self._factory = factory
            self._error = None
            if not wanted:
                return
            try:
                self._inner = self._bound(factory())
            except VcamError:
                self._factory = old
                try:
                    self._inner = self._bound(old())
                except VcamError as exc:
                    self._error = str(exc)
                raise
            self.name, self.fps = self._inner.name, self._inner.fps

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._inner is not None:
                self._inner.close()
                self._inner = None

    # -- helpers (called with the lock held) ---------------------------------------------

    def _bound(self, source: Source) -> Source:
        if self._stop is not None:
            bind_stop(source, self._stop)
        return source

    def _release(self, reason: str) -> None:
        assert self._inner is not None
        self._inner.close()
        self._inner = None
        log.info("released %s (%s)", self.name, reason)

    def _try_open(self) -> bool:
        now = self._clock()
        if now < self._retry_at:
            return False
        try:
            self._inner = self._bound(self._factory())
        except VcamError as exc:
            if str(exc) != self._error:
                log.error("%s; retrying every %g s", exc, self._retry_s)
            self._error = str(exc)
            self._retry_at = now + self._retry_s
            return False
        if self._error is not None:
            log.info("%s is back", self._inner.name)
        else:
            log.info("opened %s", self._inner.name)
        self._error = None
        self.name, self.fps = self._inner.name, self._inner.fps
        return True

    def _placeholder(self, text: str) -> Frame:
        now = self._clock()
        due = self._next_placeholder if self._next_placeholder is not None else now
        if due > now:
            self._sleep(due - now)
            now = self._clock()
        self._next_placeholder = max(due, now - self._period) + self._period
        img = self._placeholders.get(text)
        if img is None:
            img = self._placeholders[text] = placeholder_image(self.size, text)
        frame = Frame(img, self._index, now, placeholder=True)
        self._index += 1
        return frame
