"""Frame sources: webcams, video files (looped and paced for live use) and a test pattern.

Every source yields :class:`vcam.frames.Frame` objects with RGB uint8 images; colour
conversion from the device's format happens inside the source.

Stopping: a source that waits (pacing to a frame rate, stand-in frames) has
``stop_on(stop: threading.Event)``; the live runner binds its stop event before the first
read, and from then on every wait ends as soon as the event is set, so that ``read()``
returns promptly on a stop (:mod:`vcam.sources.pacing`). Wrappers pass the event on to the
source they wrap, also to one they open later. The method is optional: a source without it
never waits longer than a device read.
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
