"""A folder of PNG files (``000000.png``, ``000001.png``, ...) for editors, RGBA for transparency.

Written into a hidden temporary folder beside the output that is moved into place only when
complete. An existing folder is kept, never deleted: with ``overwrite`` only vcam's own files
in it (``000000.png`` ..., ``audio.mka``) are replaced, and a folder holding anything else is
refused (see :func:`vcam.media.paths.place_folder`). The input's audio, if any, is copied packet for packet into ``audio.mka`` in the same folder
(an image sequence has no place for it). Pictures are upright: PNG files carry no display
matrix.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import av
import av.error
import cv2
import numpy as np

from vcam.errors import InputError, OutputError
from vcam.media.audio import AudioCopier
from vcam.media.paths import PNG_SEQUENCE, check_folder, place_folder, temp_dir_beside
from vcam.media.reader import VideoInfo

__all__ = ["AUDIO_NAME", "PngSequenceSink"]

log = logging.getLogger(__name__)
AUDIO_NAME = "audio.mka"


class PngSequenceSink:
    """``send(image)`` writes the next picture: (H, W, 3) uint8 RGB, or (H, W, 4) RGBA with ``alpha``."""

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        *,
        alpha: bool = False,
        overwrite: bool = False,
        like: VideoInfo | None = None,
        audio: bool = True,
        temp_tag: str = "",
    ) -> None:
        self.path = Path(path).expanduser()
        self.name = str(self.path)
        self.size, self.alpha = size, alpha
        self._overwrite = overwrite
        parent = check_folder(self.path, PNG_SEQUENCE, overwrite)
        try:
            self._tmp = temp_dir_beside(self.path, parent, temp_tag)
        except OSError as exc:
            raise OutputError(f"output {self.path}: cannot write in {parent} ({exc.strerror})") from exc
        self._like = like if audio and like is not None and like.audio_streams else None
        self._n = 0

    def send(self, image: np.ndarray, pts: float | None = None, *, ticks: int | None = None, duration: int | None = None) -> None:
        channels = 4 if self.alpha else 3
        if image.shape != (self.size[1], self.size[0], channels) or image.dtype != np.uint8:
            raise ValueError(f"expected ({self.size[1]}, {self.size[0]}, {channels}) uint8, got {image.shape} {image.dtype}")
        bgr = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if self.alpha else cv2.COLOR_RGB2BGR)
        name = self._tmp / f"{self._n:06d}.png"
        if not cv2.imwrite(str(name), bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            self.abort()
            raise OutputError(f"output {self.path}: cannot write {name.name} (disk full?)")
        self._n += 1

    def close(self) -> None:
        """Copy the audio, then move the finished files into the output folder."""
        try:
            if self._like is not None:
                self._write_audio(self._like)
            place_folder(self._tmp, self.path, PNG_SEQUENCE, self._overwrite)
        except BaseException:
            self.abort()
            raise
        log.debug("wrote %d PNG files to %s", self._n, self.path)

    def _write_audio(self, like: VideoInfo) -> None:
        target = self._tmp / AUDIO_NAME
        try:
            out = av.open(str(target), "w", format="matroska")
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"output {self.path}: cannot write {AUDIO_NAME} ({exc})") from exc
        try:
            copier = AudioCopier(like.path, out, f"output {self.path / AUDIO_NAME}", like.start_offset)
            copier.finish()
        except (OutputError, InputError):
            out.close()
            raise
        except (av.error.FFmpegError, OSError) as exc:
            out.close()
            raise OutputError(f"output {self.path}: writing {AUDIO_NAME} failed ({exc})") from exc
        out.close()

    def abort(self) -> None:
        """Delete the temporary folder (vcam's own); the output name is left untouched."""
        shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def frames_written(self) -> int:
        return self._n
