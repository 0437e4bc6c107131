"""Background blur that keeps the person's colours out of the blurred background."""

from __future__ import annotations

import cv2
import numpy as np

from vcam.compositing.blend import blend
from vcam.compositing.lowres import LowRes

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


def _reduce(image: np.ndarray, weight: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    if factor == 1:
        return image, weight
    h, w = image.shape[:2]
    size = (max(1, w // factor), max(1, h // factor))
    return (cv2.resize(image, size, interpolation=cv2.INTER_AREA),
            cv2.resize(weight, size, interpolation=cv2.INTER_AREA))


class BlurCompositor:
    """Blurs the background, keeps the person sharp.

    The blur is a normalised convolution weighted by (1 - alpha): only background pixels
    contribute, so the person does not smear a halo into the blurred background. It is
    computed at reduced resolution (the result is smooth anyway) and upsampled. Given the
    model's view of the frame (:class:`LowRes`) and a blur strong enough to be resolved at
    that size, it starts from there instead of shrinking the full-size frame again.
    """

    needs_alpha = True

    def __init__(self, strength: int) -> None:
        self.strength = strength

    def background(self, image: np.ndarray, alpha: np.ndarray, low: LowRes | None = None) -> np.ndarray:
        """The blurred background alone, (H, W, 3) uint8. ``alpha``: (H, W) uint8 0..255 or
        float32 0..1 at the size of ``image``."""
        h, w = image.shape[:2]
        sigma = blur_sigma(self.strength, h)
        if low is not None:
            lh, lw = low.image.shape[:2]
            sx, sy = sigma * lw / w, sigma * lh / h  # the model's picture may be stretched
        if low is not None and min(sx, sy) >= _MIN_SIGMA:
            factor = _factor(min(sx, sy))
            small, weight = _reduce(low.image, 1.0 - low.alpha, factor)
            sx, sy = sx / factor, sy / factor
        else:
            factor = _factor(sigma)
            a = alpha.astype(np.float32) * np.float32(1 / 255) if alpha.dtype == np.uint8 else alpha
            small, weight = _reduce(image, 1.0 - a, factor)
            sx = sy = sigma / factor
        small = small.astype(np.float32)
        num = cv2.GaussianBlur(small * weight[..., None], (0, 0), sx, sigmaY=sy)
        den = cv2.GaussianBlur(weight, (0, 0), sx, sigmaY=sy)
        plain = cv2.GaussianBlur(small, (0, 0), sx, sigmaY=sy)
        # Where no background is near (inside the person), fall back to the plain blur.
        mix = np.clip(den / 0.05, 0.0, 1.0)[..., None]
        bg = num / np.maximum(den, _EPS)[..., None] * mix + plain * (1.0 - mix)
        bg8 = np.clip(bg + 0.5, 0, 255).astype(np.uint8)
        return cv2.resize(bg8, (w, h), interpolation=cv2.INTER_LINEAR)

    def __call__(self, image: np.ndarray, alpha: np.ndarray | None, low: LowRes | None = None) -> np.ndarray:
        assert alpha is not None
        return blend(image, self.background(image, alpha, low), alpha)
