"""The compositors of file mode's cut-outs: the person over nothing (``--mode remove``), and
the picture unchanged while its alpha is still computed (mode ``off`` with ``--matte-out``)."""

from __future__ import annotations

import cv2
import numpy as np

from vcam.compositing.blend import alpha_to_u8
from vcam.compositing.lowres import LowRes
from vcam.compositing.replace import PassThrough

__all__ = ["AlphaOnly", "Cutout"]


class AlphaOnly(PassThrough):
    """Mode ``off`` when mattes are wanted: the picture unchanged, alpha computed."""

    needs_alpha = True


class Cutout:
    """``--mode remove``: the picture with its alpha as a fourth channel, (H, W, 4) uint8 RGBA
    (straight, not premultiplied; 255 = person)."""

    needs_alpha = True

    def __call__(self, image: np.ndarray, alpha: np.ndarray | None, low: LowRes | None = None, t: float | None = None) -> np.ndarray:
        assert alpha is not None
        out: np.ndarray = cv2.merge((*cv2.split(image), alpha_to_u8(alpha)))
        return out
