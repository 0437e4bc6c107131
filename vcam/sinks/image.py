"""One still picture (``.png``, ``.jpg``): ``vcam process photo.jpg -o photo-blur.png``.

The picture is written to a hidden temporary file beside the output and put in place only when
complete (:func:`vcam.media.paths.place_file`: an existing file is replaced only with
``overwrite``). PNG keeps the alpha of ``--mode remove`` (RGBA); JPEG has none. A still
picture holds one frame: an input with more is refused at its second frame, and nothing is
written.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import cv2
import numpy as np

from vcam.errors import OutputError
from vcam.media.paths import place_file, temp_file_beside

__all__ = ["ImageSink"]

log = logging.getLogger(__name__)
_JPEG_QUALITY = 95


class ImageSink:
    """``send(image)`` takes the one picture: (H, W, 3) uint8 RGB, or (H, W, 4) RGBA with
    ``alpha``; ``kind`` is ``png`` or ``jpeg``. ``close()`` writes it."""

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        *,
        kind: str,
        alpha: bool = False,
        overwrite: bool = False,
        temp_tag: str = "",
    ) -> None:
        if alpha and kind != "png":
            raise OutputError(f"output {path}: a {kind} picture cannot keep transparency; use .png")
        self.path = Path(path).expanduser()
        self.name = str(self.path)
        self.size, self.alpha, self.kind = size, alpha, kind
        self._overwrite = overwrite
        self._temp_tag = temp_tag
        self._image: np.ndarray | None = None
        self._tmp: Path | None = None

    def send(
        self,
        image: np.ndarray,
        pts: float | None = None,
        *,
        ticks: int | None = None,
        duration: int | None = None,
    ) -> None:
        channels = 4 if self.alpha else 3
        if image.shape != (self.size[1], self.size[0], channels) or image.dtype != np.uint8:
            raise ValueError(
                f"expected ({self.size[1]}, {self.size[0]}, {channels}) uint8, got {image.shape} {image.dtype}"
            )
        if self._image is not None:
            raise OutputError(
                f"output {self.path}: a still picture holds one frame, but the input has more; write a video "
                "(.mp4, .mov, .mkv, .webm) or a folder of PNG files (--codec png)"
            )
        self._image = image.copy()

    def close(self) -> None:
        """Write the picture and put it in place (OutputError when that fails)."""
        if self._image is None:
            raise OutputError(f"output {self.path}: the input has no picture to write")
        code = cv2.COLOR_RGBA2BGRA if self.alpha else cv2.COLOR_RGB2BGR
        bgr = cv2.cvtColor(self._image, code)
        parent = self.path.parent if str(self.path.parent) else Path(".")
        suffix = ".png" if self.kind == "png" else ".jpg"
        try:
            self._tmp = temp_file_beside(self.path.with_suffix(suffix), parent, self._temp_tag)
        except OSError as exc:
            raise OutputError(
                f"output {self.path}: cannot write in {parent} ({exc.strerror or exc})"
            ) from exc
        params = (
            [cv2.IMWRITE_PNG_COMPRESSION, 6]
            if self.kind == "png"
            else [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]
        )
        if not cv2.imwrite(str(self._tmp), bgr, params):
            self.abort()
            raise OutputError(f"output {self.path}: cannot write the picture (disk full?)")
        try:
            place_file(self._tmp, self.path, self._overwrite)
        finally:
            self._tmp = None
        log.debug("wrote %s (%dx%d %s)", self.path, *self.size, "RGBA" if self.alpha else "RGB")

    def abort(self) -> None:
        """Remove the temporary file, if any; the output name is left untouched."""
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.unlink(missing_ok=True)
            self._tmp = None
        self._image = None

    @property
    def frames_written(self) -> int:
        return 0 if self._image is None else 1
