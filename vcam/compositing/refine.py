"""Alpha upsampling from the model input size to the output size."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["upsample_alpha"]


def upsample_alpha(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (h, w) float32 alpha to ``size`` = (width, height), bilinear, clipped to 0..1."""
    w, h = size
    if alpha.shape == (h, w):
        return np.clip(alpha, 0.0, 1.0)
    up = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(up, 0.0, 1.0, out=up)
