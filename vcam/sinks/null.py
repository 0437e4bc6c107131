"""The null sink: discards pictures (for measuring), counting them."""

from __future__ import annotations

import numpy as np

__all__ = ["NullSink"]


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
