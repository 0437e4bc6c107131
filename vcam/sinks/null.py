"""The null sink: discards pictures (for measuring), counting them."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

__all__ = ["CountingSink", "NullSink"]


class NullSink:
    name = "null"

    def __init__(self) -> None:
        self.count = 0
        self.last: np.ndarray | None = None

    def send(self, image: np.ndarray, pts: float | None = None) -> None:
        self.count += 1
        self.last = image

    def close(self) -> None:
        pass


class CountingSink:
    """Discards pictures for benchmarks: calls ``every(n)`` with each picture's count and sets
    ``stop`` once ``limit`` pictures were received."""

    name = "null"

    def __init__(self, limit: int, stop: threading.Event, every: Callable[[int], None] | None = None) -> None:
        self.limit, self.stop, self.every, self.count = limit, stop, every, 0

    def send(self, image: np.ndarray, pts: float | None = None) -> None:
        self.count += 1
        if self.every is not None:
            self.every(self.count)
        if self.count >= self.limit:
            self.stop.set()

    def close(self) -> None:
        pass
