"""Background blur that keeps the person's colours out of the blurred background."""

from __future__ import annotations

import cv2
import numpy as np

from vcam.compositing.blend import blend

__all__ = ["BlurCompositor", "blur_sigma"]

_EPS = 1e-3


def blur_sigma(strength: int, height: int) -> float:
    """Gaussian sigma in pixels for ``strength`` (sigma at 720 lines) on a ``height``-line picture."""
    return strength * height / 720.0


def _factor(sigma: float) -> int:
    """Downscale factor for blurring: a power of two (OpenCV's area resize is far faster for
    integer factors) that leaves at least 2 px of sigma at the reduced size, at most 8."""
    factor = 1
    while factor < 8 and sigma / (factor * 2) >= 2.0:
        factor *= 2
    return factor


class BlurCompositor:
    """Blurs the background, keeps the person sharp.

    The blur is a normalised convolution weighted by (1 - alpha): only background pixels
    contribute, so the person does not smear a halo into the blurred background. It is
    computed at reduced resolution (the result is smooth anyway) and upsampled.
    """

    needs_alpha = True

    def __init__(self, strength: int) -> None:
        self.strength = strength

    def background(self, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The blurred background alone, (H, W, 3) uint8."""
        h, w = image.shape[:2]
        sigma = blur_sigma(self.strength, h)
        factor = _factor(sigma)
        sw, sh = max(1, w // factor), max(1, h // factor)
        small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
        weight = 1.0 - cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA)
        s = sigma / factor
        num = cv2.GaussianBlur(small * weight[..., None], (0, 0), s)
        den = cv2.GaussianBlur(weight, (0, 0), s)
        plain = cv2.GaussianBlur(small, (0, 0), s)
        # Where no background is near (inside the person), fall back to the plain blur.
        mix = np.clip(den / 0.05, 0.0, 1.0)[..., None]
        bg = num / np.maximum(den, _EPS)[..., None] * mix + plain * (1.0 - mix)
        bg8 = np.clip(bg + 0.5, 0, 255).astype(np.uint8)
        return cv2.resize(bg8, (w, h), interpolation=cv2.INTER_LINEAR)

    def __call__(self, image: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
        assert alpha is not None
        return blend(image, self.background(image, alpha), alpha)
