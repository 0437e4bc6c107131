"""Alpha blending of two RGB pictures (the one place the compositing formula lives).

The blend runs once per output pixel, so it is a compiled loop (numba): one pass that reads
both pictures and the alpha and writes the result, in integer arithmetic. OpenCV needs five
whole-picture operations for the same formula; even in cache-sized strips they took 2.0 ms
per 720p frame against 0.9 ms here (docs/performance.md).
"""

from __future__ import annotations

import cv2
import numpy as np

from vcam.compositing.jit import Array, compiled

__all__ = ["alpha_to_u8", "blend"]


def alpha_to_u8(alpha: np.ndarray) -> np.ndarray:
    """(H, W) alpha as uint8 0..255: float alpha is clipped to 0..1, scaled and rounded; uint8
    is returned as is."""
    if alpha.dtype == np.uint8:
        return alpha
    # (convertScaleAbs alone would turn -0.2 into 51: it takes the absolute value)
    out: np.ndarray = cv2.convertScaleAbs(np.clip(alpha, 0.0, 1.0), alpha=255.0)
    return out


# Compiled when a pipeline is put together (cached on disk after the first time, see jit.py),
# so the first frame does not wait for it. Inputs typed read-only: writable arrays convert to that.
_IN3 = Array("uint8", 3, readonly=True)
_IN2 = Array("uint8", 2, readonly=True)
_OUT3 = Array("uint8", 3)


@compiled("void", _IN3, _IN3, _IN2, _OUT3)
def _blend_u8(fg, bg, alpha, out):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    height, width = alpha.shape
    n = width * 3
    for y in range(height):
        f = fg[y].reshape(n)
        b = bg[y].reshape(n)
        o = out[y].reshape(n)
        a_row = alpha[y]
        for x in range(width):
            a = np.int32(a_row[x])
            ia = 255 - a
            for c in range(3):
                i = 3 * x + c
                v = np.int32(f[i]) * a + np.int32(b[i]) * ia + 128
                o[i] = np.uint8((v + (v >> 8)) >> 8)  # v / 255, rounded, exact for v < 65536 + 128


@compiled("void", _IN3, _IN3, _IN2, Array("uint8", 1, readonly=True), _OUT3)
def _blend_lut_u8(fg, bg, alpha, lut, out):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """:func:`_blend_u8` with ``fg`` read through the tone curve ``lut``, and only where it
    shows (alpha above 0): the lookups cannot be vectorised, so the background's pixels are
    copied without any."""
    height, width = alpha.shape
    n = width * 3
    for y in range(height):
        f = fg[y].reshape(n)
        b = bg[y].reshape(n)
        o = out[y].reshape(n)
        a_row = alpha[y]
        for x in range(width):
            a = np.int32(a_row[x])
            i = 3 * x
            if a == 0:
                o[i] = b[i]
                o[i + 1] = b[i + 1]
                o[i + 2] = b[i + 2]
            elif a == 255:
                o[i] = lut[f[i]]
                o[i + 1] = lut[f[i + 1]]
                o[i + 2] = lut[f[i + 2]]
            else:
                ia = 255 - a
                for c in range(3):
                    v = np.int32(lut[f[i + c]]) * a + np.int32(b[i + c]) * ia + 128
                    o[i + c] = np.uint8((v + (v >> 8)) >> 8)


def blend(
    fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray, out: np.ndarray | None = None, fg_lut: np.ndarray | None = None
) -> np.ndarray:
    """``fg * alpha + bg * (1 - alpha)`` as uint8, rounded once (error ≤ 0.5 level for uint8
    alpha).

    ``fg``, ``bg``: (H, W, 3) uint8; ``alpha``: (H, W) uint8 0..255 (255 = ``fg``) or float32
    0..1. Writes into ``out`` ((H, W, 3) uint8 C-contiguous) when given; it may be ``bg`` or
    ``fg`` (each pixel is read before it is written). ``fg_lut``: a (256,) uint8 tone curve
    ``fg`` is read through (the low-light lift, :mod:`vcam.compositing.light`): the same as
    ``cv2.LUT(fg, fg_lut)`` first, without the extra pass.
    """
    if fg.shape != bg.shape or fg.shape[:2] != alpha.shape or fg.ndim != 3 or fg.shape[2] != 3:
        raise ValueError(f"blend: shapes differ: fg {fg.shape}, bg {bg.shape}, alpha {alpha.shape}")
    if fg.dtype != np.uint8 or bg.dtype != np.uint8:
        raise ValueError(f"blend: pictures must be uint8, got {fg.dtype} and {bg.dtype}")
    if out is None:
        out = np.empty(fg.shape, np.uint8)
    elif out.shape != fg.shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"blend: out must be C-contiguous uint8 {fg.shape}, got {out.dtype} {out.shape}")
    a8 = np.ascontiguousarray(alpha_to_u8(alpha))
    if fg_lut is None:
        _blend_u8(np.ascontiguousarray(fg), np.ascontiguousarray(bg), a8, out)
    else:
        if fg_lut.shape != (256,) or fg_lut.dtype != np.uint8:
            raise ValueError(f"blend: fg_lut must be (256,) uint8, got {fg_lut.dtype} {fg_lut.shape}")
        _blend_lut_u8(np.ascontiguousarray(fg), np.ascontiguousarray(bg), a8, np.ascontiguousarray(fg_lut), out)
    return out
