"""Edge-band refinement: guided upsampling and colour decontamination only where the matte is
unsure (``model.refine: band``).

The model's alpha comes out at model size (384x216 live) and is upsampled to the picture
(1280x720): bilinear is cheap but blurs the edge over three to four output pixels, and every
edge pixel keeps the colour of the picture, i.e. part of the *old* background. Composited
over a new background that shows as a see-through ghost of the old one around hair and chin.
Running the guided filter over the whole picture fixes the first (``refine: guided``) but
costs 10-16 ms per 720p frame; almost all of it is spent where alpha is plainly 0 or 1.

:class:`EdgeBandRefiner` does the work only in the **band**: the model-size pixels whose alpha
is neither ~0 nor ~1 (``lo < a < hi``), dilated by ``grow`` pixels.

* Everywhere: the bilinear upsampling of :class:`~vcam.compositing.refine.BilinearRefiner`
  (bit for bit the same outside the band).
* In the band, alpha: the fast guided filter of :func:`~vcam.compositing.refine.guided_upsample`
  (colour guide, 3x3 windows at model size, eps = 1e-4), its coefficients computed only at the
  band's model-size pixels and applied to the full-resolution pixels they cover.
* In the band, colour (:meth:`EdgeBandRefiner.refine`): the picture's edge pixels are replaced
  by an estimate of the foreground's own colour, one step of "blur fusion" (Forte & Pitié's
  approximate foreground estimation): with local means F^ of the picture weighted by alpha and
  B^ weighted by 1 - alpha (box windows at model size), F = F^ + a (I - a F^ - (1 - a) B^).
  The compositor then blends F, not the old background's colour, over the new background.

Both loops are compiled (numba) and touch only the band, so the cost follows the length of
the outline, not the picture size (docs/quality.md, "Edge band").
"""

from __future__ import annotations

import cv2
import numpy as np

from vcam.compositing.blend import alpha_to_u8
from vcam.compositing.jit import Array, compiled
from vcam.frames import enlarge

__all__ = ["EdgeBandRefiner", "band_mask"]

# Chosen by measurement (docs/quality.md, "Edge band"): alpha levels (0..255) that count as sure.
BAND_LO = 8
BAND_HI = 247
BAND_GROW = 1  # model-size pixels the unsure region is dilated by (about 3 output pixels at 720p)
BAND_EPS = 1e-4  # the guided filter's regularisation, as refine.GUIDED_EPS
FOREGROUND_RADIUS = 2  # model-size radius of the blur-fusion means (5x5, about 7 output pixels)

_U8_2 = Array("uint8", 2)
_U8_2R = Array("uint8", 2, readonly=True)
_U8_3R = Array("uint8", 3, readonly=True)
_U8_3 = Array("uint8", 3)
_F32_3 = Array("float32", 3)
_F32_3R = Array("float32", 3, readonly=True)


@compiled("int64", _U8_2R, "int64", "int64", "int64", _U8_2)
def _levels(alpha, lo, hi, reach, level):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """``level`` = the square (Chebyshev) distance to the nearest unsure pixel (``lo < a < hi``),
    capped at ``reach + 1``. Work follows the number of unsure pixels, not the picture size
    beyond one pass. Returns that number."""
    h, w = alpha.shape
    cap = np.uint8(reach + 1)
    level[:, :] = cap
    n = 0
    for y in range(h):
        row = alpha[y]
        for x in range(w):
            v = row[x]
            if lo < v < hi:
                n += 1
                for yy in range(max(0, y - reach), min(h, y + reach + 1)):
                    dy = abs(yy - y)
                    for xx in range(max(0, x - reach), min(w, x + reach + 1)):
                        d = np.uint8(max(dy, abs(xx - x)))
                        if d < level[yy, xx]:
                            level[yy, xx] = d
    return n


_I64_1W = Array("int64", 1)
_I64_1R = Array("int64", 1, readonly=True)


@compiled("void", _U8_2R, "int64", _I64_1W, _I64_1W)
def _collect(level, grow, index, counts):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Flat indices (row-major) of the pixels with ``level <= grow + k`` for k = 0, 1, 2, in
    three runs of ``index`` (at offsets 0, h*w, 2*h*w); their lengths in ``counts``."""
    h, w = level.shape
    n = h * w
    c0 = c1 = c2 = 0
    for y in range(h):
        row = level[y]
        for x in range(w):
            v = row[x]
            if v <= grow + 2:
                i = y * w + x
                index[2 * n + c2] = i
                c2 += 1
                if v <= grow + 1:
                    index[n + c1] = i
                    c1 += 1
                    if v <= grow:
                        index[c0] = i
                        c0 += 1
    counts[0] = c0
    counts[1] = c1
    counts[2] = c2


@compiled("void", _U8_2R, "int64", "int64", "int64", _U8_2)
def _band(alpha, lo, hi, grow, out):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    h, w = alpha.shape
    level = np.empty((h, w), np.uint8)
    _levels(alpha, lo, hi, grow, level)
    for y in range(h):
        for x in range(w):
            out[y, x] = 1 if level[y, x] <= grow else 0


@compiled("void", _I64_1R, _I64_1R, _U8_2R, _U8_3R, "float32", _F32_3, _F32_3)
def _coefficients(index, counts, alpha, guide, eps, raw, coef):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Guided-filter coefficients (A_r, A_g, A_b, b) box-smoothed over 3x3, at the band's pixels
    (``level <= grow``) and one pixel around them (what the full-size interpolation reads);
    ``raw`` is scratch. Alpha 0..255, guide 0..255 (scaled to 0..1 here)."""
    h, w = alpha.shape
    hw = h * w
    inv = np.float32(1.0 / 255.0)
    for j in range(counts[2]):
        i = index[2 * hw + j]
        y = i // w
        x = i - y * w
        sr = sg = sb = sp = np.float32(0.0)
        srr = srg = srb = sgg = sgb = sbb = np.float32(0.0)
        srp = sgp = sbp = np.float32(0.0)
        for dy in range(-1, 2):
            yy = min(max(y + dy, 0), h - 1)
            for dx in range(-1, 2):
                xx = min(max(x + dx, 0), w - 1)
                r = np.float32(guide[yy, xx, 0]) * inv
                g = np.float32(guide[yy, xx, 1]) * inv
                b = np.float32(guide[yy, xx, 2]) * inv
                p = np.float32(alpha[yy, xx]) * inv
                sr += r
                sg += g
                sb += b
                sp += p
                srr += r * r
                srg += r * g
                srb += r * b
                sgg += g * g
                sgb += g * b
                sbb += b * b
                srp += r * p
                sgp += g * p
                sbp += b * p
        n = np.float32(1.0 / 9.0)
        mr, mg, mb, mp = sr * n, sg * n, sb * n, sp * n
        cr = srp * n - mr * mp
        cg = sgp * n - mg * mp
        cb = sbp * n - mb * mp
        vrr = srr * n - mr * mr + eps
        vrg = srg * n - mr * mg
        vrb = srb * n - mr * mb
        vgg = sgg * n - mg * mg + eps
        vgb = sgb * n - mg * mb
        vbb = sbb * n - mb * mb + eps
        i00 = vgg * vbb - vgb * vgb
        i01 = vrb * vgb - vrg * vbb
        i02 = vrg * vgb - vrb * vgg
        i11 = vrr * vbb - vrb * vrb
        i12 = vrg * vrb - vrr * vgb
        i22 = vrr * vgg - vrg * vrg
        inv_det = np.float32(1.0) / (vrr * i00 + vrg * i01 + vrb * i02)
        ar = (i00 * cr + i01 * cg + i02 * cb) * inv_det
        ag = (i01 * cr + i11 * cg + i12 * cb) * inv_det
        ab = (i02 * cr + i12 * cg + i22 * cb) * inv_det
        raw[y, x, 0] = ar
        raw[y, x, 1] = ag
        raw[y, x, 2] = ab
        raw[y, x, 3] = mp - ar * mr - ag * mg - ab * mb
    for j in range(counts[1]):
        i = index[hw + j]
        y = i // w
        x = i - y * w
        for k in range(4):
            s = np.float32(0.0)
            for dy in range(-1, 2):
                yy = min(max(y + dy, 0), h - 1)
                for dx in range(-1, 2):
                    xx = min(max(x + dx, 0), w - 1)
                    s += raw[yy, xx, k]
            coef[y, x, k] = s * np.float32(1.0 / 9.0)


def _starts(small: int, big: int) -> np.ndarray:
    """First output index of each model index (nearest: int((i + 0.5) * small / big)), and ``big``."""
    owner = np.minimum(((np.arange(big) + 0.5) * (small / big)).astype(np.int64), small - 1)
    return np.searchsorted(owner, np.arange(small + 1)).astype(np.int64)


def _taps(small: int, big: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output index: the two model indices and the weight of the second, as cv2.resize's
    INTER_LINEAR places them (source = (i + 0.5) * small / big - 0.5, clamped)."""
    src = np.clip((np.arange(big) + 0.5) * (small / big) - 0.5, 0.0, small - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, small - 1)
    return i0, i1, (src - i0).astype(np.float32)


@compiled("void", _I64_1R, _I64_1R, _U8_2R, _U8_3R, "int64", _F32_3)
def _means(index, counts, alpha, small, radius, fb):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """At the band's pixels: mean colour weighted by alpha (F^) and by 1 - alpha (B^) over a
    (2r+1)^2 window, 0..255; the pixel's own colour where a window has no such weight."""
    h, w = alpha.shape
    for j in range(counts[0]):
        i = index[j]
        y = i // w
        x = i - y * w
        sa = sb = np.float32(0.0)
        f0 = f1 = f2 = b0 = b1 = b2 = np.float32(0.0)
        for yy in range(max(0, y - radius), min(h, y + radius + 1)):
            for xx in range(max(0, x - radius), min(w, x + radius + 1)):
                a1 = np.float32(alpha[yy, xx]) * np.float32(1.0 / 255.0)
                ia1 = np.float32(1.0) - a1
                a2 = a1 * a1
                ia2 = ia1 * ia1
                a = a2 * a2  # weights alpha^4, (1 - alpha)^4: the surest pixels count most
                ia = ia2 * ia2
                c0 = np.float32(small[yy, xx, 0])
                c1 = np.float32(small[yy, xx, 1])
                c2 = np.float32(small[yy, xx, 2])
                sa += a
                sb += ia
                f0 += a * c0
                f1 += a * c1
                f2 += a * c2
                b0 += ia * c0
                b1 += ia * c1
                b2 += ia * c2
        if sa > np.float32(1e-3):
            fb[y, x, 0], fb[y, x, 1], fb[y, x, 2] = f0 / sa, f1 / sa, f2 / sa
        else:
            fb[y, x, 0], fb[y, x, 1], fb[y, x, 2] = small[y, x, 0], small[y, x, 1], small[y, x, 2]
        if sb > np.float32(1e-3):
            fb[y, x, 3], fb[y, x, 4], fb[y, x, 5] = b0 / sb, b1 / sb, b2 / sb
        else:
            fb[y, x, 3], fb[y, x, 4], fb[y, x, 5] = small[y, x, 0], small[y, x, 1], small[y, x, 2]


_F32_1R = Array("float32", 1, readonly=True)


@compiled("void", _I64_1R, _I64_1R, "int64", _F32_3R, _F32_3R, _U8_3R, _I64_1R, _I64_1R, _I64_1R, _I64_1R, _F32_1R,
           _I64_1R, _I64_1R, _F32_1R, "boolean", _U8_2, _U8_3)
def _apply(index, counts, w, coef, fb, image, ys, xs, y0s, y1s, wys, x0s, x1s, wxs, decontaminate, alpha_out, image_out):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """At every output pixel whose nearest model pixel is in the band: alpha = A . I + b with
    A, b interpolated bilinearly (as cv2.resize does), and with ``decontaminate`` the colour
    F = F^ + a (I - a F^ - (1 - a) B^) (F^, B^ from the nearest model pixel, 0..255)."""
    inv = np.float32(1.0 / 255.0)
    for j in range(counts[0]):
        i = index[j]
        my = i // w
        mx = i - my * w
        for y in range(ys[my], ys[my + 1]):
            y0 = y0s[y]
            y1 = y1s[y]
            wy = wys[y]
            for x in range(xs[mx], xs[mx + 1]):
                x0 = x0s[x]
                x1 = x1s[x]
                wx = wxs[x]
                q = np.float32(0.0)
                for k in range(4):
                    top = coef[y0, x0, k] + (coef[y0, x1, k] - coef[y0, x0, k]) * wx
                    bot = coef[y1, x0, k] + (coef[y1, x1, k] - coef[y1, x0, k]) * wx
                    c = top + (bot - top) * wy
                    q += c * (np.float32(image[y, x, k]) * inv if k < 3 else np.float32(1.0))
                q = min(max(q, np.float32(0.0)), np.float32(1.0))
                alpha_out[y, x] = np.uint8(q * np.float32(255.0) + np.float32(0.5))
                if decontaminate:
                    for c3 in range(3):
                        f_hat = fb[my, mx, c3]
                        b_hat = fb[my, mx, 3 + c3]
                        i = np.float32(image[y, x, c3])
                        f = f_hat + q * (i - q * f_hat - (np.float32(1.0) - q) * b_hat)
                        f = min(max(f, np.float32(0.0)), np.float32(255.0))
                        image_out[y, x, c3] = np.uint8(f + np.float32(0.5))


def band_mask(alpha: np.ndarray, lo: int = BAND_LO, hi: int = BAND_HI, grow: int = BAND_GROW) -> np.ndarray:
    """(h, w) uint8, 1 where ``alpha`` (float 0..1 or uint8 0..255) is unsure — ``lo < a < hi``
    in 0..255 levels — or within ``grow`` pixels (a square) of such a pixel; 0 elsewhere."""
    a = np.ascontiguousarray(alpha_to_u8(alpha))
    if a.ndim != 2:
        raise ValueError(f"band_mask: alpha must be (h, w), got {a.shape}")
    out = np.zeros(a.shape, np.uint8)
    _band(a, int(lo), int(hi), int(grow), out)
    return out


def _shrink(image: np.ndarray, w: int, h: int) -> np.ndarray:
    if image.shape[1] > 2 * w and image.shape[0] > 2 * h:  # as the engine's shrink_frame
        image = cv2.resize(image, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    out: np.ndarray = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return out


class EdgeBandRefiner:
    """Bilinear everywhere, guided filter and colour decontamination in the edge band (module notes).

    ``lo``/``hi``: alpha levels (0..255) at or beyond which a model pixel is sure; ``grow``:
    model-size pixels the unsure region is dilated by; ``decontaminate``: whether
    :meth:`refine` replaces edge colours (``__call__``, the plain :class:`Refiner` face, only
    refines alpha).
    Not for use from two threads at once (it keeps scratch buffers between calls).
    """

    name = "band"

    def __init__(
        self,
        lo: int = BAND_LO,
        hi: int = BAND_HI,
        grow: int = BAND_GROW,
        eps: float = BAND_EPS,
        decontaminate: bool = True,
        radius: int = FOREGROUND_RADIUS,
    ) -> None:
        if not 0 <= lo < hi <= 255 or grow < 0 or eps <= 0 or radius < 1:
            raise ValueError(f"band: need 0 <= lo < hi <= 255, grow >= 0, eps > 0, radius >= 1; got {lo}, {hi}, {grow}, {eps}, {radius}")
        self.lo, self.hi, self.grow, self.eps = lo, hi, grow, eps
        self.decontaminate, self.radius = decontaminate, radius
        self._cache: _Buffers | None = None

    def __call__(self, alpha: np.ndarray, image: np.ndarray) -> np.ndarray:
        return self._run(alpha, image, None, colour=False)[0]

    def refine(self, alpha: np.ndarray, image: np.ndarray, small: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(output-size uint8 alpha, picture to composite): the picture is ``image`` itself
        without decontamination, else a copy with the band's colours replaced. ``small``: the
        picture at model size when the caller has it (the engine's ``shrink``), else made here."""
        return self._run(alpha, image, small, colour=self.decontaminate)

    def _buffers(self, h: int, w: int, big_h: int, big_w: int) -> _Buffers:
        key = (h, w, big_h, big_w)
        if self._cache is None or self._cache.key != key:
            self._cache = _Buffers(key)
        return self._cache

    def _run(
        self, alpha: np.ndarray, image: np.ndarray, small: np.ndarray | None, *, colour: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        if alpha.ndim != 2 or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected (h, w) alpha and (H, W, 3) uint8 RGB, got {alpha.shape} and {image.shape} {image.dtype}")
        h, w = alpha.shape
        big_h, big_w = image.shape[:2]
        a8 = np.ascontiguousarray(alpha_to_u8(alpha))
        full: np.ndarray = a8.copy() if (big_h, big_w) == (h, w) else enlarge(a8, (big_w, big_h))
        buf = self._buffers(h, w, big_h, big_w)
        if _levels(a8, self.lo, self.hi, self.grow + 2, buf.level) == 0:
            return full, image  # no edge at all (nobody there, or all person)
        if small is None or small.shape[:2] != (h, w):
            small = _shrink(image, w, h)
        small = np.ascontiguousarray(small)
        _collect(buf.level, self.grow, buf.index, buf.counts)
        _coefficients(buf.index, buf.counts, a8, small, np.float32(self.eps), buf.raw, buf.coef)
        image = np.ascontiguousarray(image)
        out_img = buf.no_image
        if colour:
            _means(buf.index, buf.counts, a8, small, self.radius, buf.fb)
            out_img = image.copy()
        _apply(buf.index, buf.counts, w, buf.coef, buf.fb, image, *buf.tables, colour, full, out_img)
        return full, (out_img if colour else image)


class _Buffers:
    """Scratch arrays and interpolation tables for one (model size, output size); every value
    a call reads was written by that call (see the kernels), so nothing is cleared."""

    def __init__(self, key: tuple[int, int, int, int]) -> None:
        h, w, big_h, big_w = key
        self.key = key
        self.level = np.empty((h, w), np.uint8)
        self.raw = np.empty((h, w, 4), np.float32)
        self.coef = np.empty((h, w, 4), np.float32)
        self.fb = np.empty((h, w, 6), np.float32)
        self.no_image = np.zeros((1, 1, 3), np.uint8)
        self.index = np.empty(3 * h * w, np.int64)
        self.counts = np.zeros(3, np.int64)
        self.tables = (_starts(h, big_h), _starts(w, big_w), *_taps(h, big_h), *_taps(w, big_w))
