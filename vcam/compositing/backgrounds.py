"""Backgrounds for replace mode: a still image or a looping video, cover-fitted to the output."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vcam.errors import InputError
from vcam.frames import cover_fit
from vcam.media.reader import DecodedFrame, VideoReader

__all__ = [
    "MAX_IMAGE_PIXELS",
    "VIDEO_SUFFIXES",
    "Background",
    "ImageBackground",
    "TimedBackground",
    "VideoBackground",
    "load_background",
    "load_image",
]

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".gif", ".mpg", ".mpeg", ".ogv"})
MAX_IMAGE_PIXELS = 64_000_000


class Background(Protocol):
    """``frame(n, t)`` is the background for output frame ``n`` (at time ``t`` seconds on the
    input's timeline, when known): (H, W, 3) uint8 RGB at ``size``."""

    def frame(self, n: int, t: float | None = None) -> np.ndarray: ...

    def close(self) -> None: ...


def _header_size(p: Path) -> tuple[int, int] | None:
    """(width, height) from the header of an image Pillow refused to open as a
    decompression bomb, read by the plugin that accepts the file (its pixels are not read),
    or None if no plugin does."""
    Image.init()
    with p.open("rb") as fp:
        prefix = fp.read(16)
        for fmt in Image.ID:
            factory, accept = Image.OPEN[fmt]
            accepted = not accept or accept(prefix)  # as Image.open decides (a text is a warning: no)
            if isinstance(accepted, str) or not accepted:
                continue
            fp.seek(0)
            try:
                size = factory(fp, str(p)).size
            except (SyntaxError, IndexError, TypeError, ValueError, OSError, struct.error):
                continue
            return int(size[0]), int(size[1])
    return None


def _too_large(what: str, p: Path, w: int, h: int) -> InputError:
    return InputError(
        f"{what} {p}: {w}x{h} is too large ({w * h / 1e6:.0f} megapixels, at most "
        f"{MAX_IMAGE_PIXELS / 1e6:.0f}); scale it down first"
    )


def _rgb8(im: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB. Greyscale deeper than 8 bits (16-bit PNG and TIFF: modes
    ``I;16*``, and ``I`` holding 0..65535) is scaled, round(v * 255 / 65535); Pillow's own
    ``convert`` clips it at 255, which turns all but the darkest greys white."""
    if im.mode.startswith("I;16") or im.mode == "I":
        deep = np.clip(np.asarray(im).astype(np.int64), 0, 65535)
        grey = ((deep * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


def load_image(path: str | Path, what: str = "background image") -> np.ndarray:
    """Read an image file into (H, W, 3) uint8 RGB, upright (its EXIF orientation applied);
    refuses files over 64 megapixels from their header, before decoding."""
    p = Path(path).expanduser()
    try:
        with Image.open(p) as im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise _too_large(what, p, w, h)
            upright = ImageOps.exif_transpose(im)  # phone photos are stored sideways
            rgb = _rgb8(upright)
    except InputError:  # vcam's own (too large)
        raise
    except FileNotFoundError:
        raise InputError(f"{what} {p}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{what} {p}: is a folder, expected an image file") from None
    except Image.DecompressionBombError:
        # Pillow refuses images over twice its own limit (179 MP) at open, before vcam sees the size.
        size = _header_size(p)
        if size is None:
            raise InputError(
                f"{what} {p}: is too large (over {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} megapixels, "
                f"at most {MAX_IMAGE_PIXELS / 1e6:.0f}); scale it down first"
            ) from None
        raise _too_large(what, p, *size) from None
    except UnidentifiedImageError:
        raise InputError(f"{what} {p}: not an image vcam can read (PNG, JPEG, WebP, BMP, ...)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{what} {p}: cannot read it ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise what they like (NotImplementedError, ...)
        raise InputError(f"{what} {p}: cannot read it ({type(exc).__name__}: {exc})") from None
    return np.ascontiguousarray(rgb)


class ImageBackground:
    """A still image, scaled to cover the output and centre-cropped once."""

    def __init__(self, path: str | Path, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self._image = cover_fit(load_image(path), size)

    def frame(self, n: int, t: float | None = None) -> np.ndarray:
        return self._image

    def close(self) -> None:
        pass


class VideoBackground:
    """A background video that loops: ``frame_at(t)`` is the picture the video shows ``t``
    seconds after its first frame (modulo its length), cover-fitted to ``size``.

    The video is read forward only, so ``t`` must not go backwards (it may stand still or
    jump ahead; pictures in between are skipped, not fitted). Its own timestamps are used,
    so a variable-frame-rate or differently paced video stays in time. ``frame(n)`` is output
    frame ``n`` at ``fps`` (live mode). Upright (display matrix applied); corrupt frames
    repeat the previous one.
    """

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float) -> None:
        self.path = Path(path)
        self.size, self.fps = size, fps
        self._reader = VideoReader(self.path, "background video")
        first = self._reader.read_frame()
        if first is None:
            self._reader.close()
            raise InputError(f"background video {self.path}: has no frames")
        self._start = first.time
        self._current: DecodedFrame = first
        self._current_t = 0.0  # seconds on the looped timeline
        self._fitted: np.ndarray | None = None
        self._next: tuple[DecodedFrame, float] | None = None
        self._loop_base = 0.0
        self.loops = 0
        self.length: float | None = None  # one pass, in seconds, known after the first pass

    def _duration_s(self, f: DecodedFrame) -> float:
        if f.duration:
            return float(f.duration * self._reader.time_base)
        return 1.0 / self._reader.fps

    def _restart(self) -> DecodedFrame | None:
        if not self._reader.rewind():
            self._reader.close()
            self._reader = VideoReader(self.path, "background video")
        return self._reader.read_frame()

    def _peek(self) -> tuple[DecodedFrame, float] | None:
        if self._next is None:
            nxt = self._reader.read_frame()
            if nxt is None:  # end of the video: loop
                self.length = self._current_t - self._loop_base + self._duration_s(self._current)
                self._loop_base += self.length
                self.loops += 1
                nxt = self._restart()
                if nxt is None:
                    return None
                self._start = nxt.time
            self._next = (nxt, nxt.time - self._start + self._loop_base)
        return self._next

    def frame_at(self, t: float) -> np.ndarray:
        """(H, W, 3) uint8 RGB at ``size``: the picture on screen ``t`` seconds in."""
        while (nxt := self._peek()) is not None and nxt[1] <= t + 1e-6:
            self._current, self._current_t = nxt
            self._next = None
            self._fitted = None
        if self._fitted is None:
            self._fitted = cover_fit(self._current.image, self.size)
        return self._fitted

    def frame(self, n: int, t: float | None = None) -> np.ndarray:
        """Paced by output frames (live mode: ``t``, the camera's or a looped file's time, is
        not the background's)."""
        return self.frame_at(n / self.fps)

    def close(self) -> None:
        self._reader.close()


class TimedBackground:
    """Drives a :class:`VideoBackground` by timestamps instead of frame numbers (file mode).

    ``frame(n, t)`` ignores ``n`` and shows the background at ``t`` less the first ``t`` it was
    given (the input's first frame starts the background). This keeps the background in step
    with a variable-frame-rate input, where frame numbers and time differ.
    """

    def __init__(self, video: VideoBackground) -> None:
        self.video = video
        self._start: float | None = None

    def frame(self, n: int, t: float | None = None) -> np.ndarray:
        if t is None:
            raise ValueError("TimedBackground needs each frame's time")
        if self._start is None:
            self._start = t
        return self.video.frame_at(t - self._start)

    def close(self) -> None:
        self.video.close()


def load_background(path: str | Path, size: tuple[int, int], fps: float) -> Background:
    """An :class:`ImageBackground` or, for video suffixes, a :class:`VideoBackground`."""
    p = Path(path).expanduser()
    if p.suffix.lower() in VIDEO_SUFFIXES:
        return VideoBackground(p, size, fps)
    return ImageBackground(p, size)
