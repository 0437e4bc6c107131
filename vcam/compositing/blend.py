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

__all__ = ["alpha_to_u8", "blend", "packed_rgba"]


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


_IN4 = Array("uint8", 3, readonly=True)  # (H, W, 4): the picture's three channels, then alpha


@compiled("void", _IN4, _IN3, _OUT3)
def _blend_rgba_u8(fga, bg, out):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """:func:`_blend_u8` with picture and alpha in one RGBA buffer ``fga``."""
    height, width = fga.shape[0], fga.shape[1]
    n = width * 3
    for y in range(height):
        f = fga[y].reshape(width * 4)
        b = bg[y].reshape(n)
        o = out[y].reshape(n)
        for x in range(width):
            a = np.int32(f[4 * x + 3])
            ia = 255 - a
            for c in range(3):
                v = np.int32(f[4 * x + c]) * a + np.int32(b[3 * x + c]) * ia + 128
                o[3 * x + c] = np.uint8((v + (v >> 8)) >> 8)


@compiled("void", _IN4, _IN3, Array("uint8", 1, readonly=True), _OUT3)
def _blend_rgba_lut_u8(fga, bg, lut, out):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """:func:`_blend_lut_u8` with picture and alpha in one RGBA buffer ``fga``."""
    height, width = fga.shape[0], fga.shape[1]
    n = width * 3
    for y in range(height):
        f = fga[y].reshape(width * 4)
        b = bg[y].reshape(n)
        o = out[y].reshape(n)
        for x in range(width):
            a = np.int32(f[4 * x + 3])
            i, j = 3 * x, 4 * x
            if a == 0:
                o[i] = b[i]
                o[i + 1] = b[i + 1]
                o[i + 2] = b[i + 2]
            elif a == 255:
                o[i] = lut[f[j]]
                o[i + 1] = lut[f[j + 1]]
                o[i + 2] = lut[f[j + 2]]
            else:
                ia = 255 - a
                for c in range(3):
                    v = np.int32(lut[f[j + c]]) * a + np.int32(b[i + c]) * ia + 128
                    o[i + c] = np.uint8((v + (v >> 8)) >> 8)


def packed_rgba(fg: np.ndarray, alpha: np.ndarray) -> np.ndarray | None:
    """The (H, W, 4) uint8 C-contiguous buffer whose first three channels are ``fg`` and whose
    fourth is ``alpha`` (views of it, as :meth:`vcam.compositing.enhance.Enhancer.apply` may
    return them: one 4-channel enlargement costs what a 3-channel one does), or None."""
    base = fg.base
    if (
        not isinstance(base, np.ndarray) or alpha.base is not base or base.dtype != np.uint8 or base.ndim != 3
        or base.shape != (*alpha.shape, 4) or fg.shape != (*alpha.shape, 3) or not base.flags.c_contiguous
    ):
        return None
    start = base.__array_interface__["data"][0]
    if (
        fg.__array_interface__["data"][0] != start or alpha.__array_interface__["data"][0] != start + 3
        or fg.strides != base.strides or alpha.strides != base.strides[:2]
    ):
        return None
    return base


def blend(
    fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray, out: np.ndarray | None = None, fg_lut: np.ndarray | None = None
) -> np.ndarray:
    """``fg * alpha + bg * (1 - alpha)`` as uint8, rounded once (error ≤ 0.5 level for uint8
    alpha).

    ``fg``, ``bg``: (H, W, 3) uint8; ``alpha``: (H, W) uint8 0..255 (255 = ``fg``) or float32
    0..1. Writes into ``out`` ((H, W, 3) uint8 C-contiguous) when given; it may be ``bg`` or
    ``fg`` (each pixel is read before it is written). ``fg_lut``: a (256,) uint8 tone curve
    ``fg`` is read through (the low-light lift, :mod:`vcam.compositing.light`): the same as
    ``cv2.LUT(fg, fg_lut)`` first, without the extra pass. ``fg`` and ``alpha`` may be the
    channels of one RGBA buffer (:func:`packed_rgba`), which is then read without copies.
    """
    if fg.shape != bg.shape or fg.shape[:2] != alpha.shape or fg.ndim != 3 or fg.shape[2] != 3:
        raise ValueError(f"blend: shapes differ: fg {fg.shape}, bg {bg.shape}, alpha {alpha.shape}")
    if fg.dtype != np.uint8 or bg.dtype != np.uint8:
        raise ValueError(f"blend: pictures must be uint8, got {fg.dtype} and {bg.dtype}")
    if out is None:
        out = np.empty(fg.shape, np.uint8)
    elif out.shape != fg.shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"blend: out must be C-contiguous uint8 {fg.shape}, got {out.dtype} {out.shape}")
    if fg_lut is not None and (fg_lut.shape != (256,) or fg_lut.dtype != np.uint8):
        raise ValueError(f"blend: fg_lut must be (256,) uint8, got {fg_lut.dtype} {fg_lut.shape}")
    packed = packed_rgba(fg, alpha)
    if packed is not None:  # picture and alpha are one RGBA buffer: read it as it is
        if fg_lut is None:
            _blend_rgba_u8(packed, np.ascontiguousarray(bg), out)
        else:
            _blend_rgba_lut_u8(packed, np.ascontiguousarray(bg), np.ascontiguousarray(fg_lut), out)
        return out
    a8 = np.ascontiguousarray(alpha_to_u8(alpha))
    if fg_lut is None:
        _blend_u8(np.ascontiguousarray(fg), np.ascontiguousarray(bg), a8, out)
    else:
        _blend_lut_u8(np.ascontiguousarray(fg), np.ascontiguousarray(bg), a8, np.ascontiguousarray(fg_lut), out)
    return out
