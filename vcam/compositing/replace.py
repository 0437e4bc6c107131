"""Replace, colour and pass-through compositors."""

from __future__ import annotations

import numpy as np

from vcam.compositing.backgrounds import Background
from vcam.compositing.blend import blend
from vcam.compositing.lowres import LowRes

__all__ = ["ColorCompositor", "PassThrough", "ReplaceCompositor"]


class ReplaceCompositor:
    """Puts the person over a background image or video (advanced once per output frame)."""

    needs_alpha = True
    takes_lut = True  # the tone curve lifts the person only: the background image is left as it is

    def __init__(self, background: Background) -> None:
        self.background = background
        self._n = 0

    def __call__(
        self,
        image: np.ndarray,
        alpha: np.ndarray | None,
        low: LowRes | None = None,
        t: float | None = None,
        lut: np.ndarray | None = None,
    ) -> np.ndarray:
        assert alpha is not None
        bg = self.background.frame(self._n, t)
        self._n += 1
        return blend(image, bg, alpha, fg_lut=lut)

    def picture_under_alpha_only(self, size: tuple[int, int], low: LowRes | None) -> bool:
        """Always: the picture shows only where alpha is above 0 (see vcam.compositing)."""
        return True

    def close(self) -> None:
        self.background.close()


class ColorCompositor:
    """Puts the person over a solid colour."""

    needs_alpha = True
    takes_lut = True

    def __init__(self, color: tuple[int, int, int]) -> None:
        self.color = color
        self._bg: np.ndarray | None = None

    def __call__(
        self,
        image: np.ndarray,
        alpha: np.ndarray | None,
        low: LowRes | None = None,
        t: float | None = None,
        lut: np.ndarray | None = None,
    ) -> np.ndarray:
        assert alpha is not None
        if self._bg is None or self._bg.shape != image.shape:
            self._bg = np.empty_like(image)
            self._bg[:] = self.color
        return blend(image, self._bg, alpha, fg_lut=lut)

    def picture_under_alpha_only(self, size: tuple[int, int], low: LowRes | None) -> bool:
        """Always: the picture shows only where alpha is above 0 (see vcam.compositing)."""
        return True


class PassThrough:
    """Mode ``off``: the camera picture unchanged; no matting is run."""

    needs_alpha = False
    # Shows the picture as it is: a refiner's decontaminated edge colours are not wanted
    # (AlphaOnly, which writes mattes beside the unchanged picture, inherits this).
    edge_colours = False

    def __call__(self, image: np.ndarray, alpha: np.ndarray | None, low: LowRes | None = None, t: float | None = None) -> np.ndarray:
        return image
