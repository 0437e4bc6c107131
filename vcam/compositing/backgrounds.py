"""Backgrounds for replace mode: a still image or a looping video, cover-fitted to the output."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from vcam.errors import InputError
from vcam.frames import cover_fit
from vcam.sources.file import VideoReader

__all__ = [
    "MAX_IMAGE_PIXELS",
    "VIDEO_SUFFIXES",
    "Background",
    "ImageBackground",
    "VideoBackground",
    "load_background",
    "load_image",
]

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".gif", ".mpg", ".mpeg", ".ogv"})
MAX_IMAGE_PIXELS = 64_000_000


class Background(Protocol):
    """``frame(n)`` is the background for output frame ``n``: (H, W, 3) uint8 RGB at ``size``."""

    def frame(self, n: int) -> np.ndarray: ...

    def close(self) -> None: ...


def load_image(path: str | Path, what: str = "background image") -> np.ndarray:
    """Read an image file into (H, W, 3) uint8 RGB; refuses files over 64 megapixels."""
    p = Path(path).expanduser()
    try:
        with Image.open(p) as im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise InputError(
                    f"{what} {p}: {w}x{h} is too large ({w * h / 1e6:.0f} megapixels, at most "
                    f"{MAX_IMAGE_PIXELS / 1e6:.0f}); scale it down first"
                )
            rgb = np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise InputError(f"{what} {p}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{what} {p}: is a folder, expected an image file") from None
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise InputError(f"{what} {p}: not an image vcam can read (PNG, JPEG, WebP, BMP, ...)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{what} {p}: cannot read it ({exc})") from None
    return np.ascontiguousarray(rgb)


class ImageBackground:
    """A still image, scaled to cover the output and centre-cropped once."""

    def __init__(self, path: str | Path, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self._image = cover_fit(load_image(path), size)

    def frame(self, n: int) -> np.ndarray:
        return self._image

    def close(self) -> None:
        pass


class VideoBackground:
    """A video that loops; output frame ``n`` shows the video at time ``n / fps``."""

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float) -> None:
        self.path = Path(path)
        self.size, self.fps = size, fps
        self._reader = VideoReader(self.path, "background video")
        self._duration: float | None = None
        self._current: np.ndarray | None = None
        self._next: tuple[np.ndarray, float] | None = None
        first = self._reader.read()
        if first is None:
            self._reader.close()
            raise InputError(f"background video {self.path}: has no frames")
        self._start = first[1]
        self._current = cover_fit(first[0], size)
        self._current_t = 0.0
        self._loop_base = 0.0

    def _advance(self) -> tuple[np.ndarray, float] | None:
        item = self._reader.read()
        if item is None:
            return None
        return item[0], item[1] - self._start

    def frame(self, n: int) -> np.ndarray:
        t = n / self.fps
        assert self._current is not None
        while True:
            if self._next is None:
                nxt = self._advance()
                if nxt is None:  # end of file: loop
                    length = self._current_t - self._loop_base + 1.0 / self._reader.fps
                    self._loop_base += length
                    self._reader.close()
                    self._reader = VideoReader(self.path, "background video")
                    first = self._reader.read()
                    if first is None:
                        return self._current
                    self._start = first[1]
                    nxt = first[0], 0.0
                self._next = (nxt[0], nxt[1] + self._loop_base)
            image, when = self._next
            if when > t + 1e-6:
                return self._current
            self._current = cover_fit(image, self.size)
            self._current_t = when
            self._next = None

    def close(self) -> None:
        self._reader.close()


def load_background(path: str | Path, size: tuple[int, int], fps: float) -> Background:
    """An :class:`ImageBackground` or, for video suffixes, a :class:`VideoBackground`."""
    p = Path(path).expanduser()
    if p.suffix.lower() in VIDEO_SUFFIXES:
        return VideoBackground(p, size, fps)
    return ImageBackground(p, size)
