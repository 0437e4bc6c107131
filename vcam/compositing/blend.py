"""Alpha blending of two RGB pictures (the one place the compositing formula lives)."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["alpha_to_u8", "blend"]


def alpha_to_u8(alpha: np.ndarray) -> np.ndarray:
    """(H, W) float32 alpha 0..1 → (H, W) uint8 0..255, rounded and saturated."""
    out: np.ndarray = cv2.convertScaleAbs(alpha, alpha=255.0)
    return out


def blend(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``fg * alpha + bg * (1 - alpha)`` as uint8, each term rounded (error ≤ 1 level).

    ``fg``, ``bg``: (H, W, 3) uint8; ``alpha``: (H, W) float32 0..1 (1 = ``fg``) or uint8
    0..255. Works in uint8 with saturating OpenCV arithmetic: no full-size float frames.
    """
    a8 = alpha if alpha.dtype == np.uint8 else alpha_to_u8(alpha)
    a3 = cv2.merge((a8, a8, a8))
    fg_part = cv2.multiply(fg, a3, scale=1 / 255)
    bg_part = cv2.multiply(bg, cv2.bitwise_not(a3), scale=1 / 255)
    out: np.ndarray = cv2.add(fg_part, bg_part)
    return out
