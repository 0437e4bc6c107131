"""Sinks: where finished pictures go (virtual camera, file, preview window, nowhere).

``send(image, pts)`` takes an (H, W, 3) uint8 RGB picture at the sink's size and, for file
sinks, its presentation time in seconds; ``close()`` releases the device or finishes the file.
A sink whose user can ask to stop (the preview window) raises :class:`StopRequested` from
``send`` and may also offer ``stop_requested() -> bool``, which the live runner polls so the
stop is seen while no picture is being sent.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["Sink", "StopRequested"]


class StopRequested(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a sink whose user asked to stop (e.g. closed the preview window)."""


class Sink(Protocol):
    name: str

    def send(self, image: np.ndarray, pts: float | None = None) -> None: ...

    def close(self) -> None: ...
