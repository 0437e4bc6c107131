"""Video files as sources: decoded in order (:class:`~vcam.media.reader.VideoReader`),
optionally looped and paced like a camera."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from vcam.frames import Frame
from vcam.media.reader import CORRUPT_POLICIES, DecodedFrame, VideoReader, format_time
from vcam.sources.pacing import StopSleep

# CORRUPT_POLICIES, DecodedFrame, VideoReader and format_time live in vcam.media.reader (the one
# container decoder); re-exported for the callers of this module's former contents.
__all__ = ["CORRUPT_POLICIES", "MAX_GAP_FRAMES", "MAX_GAP_S", "DecodedFrame", "FileSource", "VideoReader", "format_time"]

log = logging.getLogger(__name__)
# A live file source waits at most this long between two frames (or this many frame periods,
# for files slower than that); a longer step is a discontinuity (FileSource).
MAX_GAP_S = 1.0
MAX_GAP_FRAMES = 3
_WARN_JUMPS = 5  # timestamp jumps reported one by one; the rest are not


class FileSource:
    """A video file as a frame source.

    With ``loop`` it restarts at the end; with ``pace`` it hands frames out at the file's own
    frame rate on ``clock`` (like a camera would). Without either it is a plain reader, where
    nothing is skipped. Pictures are upright (display matrix applied); corrupt frames repeat
    the previous one.

    Frame ``pts`` run on one continuous timeline: a step between two frames that goes back
    (the loop's restart, timestamps that restart) or forward by more than
    :data:`MAX_GAP_S` or :data:`MAX_GAP_FRAMES` frame periods, whichever is longer (two
    recordings joined, a damaged timestamp), is a discontinuity: that frame follows the one
    before it by the last regular step, and the clock is re-anchored there. So a live source
    never freezes for the length of a jump. Waits for the next frame end as soon as the
    event of :meth:`stop_on` is set.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        loop: bool = False,
        pace: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        what: str = "input video",
    ) -> None:
        self.path = Path(path)
        self.what = what
        self.loop, self.pace = loop, pace
        self._clock, self._sleep = clock, StopSleep(sleep)
        self._reader = VideoReader(self.path, what)
        self.fps = self._reader.fps
        self.size = self._reader.size
        self.name = str(self.path)
        self._index = 0
        self._shift = 0.0  # seconds added to the file's pts (loops and discontinuities)
        self._last: float | None = None  # the previous frame's pts on the output timeline
        self._step = 1.0 / self.fps  # the last regular step between frames
        self._max_gap = max(MAX_GAP_S, MAX_GAP_FRAMES / self.fps)
        self._t0: float | None = None
        self._jumps = 0

    def stop_on(self, stop: threading.Event) -> None:
        """End a wait for the next frame as soon as ``stop`` is set."""
        self._sleep.bind(stop)

    def read(self) -> Frame | None:
        item = self._reader.read_frame()
        looped = False
        if item is None and self.loop and self._index > 0:
            looped = True
            if not self._reader.rewind():
                self._reader.close()
                self._reader = VideoReader(self.path, self.what)
            item = self._reader.read_frame()
        if item is None:
            return None
        image, pts = item.image, item.time
        t = self._timeline(pts, looped)
        if self.pace:
            now = self._clock()
            if self._t0 is None:
                self._t0 = now - t
            self._sleep(self._t0 + t - now)  # bounded by the largest gap; ends on a stop
        frame = Frame(image, self._index, self._clock(), pts=t)
        self._index += 1
        return frame

    def _timeline(self, pts: float, looped: bool) -> float:
        """``pts`` on the continuous output timeline (see the class notes)."""
        t = pts + self._shift
        last = self._last
        if last is not None:
            gap = t - last
            if gap < 0 or gap > self._max_gap:
                if not looped:
                    self._jumps += 1
                    if self._jumps <= _WARN_JUMPS:
                        log.warning(
                            "%s %s: timestamps jump by %+.3f s at %s; playing on without the jump%s",
                            self.what, self.path, gap, format_time(pts), " (further ones are not reported)"
                            if self._jumps == _WARN_JUMPS else "",
                        )
                self._shift += last + self._step - t
                t = last + self._step
            elif gap > 0:
                self._step = gap
        self._last = t
        return t

    def close(self) -> None:
        self._reader.close()
