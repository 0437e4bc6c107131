"""Alpha blending of two RGB pictures (the one place the compositing formula lives)."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["blend"]


def blend(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``fg * alpha + bg * (1 - alpha)`` rounded to uint8.

    ``fg``, ``bg``: (H, W, 3) uint8; ``alpha``: (H, W) float32 0..1 (1 = ``fg``).
    """
    a = np.ascontiguousarray(alpha, dtype=np.float32)
    inv = np.subtract(np.float32(1.0), a)
    out: np.ndarray = cv2.blendLinear(fg, bg, a, inv)
    return out
