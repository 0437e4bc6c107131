"""Alpha upsampling from the model input size to the output size.

Three methods, picked by name with :func:`make_refiner` (config key ``model.refine``):

* ``bilinear``: plain bilinear resizing of the model's alpha.
* ``guided``: a fast guided filter (He & Sun, "Fast Guided Filter", 2015) with the colour
  frame as guide. Per-pixel linear coefficients ``alpha ~ A . rgb + B`` are fitted in small
  windows at model size (where the alpha came from), smoothed, upsampled bilinearly, and
  applied to the full-resolution frame, so alpha edges follow the colour edges of the
  full-resolution picture instead of the blurred low-resolution ones.
* ``band``: bilinear everywhere, the guided filter only in the band where alpha is neither ~0
  nor ~1, and the band's colours decontaminated (:mod:`vcam.compositing.edges`).

A refiner may also have ``refine(alpha, image, small) -> (alpha, image)``: the alpha and the
picture to composite (``band`` replaces the old background's colour in edge pixels);
:meth:`vcam.pipeline.stages.Stages.render` uses it when present, unless the compositor says
``edge_colours = False`` (it shows the picture unchanged: mode ``off``, alpha-only).
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from vcam.compositing.blend import alpha_to_u8
from vcam.frames import enlarge

__all__ = ["REFINE_METHODS", "BilinearRefiner", "GuidedRefiner", "Refiner", "guided_upsample", "make_refiner", "upsample_alpha"]

REFINE_METHODS = ("bilinear", "guided", "band")
# Chosen by the sweep in docs/quality.md (window radius at model size, regularisation).
GUIDED_RADIUS = 1
GUIDED_EPS = 1e-4


class Refiner(Protocol):
    """Turns model-size alpha into output-size alpha.

    ``alpha``: (h, w) float32 0..1 at model size; ``image``: (H, W, 3) uint8 RGB at output size.
    Returns (H, W) uint8 0..255 (255 = person): what the compositors blend with and what
    mattes are written as, so no full-size float alpha is made on the way.
    """

    name: str

    def __call__(self, alpha: np.ndarray, image: np.ndarray) -> np.ndarray: ...


def upsample_alpha(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (h, w) float32 alpha to ``size`` = (width, height), bilinear, clipped to 0..1."""
    w, h = size
    if alpha.shape == (h, w):
        return np.clip(alpha, 0.0, 1.0)
    up = enlarge(alpha, (w, h))
    return np.clip(up, 0.0, 1.0, out=up)


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    k = 2 * radius + 1
    out: np.ndarray = cv2.boxFilter(x, -1, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)
    return out


def guided_upsample(
    alpha: np.ndarray, image: np.ndarray, radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS
) -> np.ndarray:
    """Fast guided upsampling of alpha with the colour frame as guide.

    ``alpha``: (h, w) float32 0..1; ``image``: (H, W, 3) uint8 RGB (H >= h, W >= w, the
    same picture). ``radius``: window radius in model-size pixels; ``eps``: regularisation
    (in (0..1 intensity)^2; larger is smoother, closer to bilinear).
    Returns (H, W) float32 clipped to 0..1.
    """
    if alpha.ndim != 2 or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected (h, w) alpha and (H, W, 3) uint8 RGB, got {alpha.shape} and {image.shape} {image.dtype}")
    h, w = alpha.shape
    big_h, big_w = image.shape[:2]
    p = np.ascontiguousarray(alpha, np.float32)
    if (big_h, big_w) == (h, w):
        small = image
    elif big_w >= 2 * w and big_h >= 2 * h:
        # bilinear to twice the size, then area: close to a plain area resize at a fifth of its cost
        small = cv2.resize(
            cv2.resize(image, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR), (w, h), interpolation=cv2.INTER_AREA
        )
    else:
        small = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    r, g, b = (x.astype(np.float32) * np.float32(1 / 255) for x in cv2.split(small))

    def box(x: np.ndarray) -> np.ndarray:
        return _box(x, radius)

    # Box means of I, p, I*p and the six distinct products I_i*I_j (contiguous planes: fast).
    mr, mg, mb, m_p = box(r), box(g), box(b), box(p)
    cr = box(r * p) - mr * m_p
    cg = box(g * p) - mg * m_p
    cb = box(b * p) - mb * m_p
    vrr = box(r * r) - mr * mr + eps
    vrg = box(r * g) - mr * mg
    vrb = box(r * b) - mr * mb
    vgg = box(g * g) - mg * mg + eps
    vgb = box(g * b) - mg * mb
    vbb = box(b * b) - mb * mb + eps
    # Solve (Sigma + eps I) a = cov per pixel with the adjugate of the symmetric 3x3 matrix.
    i00 = vgg * vbb - vgb * vgb
    i01 = vrb * vgb - vrg * vbb
    i02 = vrg * vgb - vrb * vgg
    i11 = vrr * vbb - vrb * vrb
    i12 = vrg * vrb - vrr * vgb
    i22 = vrr * vgg - vrg * vrg
    # The full-size guide stays uint8 0..255: fold the 1/255 into A so it is never rescaled.
    inv_det = np.float32(1 / 255) / (vrr * i00 + vrg * i01 + vrb * i02)
    ar = (i00 * cr + i01 * cg + i02 * cb) * inv_det
    ag = (i01 * cr + i11 * cg + i12 * cb) * inv_det
    ab = (i02 * cr + i12 * cg + i22 * cb) * inv_det
    bb = m_p - (ar * mr + ag * mg + ab * mb) * np.float32(255)
    coef_a = cv2.merge([box(ar), box(ag), box(ab)])
    coef_b = box(bb)
    if (big_h, big_w) != (h, w):
        coef_a = enlarge(coef_a, (big_w, big_h))
        coef_b = enlarge(coef_b, (big_w, big_h))
    prod = cv2.multiply(coef_a, image, dtype=cv2.CV_32F)
    out: np.ndarray = cv2.transform(prod, np.ones((1, 3), np.float32))
    out = cv2.add(out, coef_b)
    return np.clip(out, 0.0, 1.0, out=out)


class BilinearRefiner:
    """Plain bilinear upsampling (see :class:`Refiner` for formats)."""

    name = "bilinear"

    def __call__(self, alpha: np.ndarray, image: np.ndarray) -> np.ndarray:
        # to uint8 at model size, then resize: a fifth of the memory traffic of float at full size
        small = alpha_to_u8(alpha)
        h, w = image.shape[:2]
        if small.shape == (h, w):
            return small
        out: np.ndarray = enlarge(small, (w, h))
        return out


class GuidedRefiner:
    """Fast guided-filter upsampling guided by the full-size frame (see :func:`guided_upsample`)."""

    name = "guided"

    def __init__(self, radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS) -> None:
        if radius < 1 or eps <= 0:
            raise ValueError(f"radius must be >= 1 and eps > 0, got {radius} and {eps}")
        self.radius, self.eps = radius, eps

    def __call__(self, alpha: np.ndarray, image: np.ndarray) -> np.ndarray:
        return alpha_to_u8(guided_upsample(alpha, image, self.radius, self.eps))


def make_refiner(method: str) -> Refiner:
    """The refiner called ``method`` (one of :data:`REFINE_METHODS`)."""
    if method == "bilinear":
        return BilinearRefiner()
    if method == "guided":
        return GuidedRefiner()
    if method == "band":
        from vcam.compositing.edges import EdgeBandRefiner  # compiled kernels: loaded when used

        return EdgeBandRefiner()
    raise ValueError(f"unknown refine method {method!r}; expected one of {', '.join(REFINE_METHODS)}")
