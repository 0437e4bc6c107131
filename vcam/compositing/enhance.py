"""The camera-picture effects that ride on the matte: auto-framing and low-light correction.

:class:`Enhancer` runs in two steps around the alpha's refinement
(:meth:`vcam.pipeline.stages.Stages.render`). :meth:`Enhancer.step`, before it, measures the
person's exposure and picks the light correction's tone curve, and moves the framing window,
so that a zoomed frame refines only the part around its crop (:func:`refine_region`: its
edges on whole model pixels, so the values there are those of refining the whole frame; the
band refinement of a 1.5x crop took 1.8 instead of 2.8 ms). :meth:`Enhancer.apply`, after it,
crops picture, alpha and small copy to the framing window and enlarges them to the output
size. The compositor then works on the framed picture as if it were the camera's, so the matte and a blurred background follow the crop while a
replacement image or colour is never zoomed. The tone curve is handed on
(:attr:`Enhanced.lut`), not applied here: compositors read the picture through it in their
blend, and the blur in the reduced copy it blurs, which costs a table lookup per byte instead
of a pass of its own over the picture, and none where the picture is all background
(``cv2.LUT`` over a 720p frame took 1.75 ms of CPU; docs/enhance.md, "Cost"); in replace and
colour modes only the person is brightened.

The pictures it returns are its own buffers, written again by the next call: every
compositor makes a new picture from them. A fresh 2.7 MB array a frame made the blur
compositor after it cost 9 ms of CPU instead of 3.8 (page faults on the new memory;
``scripts/bench_compositing.py``).

State (the framing window, the light gain) lives here across compositor swaps;
:meth:`configure` may be called from any thread, :meth:`__call__` only from the rendering
thread. Switching an effect off is not a jump: the window glides back to the whole frame and
the gain back to 1, and only then does the picture pass untouched.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from vcam.compositing.framing import (
    Follower,
    FramingSettings,
    Window,
    crop_rect,
    full_window,
    person_box,
    target_window,
)
from vcam.compositing.light import LightCorrector, LightSettings, person_luma
from vcam.compositing.lowres import LowRes
from vcam.config import Config
from vcam.frames import enlarge

__all__ = ["Enhanced", "Enhancer", "Step", "enhancer_for", "refine_region"]

# Frames without a person before the window heads back to the whole frame (0.5 s at 30 fps):
# a matte that misses the person for a moment does not zoom out.
_ABSENT_FRAMES = 15


@dataclass(frozen=True, slots=True)
class Enhanced:
    """What the compositor gets: ``image`` (H, W, 3) uint8 RGB and ``alpha`` (H, W) uint8 at
    output size, ``low`` (the small copy, or None), and ``lut``: the light correction's
    (256,) uint8 tone curve still to apply to ``image`` and ``low.image`` (None: none)."""

    image: np.ndarray
    alpha: np.ndarray
    low: LowRes | None
    lut: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One frame's decisions (:meth:`Enhancer.step`): ``rect`` the crop (x, y, w, h) in pixels
    of the output-size frame, None for the whole frame; ``lut`` the tone curve (or None)."""

    rect: tuple[int, int, int, int] | None
    lut: np.ndarray | None


class Enhancer:
    """Framing and light for one output ``size`` = (W, H); both start ``off``."""

    def __init__(
        self,
        size: tuple[int, int],
        framing: FramingSettings | None = None,
        light: LightSettings | None = None,
        *,
        framing_on: bool = False,
        light_on: bool = False,
    ) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._framing_settings = framing or FramingSettings()
        self._light_settings = light or LightSettings()
        self._framing_on, self._light_on = framing_on, light_on
        self.follower = Follower(size, self._framing_settings)
        self.light = LightCorrector(self._light_settings)
        self._absent = _ABSENT_FRAMES
        self.window: Window = full_window(size)  # the last frame's window (read by tools)
        self._bufs: dict[str, np.ndarray] = {}
        # the RGBA buffer of the last framed frame and the rows / columns it enlarged into
        self._written: tuple[np.ndarray, tuple[int, int, int, int]] | None = None

    def configure(
        self,
        *,
        framing_on: bool | None = None,
        light_on: bool | None = None,
        framing: FramingSettings | None = None,
        light: LightSettings | None = None,
    ) -> None:
        """Change what runs from the next frame on (thread-safe); None keeps a setting."""
        with self._lock:
            if framing_on is not None:
                self._framing_on = framing_on
            if light_on is not None:
                self._light_on = light_on
            if framing is not None:
                self._framing_settings = framing
            if light is not None:
                self._light_settings = light

    @property
    def framing_on(self) -> bool:
        with self._lock:
            return self._framing_on

    @property
    def light_on(self) -> bool:
        with self._lock:
            return self._light_on

    def _buf(self, name: str, like: tuple[int, ...]) -> np.ndarray:
        """The reused uint8 buffer ``name`` of shape ``like``."""
        buf = self._bufs.get(name)
        if buf is None or buf.shape != like:
            buf = self._bufs[name] = np.empty(like, np.uint8)
        return buf

    def _sync(self) -> tuple[bool, bool]:
        with self._lock:
            fon, lon, fs, ls = self._framing_on, self._light_on, self._framing_settings, self._light_settings
        if fs != self.follower.settings:
            window = self.follower.window
            self.follower = Follower(self.size, fs)
            self.follower.reset(window)
        if ls != self.light.settings:
            gain = self.light.gain
            self.light = LightCorrector(ls)
            self.light.gain = gain
        return fon, lon

    def __call__(
        self,
        image: np.ndarray,
        alpha: np.ndarray,
        small_alpha: np.ndarray,
        low: LowRes | None,
        *,
        sparse: Callable[[tuple[int, int], LowRes | None], bool] | None = None,
    ) -> Enhanced:
        """One frame: ``image`` (H, W, 3) uint8 RGB and ``alpha`` (H, W) uint8 at the output
        size, ``small_alpha`` the model's (h, w) float32 alpha, ``low`` its picture (or None):
        :meth:`step`, then :meth:`apply`."""
        step = self.step((image.shape[1], image.shape[0]), small_alpha, low if low is not None else LowRes(image, alpha))
        return self.apply(step, image, alpha, low, sparse=sparse)

    def step(self, size: tuple[int, int], small_alpha: np.ndarray, measure: LowRes) -> Step:
        """Advance the effects by one frame of output ``size`` (W, H): the light correction's
        curve from the person's exposure in ``measure`` (the model's picture and alpha, or
        the output-size ones), the framing window from ``small_alpha``. Before the alpha is
        enlarged, so that the caller can refine only the part the crop shows
        (:meth:`vcam.pipeline.stages.Stages.render`)."""
        if size != self.size:  # another output size: start over
            self.size = size
            self.follower = Follower(self.size, self.follower.settings)
        framing_on, light_on = self._sync()
        fw, fh = self.size
        # -- light: measured on the camera's own picture, before any lift
        lut = self.light.update(person_luma(measure.image, measure.alpha), light_on)  # applied by the compositor
        # -- framing
        if framing_on:
            box = person_box(small_alpha)
            self._absent = 0 if box is not None else self._absent + 1
            if box is not None:
                sh, sw = small_alpha.shape
                target = target_window(box.scaled(fw / sw, fh / sh), self.size, self.follower.settings)
            elif self._absent >= _ABSENT_FRAMES:
                target = full_window(self.size)
            else:
                target = self.follower.window
        else:
            self._absent = _ABSENT_FRAMES
            target = full_window(self.size)
        self.window = window = self.follower.update(target)
        rect = crop_rect(window, self.size)
        return Step(None if rect == (0, 0, fw, fh) else rect, lut)

    def apply(
        self,
        step: Step,
        image: np.ndarray,
        alpha: np.ndarray,
        low: LowRes | None,
        *,
        origin: tuple[int, int] = (0, 0),
        sparse: Callable[[tuple[int, int], LowRes | None], bool] | None = None,
    ) -> Enhanced:
        """The frame ``step`` was made for: ``image`` and ``alpha`` (uint8) the output-size
        frame's, or only a part of it holding the crop, whose top left corner is ``origin``
        (x, y) in the frame; ``low`` the model's whole picture and alpha (or None).
        ``sparse``: the compositor's ``picture_under_alpha_only`` (vcam.compositing), asked
        with the output size and the framed ``low``; when it says the picture shows only
        where alpha is above 0, a framed picture is enlarged only around the person, the
        returned ``image`` holds the picture only where the returned ``alpha`` is above 0
        (elsewhere 0), and the two are views of one RGBA buffer (the blend reads it whole:
        :func:`vcam.compositing.blend.packed_rgba`)."""
        lut = step.lut
        if step.rect is None:
            return Enhanced(image, alpha, low, lut)
        fw, fh = self.size
        x0, y0, w, h = step.rect
        if low is not None:
            lh, lw = low.alpha.shape
            sx, sy = lw / fw, lh / fh
            lx0, ly0 = int(x0 * sx), int(y0 * sy)
            lx1, ly1 = max(lx0 + 2, round((x0 + w) * sx)), max(ly0 + 2, round((y0 + h) * sy))
            low = LowRes(
                np.ascontiguousarray(low.image[ly0:ly1, lx0:lx1]), np.ascontiguousarray(low.alpha[ly0:ly1, lx0:lx1])
            )
        only_under_alpha = sparse is not None and sparse(self.size, low)
        ox, oy = origin
        x0, y0 = x0 - ox, y0 - oy
        if x0 < 0 or y0 < 0 or x0 + w > image.shape[1] or y0 + h > image.shape[0]:
            raise ValueError(f"the crop {step.rect} is not inside the part of the frame at {origin}, {image.shape[1]}x{image.shape[0]}")
        image, alpha = self._enlarge(image[y0 : y0 + h, x0 : x0 + w], alpha[y0 : y0 + h, x0 : x0 + w], only_under_alpha)
        return Enhanced(image, alpha, low, lut)

    def _enlarge(self, image: np.ndarray, alpha: np.ndarray, sparse: bool) -> tuple[np.ndarray, np.ndarray]:
        """The crop ``image``, ``alpha`` enlarged (bilinear) to the output size, into this
        enhancer's buffers. With ``sparse`` only the part around the alpha's non-zero pixels
        is enlarged, both pictures alike and as one RGBA picture (module notes: the picture
        is not needed where alpha is 0); the rest is 0, which is what enlarging the alpha
        would give."""
        fw, fh = self.size
        h, w = alpha.shape
        if not sparse or alpha.dtype != np.uint8:
            out_image = self._buf("framed", (fh, fw, 3))
            out_alpha = self._buf("framed alpha", (fh, fw))
            enlarge(image, (fw, fh), out_image)
            enlarge(alpha, (fw, fh), out_alpha)
            return out_image, out_alpha
        # Picture and alpha are enlarged as one RGBA picture: packing (0.26 ms) and one
        # four-channel enlargement cost less than enlarging the two apart (0.94 against
        # 1.03-1.11 ms, 560x480 -> 840x720, one thread); the two come back as views of that
        # buffer, which the blend reads as it is (vcam.compositing.blend.packed_rgba).
        out = self._buf("framed rgba", (fh, fw, 4))
        out_image, out_alpha = out[..., :3], out[..., 3]
        # Around the enlarged part the buffer must be 0 (alpha 0; the picture there is not
        # shown). It is kept so: only what the last frame wrote and this one does not is
        # zeroed (a person moves little from frame to frame), the whole buffer when it is new.
        last = self._written if self._written is not None and self._written[0] is out else None
        bx, by, bw, bh = cv2.boundingRect(alpha)  # the non-zero pixels (0.05 ms on 853x480)
        if bw == 0 or bh == 0:  # nobody: nothing of the picture shows
            rect = (0, 0, 0, 0)
        else:
            sx0, sx1, dx0, dx1 = _aligned_span(bx, bx + bw, w, fw)
            sy0, sy1, dy0, dy1 = _aligned_span(by, by + bh, h, fh)
            rect = (dy0, dy1, dx0, dx1)
            part = self._buf("rgba part", (fh, fw, 4))[: sy1 - sy0, : sx1 - sx0]  # a crop is never larger
            cv2.cvtColor(image[sy0:sy1, sx0:sx1], cv2.COLOR_RGB2RGBA, dst=part)
            cv2.insertChannel(alpha[sy0:sy1, sx0:sx1], part, 3)
            enlarge(part, (dx1 - dx0, dy1 - dy0), out[dy0:dy1, dx0:dx1])
        _zero_outside(out, (0, fh, 0, fw) if last is None else last[1], rect)
        self._written = (out, rect)
        return out_image, out_alpha

    @property
    def active(self) -> bool:
        """Whether anything is done to the picture now (an effect on, or one still returning)."""
        with self._lock:
            on = self._framing_on or self._light_on
        return on or self.light.gain != 1.0 or crop_rect(self.follower.window, self.size) != (0, 0, *self.size)


def _zero_outside(out: np.ndarray, was: tuple[int, int, int, int], now: tuple[int, int, int, int]) -> None:
    """Zero the rows ``was[0]:was[1]`` x columns ``was[2]:was[3]`` of ``out`` except those of
    ``now`` (the same form; an empty one keeps nothing), in whole-row slabs."""
    y0, y1, x0, x1 = was
    ny0, ny1, nx0, nx1 = now
    if ny0 >= ny1 or nx0 >= nx1 or ny1 <= y0 or ny0 >= y1 or nx1 <= x0 or nx0 >= x1:
        out[y0:y1, x0:x1] = 0  # nothing kept inside
        return
    out[y0:ny0, x0:x1] = 0
    out[ny1:y1, x0:x1] = 0
    rows = slice(max(y0, ny0), min(y1, ny1))
    out[rows, x0:nx0] = 0
    out[rows, nx1:x1] = 0


def _aligned_span(lo: int, hi: int, n: int, out_n: int) -> tuple[int, int, int, int]:
    """For the source pixels ``lo``..``hi`` (exclusive) of ``n``, enlarged to ``out_n``: the
    source span ``s0``..``s1`` to enlarge on its own and where it lands, ``d0``..``d1``, so that
    it lands about where enlarging all ``n`` pixels would put it. The span is widened by 2
    pixels on each side (bilinear reads one neighbour: what lies outside then reads only
    zeros) and by up to 8 more, to the end whose image falls nearest a whole pixel (853 -> 1280
    px: 0.17 px off at worst; whole-pixel ends land exactly). An end at the picture's edge
    stays there."""
    scale = out_n / n

    def best(ends: range) -> int:
        return min(ends, key=lambda e: abs(e * scale - round(e * scale)))

    s0 = 0 if lo - 2 <= 0 else best(range(lo - 2, max(lo - 10, 0) - 1, -1))
    s1 = n if hi + 2 >= n else best(range(hi + 2, min(hi + 10, n) + 1))
    return s0, s1, round(s0 * scale), round(s1 * scale)


def refine_region(
    rect: tuple[int, int, int, int], size: tuple[int, int], small: tuple[int, int], margin: int = 6
) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]] | None:
    """The part of the frame to refine for the crop ``rect`` (x, y, w, h) of a frame of
    ``size`` (W, H) whose model alpha is ``small`` (w, h): ((x0, y0, x1, y1) in the frame,
    (k0, j0, k1, j1) in the model's alpha), or None to refine it all. The part holds the crop
    and ``margin`` model pixels around it, and its edges fall on model pixels that land on
    whole frame pixels, so that enlarging that part of the alpha gives exactly the values
    enlarging all of it gives inside (bilinear; the refiners look ``margin`` pixels around at
    most). None where no such edges are near (an odd ratio of frame to model size) or where
    the part would be most of the frame."""
    x, y, w, h = rect
    spans = []
    for lo, length, big, little in ((x, w, size[0], small[0]), (y, h, size[1], small[1])):
        g = math.gcd(big, little)
        unit_small, unit_big = little // g, big // g  # unit_small model pixels = unit_big frame pixels
        if unit_small > 4:
            return None
        first = lo * little // big  # the model pixels the crop touches (floor, ceiling)
        end = -(-(lo + length) * little // big)
        k0 = max(0, (first - margin) // unit_small * unit_small)
        k1 = min(little, -(-(end + margin) // unit_small) * unit_small)
        spans.append((k0 * unit_big // unit_small, k1 * unit_big // unit_small, k0, k1))
    (x0, x1, k0, k1), (y0, y1, j0, j1) = spans
    if (x1 - x0) * (y1 - y0) > 0.8 * size[0] * size[1]:
        return None
    return (x0, y0, x1, y1), (k0, j0, k1, j1)


def enhancer_for(cfg: Config, size: tuple[int, int] | None = None, fps: float | None = None) -> Enhancer:
    """The :class:`Enhancer` for ``cfg`` (its ``effect.framing``, ``effect.light``,
    ``framing`` and ``light`` keys) at ``size`` (default: the output size) and ``fps``."""
    size = size or cfg.output_size
    fps = fps or cfg.output_fps
    return Enhancer(
        size,
        framing_settings(cfg, fps),
        light_settings(cfg, fps),
        framing_on=cfg.effect.framing == "auto",
        light_on=cfg.effect.light == "auto",
    )


def framing_settings(cfg: Config, fps: float) -> FramingSettings:
    f = cfg.framing
    return FramingSettings(f.person_height, f.headroom, f.max_zoom, f.speed, fps)


def light_settings(cfg: Config, fps: float) -> LightSettings:
    c = cfg.light
    return LightSettings(float(c.target), c.max_gain, c.settle_s, fps)
