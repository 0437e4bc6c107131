"""Frame type and the few image helpers shared by sources, compositors and sinks.

Conventions used everywhere inside vcam:

* images are ``numpy.ndarray`` of shape (H, W, 3), dtype uint8, **RGB** order, C-contiguous;
* alpha comes in two forms: the engine's, (h, w) float32 in 0..1 at the model input size
  (:class:`vcam.matting.Matter`), and the refined one the compositors blend with, (H, W)
  uint8 0..255 at output size (:class:`vcam.compositing.refine.Refiner`); 1 and 255 = person;
* BGR exists only at the OpenCV edges (camera capture, ``cv2.imread``) and is converted there.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Frame", "cover_fit", "enlarge", "placeholder_image", "resize_rgb"]

_BG = (38, 44, 52)
_FG = (225, 228, 232)


@dataclass(slots=True)
class Frame:
    """One captured picture.

    ``image``: (H, W, 3) uint8 RGB. ``index``: 0-based position in the source's stream.
    ``timestamp``: capture time in seconds on the pipeline's monotonic clock.
    ``pts``: presentation time in seconds within a file source (None for cameras).
    ``restart``: the source (re)started here; the frame does not continue the previous ones.
    ``placeholder``: a stand-in picture (camera unavailable) to pass through unprocessed.
    """

    image: np.ndarray
    index: int
    timestamp: float
    pts: float | None = None
    restart: bool = False
    placeholder: bool = False

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the image."""
        return int(self.image.shape[1]), int(self.image.shape[0])


def enlarge(image: np.ndarray, size: tuple[int, int], dst: np.ndarray | None = None) -> np.ndarray:
    """Bilinear resize of ``image`` ((h, w) or (h, w, 1..4), uint8 or float32) to ``size`` =
    (width, height), on the pixel grid of ``cv2.resize(..., INTER_LINEAR)`` (pixel centres
    aligned, edges replicated), written into ``dst`` when given.

    Made for enlarging (the model's alpha, a blurred background, a framing crop back to the
    output size), where it is done by ``cv2.warpAffine``: its fixed-point interpolation
    (weights in 1/32 of a pixel) gives uint8 results within 1 level of ``cv2.resize`` (a tenth
    of a level on average) at 30 to 50 % of its CPU (one thread; float32 costs the same
    either way; docs/performance.md). A shrink in either direction goes to ``cv2.resize``."""
    w, h = size
    sh, sw = image.shape[:2]
    if w < sw or h < sh:
        return cv2.resize(image, (w, h), dst=dst, interpolation=cv2.INTER_LINEAR)
    sx, sy = sw / w, sh / h
    m = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    out: np.ndarray = cv2.warpAffine(image, m, (w, h), dst=dst, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    return out


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W, C) image to ``size`` = (width, height); area filter when shrinking."""
    w, h = size
    if image.shape[1] == w and image.shape[0] == h:
        return image
    shrinking = w * h < image.shape[0] * image.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=interp)


def cover_fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``image`` to cover ``size`` = (width, height) keeping its aspect, then centre-crop.

    The result is exactly (height, width, C); the picture is never stretched.
    """
    w, h = size
    ih, iw = image.shape[:2]
    scale = max(w / iw, h / ih)
    sw, sh = max(w, round(iw * scale)), max(h, round(ih * scale))
    scaled = resize_rgb(image, (sw, sh))
    x0, y0 = (sw - w) // 2, (sh - h) // 2
    return np.ascontiguousarray(scaled[y0 : y0 + h, x0 : x0 + w])


def contain_fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``image`` to fit inside ``size`` = (width, height) keeping its aspect, centred on
    black bars (letterbox or pillarbox): nothing is cut off. Exactly (height, width, C)."""
    w, h = size
    ih, iw = image.shape[:2]
    scale = min(w / iw, h / ih)
    sw, sh = min(w, max(1, round(iw * scale))), min(h, max(1, round(ih * scale)))
    out = np.zeros((h, w, *image.shape[2:]), image.dtype)
    x0, y0 = (w - sw) // 2, (h - sh) // 2
    out[y0 : y0 + sh, x0 : x0 + sw] = resize_rgb(image, (sw, sh))
    return out


def placeholder_image(size: tuple[int, int], text: str) -> np.ndarray:
    """A dark (H, W, 3) uint8 RGB picture saying "vcam" and ``text``, at ``size`` = (w, h)."""
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = _BG
    scale = max(0.3, h / 720.0)
    for i, (line, s) in enumerate((("vcam", 2.0 * scale), (text, 0.9 * scale))):
        thick = max(1, round(2 * s))
        (tw, th), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, s, thick)
        y = int(h * (0.45 + 0.15 * i)) + th // 2
        cv2.putText(img, line, (max(0, (w - tw) // 2), y), cv2.FONT_HERSHEY_SIMPLEX, s, _FG, thick, cv2.LINE_AA)
    return img
