"""A video file sink (PyAV / FFmpeg, H.264 in MP4 by default) that never leaves a partial file.

Frames are written to a hidden temporary file in the output's folder; ``close()`` renames it
onto the output name only after the encoder was flushed, and ``abort()`` deletes it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.error
import numpy as np

from vcam.errors import OutputError

__all__ = ["FileSink"]

log = logging.getLogger(__name__)


class FileSink:
    """Encodes RGB pictures into ``path``.

    ``time_base`` is the unit of the written timestamps: pts (seconds) passed to ``send`` are
    kept exactly when it equals the input's time base. Without pts, frame ``n`` is at
    ``n / fps``.
    """

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        fps: float | Fraction,
        *,
        codec: str = "libx264",
        crf: int = 18,
        preset: str = "veryfast",
        time_base: Fraction | None = None,
        overwrite: bool = True,
    ) -> None:
        self.path = Path(path).expanduser()
        self.name = str(self.path)
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if self.path.exists() and not overwrite:
            raise OutputError(f"output {self.path} already exists; pass --overwrite to replace it")
        if self.path.is_dir():
            raise OutputError(f"output {self.path} is a folder; give a file name such as out.mp4")
        if not parent.is_dir():
            raise OutputError(f"output {self.path}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise OutputError(f"output {self.path}: folder {parent} is not writable")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".part{self.path.suffix}", dir=parent)
        os.close(fd)
        self._tmp = Path(tmp)
        rate = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
        self.time_base = time_base or 1 / rate
        self._fps = float(rate)
        self._n = 0
        self._last_pts = -1
        try:
            self._container = av.open(str(self._tmp), "w", format=_format_for(self.path))
            self._stream = cast(av.VideoStream, self._container.add_stream(codec, rate=rate))
            self._stream.width, self._stream.height = size
            even = size[0] % 2 == 0 and size[1] % 2 == 0
            self._stream.pix_fmt = "yuv420p" if even else "yuv444p"
            self._stream.codec_context.time_base = self.time_base
            self._stream.time_base = self.time_base
            if codec == "libx264":
                self._stream.options = {"crf": str(crf), "preset": preset}
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            self._tmp.unlink(missing_ok=True)
            raise OutputError(f"output {self.path}: cannot write this format ({exc})") from exc

    def send(self, image: np.ndarray, pts: float | None = None) -> None:
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        ticks = round(pts / self.time_base) if pts is not None else round(self._n / self._fps / self.time_base)
        ticks = max(ticks, self._last_pts + 1)  # encoders need strictly increasing pts
        frame.pts, frame.time_base = ticks, self.time_base
        self._last_pts = ticks
        self._n += 1
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except (av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"output {self.path}: writing failed ({exc})") from exc

    def close(self) -> None:
        """Flush the encoder and move the finished file onto the output name."""
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        except (av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"output {self.path}: finishing the file failed ({exc})") from exc
        os.replace(self._tmp, self.path)
        log.info("wrote %d frames to %s", self._n, self.path)

    def abort(self) -> None:
        """Stop writing and delete the temporary file; the output name is left untouched."""
        try:
            self._container.close()
        except (av.error.FFmpegError, OSError, ValueError):
            pass
        self._tmp.unlink(missing_ok=True)

    @property
    def frames_written(self) -> int:
        return self._n


def _format_for(path: Path) -> str | None:
    return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}.get(
        path.suffix.lower()
    )
