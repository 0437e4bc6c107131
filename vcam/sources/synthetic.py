"""A synthetic test pattern source: checks the whole path to the call app without a webcam."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from vcam.frames import Frame
from vcam.sources.pacing import StopSleep

__all__ = ["TestPatternSource"]


class TestPatternSource:
    """Colour bars with a moving head-and-shoulders silhouette and a frame counter.

    ``frames`` = 0 means endless; ``pace`` hands frames out at ``fps`` on ``clock``
    (``sleep`` waits; by default the real clock, cut short by the event of ``stop_on``).
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        size: tuple[int, int] = (1280, 720),
        fps: float = 30.0,
        frames: int = 0,
        pace: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.name = "test pattern"
        self.size, self.fps, self.frames, self.pace = size, fps, frames, pace
        self._clock, self._sleep = clock, StopSleep(sleep)
        w, h = size
        bars = np.array(
            [[192, 192, 192], [192, 192, 0], [0, 192, 192], [0, 192, 0], [192, 0, 192], [192, 0, 0], [0, 0, 192]],
            np.uint8,
        )
        cols = (np.arange(w) * len(bars) // w).clip(0, len(bars) - 1)
        self._bars = np.ascontiguousarray(np.broadcast_to(bars[cols][None], (h, w, 3)))
        self._index = 0
        self._t0: float | None = None

    def read(self) -> Frame | None:
        if self.frames and self._index >= self.frames:
            return None
        if self.pace:
            now = self._clock()
            if self._t0 is None:
                self._t0 = now
            delay = self._t0 + self._index / self.fps - now
            self._sleep(delay)
        w, h = self.size
        img = self._bars.copy()
        cx = int(w / 2 + w * 0.15 * math.sin(self._index / 30.0))
        cv2.ellipse(img, (cx, h), (int(w * 0.22), int(h * 0.35)), 0, 180, 360, (40, 60, 120), -1)
        cv2.circle(img, (cx, int(h * 0.42)), int(h * 0.16), (210, 170, 140), -1)
        cv2.putText(img, f"vcam {self._index}", (20, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
        frame = Frame(img, self._index, self._clock(), pts=self._index / self.fps)
        self._index += 1
        return frame

    def stop_on(self, stop: threading.Event) -> None:
        """End a wait for the next frame as soon as ``stop`` is set."""
        self._sleep.bind(stop)

    def close(self) -> None:
        pass
