"""Frame sources: webcams, video files (looped and paced for live use) and a test pattern.

Every source yields :class:`vcam.frames.Frame` objects with RGB uint8 images; colour
conversion from the device's format happens inside the source.
"""

from __future__ import annotations

from typing import Protocol

from vcam.frames import Frame

__all__ = ["Source"]


class Source(Protocol):
    """``read()`` returns the next frame, or None at the end of a finite source."""

    name: str
    fps: float

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...
