"""Compositors: turn a frame and its alpha into the output picture.

A compositor is called as ``compositor(image, alpha, low)`` with ``image`` (H, W, 3) uint8
RGB at output size, ``alpha`` (H, W) uint8 0..255 or float32 0..1 at the same size (None
when its ``needs_alpha`` is False) and optionally ``low``, the frame and alpha as the model
saw them (:class:`LowRes`), and ``t``, the frame's time in seconds on its source's timeline
(None when unknown; only a background that follows time uses it, see
:class:`~vcam.compositing.backgrounds.TimedBackground`), and returns an (H, W, 3) uint8 RGB picture.
A compositor whose ``takes_lut`` is True also takes ``lut``, the low-light tone curve
((256,) uint8, :mod:`vcam.compositing.light`) to read the camera picture through, and applies
it inside its own passes (the blend, the reduced copy it blurs); for the others the caller
applies it first (``cv2.LUT``). A compositor may say, by its method
``picture_under_alpha_only(size, low)``, that a call at output ``size`` with ``low`` reads
``image`` only where ``alpha`` is above 0 (the blend gives the background exactly where alpha
is 0); the auto-framing then enlarges a zoomed picture only around the person
(:class:`~vcam.compositing.enhance.Enhancer`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from vcam.compositing.backgrounds import load_background
from vcam.compositing.blend import blend
from vcam.compositing.blur import BlurCompositor
from vcam.compositing.lowres import LowRes
from vcam.compositing.refine import upsample_alpha
from vcam.compositing.replace import ColorCompositor, PassThrough, ReplaceCompositor
from vcam.config import EffectConfig

__all__ = [
    "BlurCompositor",
    "ColorCompositor",
    "Compositor",
    "LowRes",
    "PassThrough",
    "ReplaceCompositor",
    "blend",
    "make_compositor",
    "upsample_alpha",
]


class Compositor(Protocol):
    needs_alpha: bool

    def __call__(
        self, image: np.ndarray, alpha: np.ndarray | None, low: LowRes | None = None, t: float | None = None
    ) -> np.ndarray: ...


def make_compositor(effect: EffectConfig, size: tuple[int, int], fps: float) -> Compositor:
    """The compositor for ``effect.mode``; loads the background for ``replace``."""
    if effect.mode == "blur":
        return BlurCompositor(effect.blur_strength)
    if effect.mode == "color":
        return ColorCompositor(effect.color)
    if effect.mode == "replace":
        assert effect.background is not None  # the config schema guarantees it
        return ReplaceCompositor(load_background(effect.background, size, fps))
    return PassThrough()
