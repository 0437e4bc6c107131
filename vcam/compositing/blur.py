"""Background blur that keeps the person's colours out of the blurred background."""

from __future__ import annotations

import cv2
import numpy as np

from vcam.compositing.blend import blend
from vcam.compositing.jit import Array, compiled
from vcam.compositing.lowres import LowRes
from vcam.frames import enlarge

__all__ = ["BlurCompositor", "blur_sigma"]

_EPS = 1e-3
# Least Gaussian sigma, in pixels of the reduced picture, for which blurring at reduced size
# and upsampling bilinearly looks the same as blurring at full size.
_MIN_SIGMA = 2.0


def blur_sigma(strength: int, height: int) -> float:
    """Gaussian sigma in pixels for ``strength`` (sigma at 720 lines) on a ``height``-line picture."""
    return strength * height / 720.0


def _factor(sigma: float) -> int:
    """Downscale factor for blurring: a power of two (OpenCV's area resize is far faster for
    integer factors) that leaves at least 2 px of sigma at the reduced size, at most 8."""
    factor = 1
    while factor < 8 and sigma / (factor * 2) >= _MIN_SIGMA:
        factor *= 2
    return factor


def _reduce(image: np.ndarray, alpha: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    if factor == 1:
        return image, alpha
    h, w = image.shape[:2]
    size = (max(1, w // factor), max(1, h // factor))
    return (cv2.resize(image, size, interpolation=cv2.INTER_AREA),
            cv2.resize(alpha, size, interpolation=cv2.INTER_AREA))


_F3 = Array("float32", 3, readonly=True)
_F2 = Array("float32", 2, readonly=True)


@compiled("void", _F3, _F2, _F3, Array("uint8", 3))
def _normalise(num, den, plain, out):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """out = num / den where background is near (den: blurred background weight), the plain
    blur where none is (inside the person), blended over den 0..0.05; rounded to uint8."""
    height, width = den.shape
    for y in range(height):
        for x in range(width):
            d = den[y, x]
            mix = min(max(d * np.float32(20.0), np.float32(0.0)), np.float32(1.0))
            inv = np.float32(1.0) / max(d, np.float32(_EPS))
            for c in range(3):
                p = plain[y, x, c]
                v = p + mix * (num[y, x, c] * inv - p) + np.float32(0.5)
                out[y, x, c] = np.uint8(min(max(v, np.float32(0.0)), np.float32(255.0)))


class BlurCompositor:
    """Blurs the background, keeps the person sharp.

    The blur is a normalised convolution weighted by (1 - alpha): only background pixels
    contribute, so the person does not smear a halo into the blurred background. It is
    computed at reduced resolution (the result is smooth anyway) and upsampled. Given the
    model's view of the frame (:class:`LowRes`) and a blur strong enough to be resolved at
    that size, it starts from there instead of shrinking the full-size frame again.
    """

    needs_alpha = True
    takes_lut = True  # __call__ takes the low-light tone curve (see vcam.compositing)

    def __init__(self, strength: int) -> None:
        self.strength = strength

    def _blurs_low(self, size: tuple[int, int], low: LowRes) -> bool:
        """Whether the background is blurred from ``low`` (the model's picture) for an output
        of ``size``: when the blur is strong enough to be resolved at its size."""
        w, h = size
        lh, lw = low.image.shape[:2]
        sigma = blur_sigma(self.strength, h)
        return min(sigma * lw / w, sigma * lh / h) >= _MIN_SIGMA

    def picture_under_alpha_only(self, size: tuple[int, int], low: LowRes | None) -> bool:
        """Whether a call at output ``size`` with ``low`` reads the picture only where alpha
        is above 0 (see vcam.compositing): when its background comes from ``low``."""
        return low is not None and self._blurs_low(size, low)

    def background(
        self, image: np.ndarray, alpha: np.ndarray, low: LowRes | None = None, lut: np.ndarray | None = None
    ) -> np.ndarray:
        """The blurred background alone, (H, W, 3) uint8. ``alpha``: (H, W) uint8 0..255 or
        float32 0..1 at the size of ``image``; ``lut``: a tone curve for the picture, applied
        to the reduced copy that is blurred (a 16th of the pixels or fewer)."""
        h, w = image.shape[:2]
        sigma = blur_sigma(self.strength, h)
        if low is not None and self._blurs_low((w, h), low):
            lh, lw = low.image.shape[:2]
            sx, sy = sigma * lw / w, sigma * lh / h  # the model's picture may be stretched
            factor = _factor(min(sx, sy))
            small, small_alpha = _reduce(low.image, low.alpha, factor)
            sx, sy = sx / factor, sy / factor
        else:
            factor = _factor(sigma)
            small, small_alpha = _reduce(image, alpha, factor)
            sx = sy = sigma / factor
        if small_alpha.dtype == np.uint8:
            weight = 1.0 - small_alpha.astype(np.float32) * np.float32(1 / 255)
        else:
            weight = 1.0 - small_alpha
        if lut is not None:
            small = cv2.LUT(small, lut)
        small = small.astype(np.float32)
        num = cv2.GaussianBlur(small * weight[..., None], (0, 0), sx, sigmaY=sy)
        den = cv2.GaussianBlur(weight, (0, 0), sx, sigmaY=sy)
        plain = cv2.GaussianBlur(small, (0, 0), sx, sigmaY=sy)
        bg8 = np.empty(small.shape, np.uint8)
        _normalise(num, den, plain, bg8)
        return enlarge(bg8, (w, h))

    def __call__(
        self,
        image: np.ndarray,
        alpha: np.ndarray | None,
        low: LowRes | None = None,
        t: float | None = None,
        lut: np.ndarray | None = None,
    ) -> np.ndarray:
        assert alpha is not None
        return blend(image, self.background(image, alpha, low, lut), alpha, fg_lut=lut)
