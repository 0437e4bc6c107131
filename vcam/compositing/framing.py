"""Auto-framing: a crop window that keeps the person centred and sized, from the matte.

Three pure steps and one stateful follower:

* :func:`person_box`: the person's box from the model-size alpha. Alpha is split into
  connected blobs; only the blob with the most alpha mass, and blobs with at least half its
  mass (a second person sitting beside), count, so a hand or a stranger cut by the edge
  does not pull the frame. The box's extents are alpha-mass percentiles (a wisp of hair
  does not grow it). Its centre across is halfway between the box's middle and the median
  over its rows of each row's alpha centroid (the body's axis: an arm held out, or a false
  blob beside the head, moves a few rows' centroids, not the median). The axis alone left a
  person leaning on one arm 6 % of the width off the middle of their box; the middle alone
  follows every outstretched arm.
* :func:`target_window`: the crop of the output's aspect in which that box fills
  ``person_height`` of the height with ``headroom`` above it, never smaller than
  1/``max_zoom`` of the frame (enlarging more blurs the picture), kept inside the frame.
* :class:`Follower`: moves the window toward the target like a critically damped spring
  with a speed limit, and only once the target left a dead zone around the window: a person
  swaying a little sees a still picture, a person walking across sees a glide, never a jump.
* :func:`crop_rect`: the window as whole pixels (the enhancer enlarges them to the output size).

Windows are ``(cx, cy, h)`` floats in pixels of the (output-size) frame: centre and height;
the width is ``h * W / H``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Box", "Follower", "FramingSettings", "Window", "crop_rect", "person_box", "target_window"]

Window = tuple[float, float, float]
"""(centre x, centre y, height) in pixels of the frame; width = height * frame aspect."""

# A blob counts as part of the person when it has at least this share of the largest blob's
# alpha mass (two people side by side are both framed; a hand or a cut-off stranger is not).
_KEEP_SHARE = 0.5
# Alpha mass below this share of the frame is nobody (matte noise, a hand at the edge).
_MIN_PERSON_SHARE = 0.01
# Box extents: rows/columns between these alpha-mass percentiles.
_LO_PCT, _HI_PCT = 0.005, 0.995


@dataclass(frozen=True, slots=True)
class Box:
    """The person's box in pixels of the alpha it came from: ``top``, ``bottom``, ``left``,
    ``right`` (mass percentiles, bottom and right exclusive), ``cx`` (halfway between the
    box's middle and the median of the rows' alpha centroids), ``cy`` (the alpha centroid's row); ``mass``: the share of the frame the
    kept alpha covers."""

    left: float
    top: float
    right: float
    bottom: float
    cx: float
    cy: float
    mass: float

    @property
    def height(self) -> float:
        return self.bottom - self.top

    def scaled(self, sx: float, sy: float) -> Box:
        """The same box in a picture ``sx`` times wider and ``sy`` times taller."""
        return Box(self.left * sx, self.top * sy, self.right * sx, self.bottom * sy, self.cx * sx, self.cy * sy, self.mass)


@dataclass(frozen=True, slots=True)
class FramingSettings:
    """``person_height``: share of the output height the person's box fills; ``headroom``:
    share of the height above the head; ``max_zoom``: the most the picture is enlarged;
    ``speed``: the window's top speed in frame widths per second; ``fps``: frames per second
    (the follower counts in frames)."""

    person_height: float = 0.8
    headroom: float = 0.1
    max_zoom: float = 2.0
    speed: float = 0.3
    fps: float = 30.0


def _percentile_index(cum: np.ndarray, q: float) -> int:
    return int(np.searchsorted(cum, q * cum[-1], side="left"))


def person_box(alpha: np.ndarray, step: int = 2) -> Box | None:
    """The person's box in ``alpha`` ((h, w) float32 0..1 or uint8 0..255), in its pixels,
    or None when nobody is there (see the module notes for which blobs count). Measured on
    every ``step``-th row and column: at the realtime model size (384x216) that is 192x108,
    a quarter of the work (0.25 ms against 1.3 ms of CPU), with the box still resolved to
    about 7 px of a 1280-px frame."""
    if step > 1:
        box = person_box(np.ascontiguousarray(alpha[::step, ::step]), 1)
        return None if box is None else box.scaled(step, step)  # each sample stands for step x step pixels
    a = alpha.astype(np.float32) * np.float32(1 / 255) if alpha.dtype == np.uint8 else np.asarray(alpha, np.float32)
    h, w = a.shape
    mask = (a > 0.5).astype(np.uint8)
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    if count < 2:
        return None
    mass = np.bincount(labels.ravel(), weights=a.ravel(), minlength=count)
    mass[0] = 0.0  # the background label
    keep = mass >= _KEEP_SHARE * mass.max()
    keep[0] = False
    if mass[keep].sum() < _MIN_PERSON_SHARE * h * w:
        return None
    # the kept blobs' alpha, grown by the soft edge around them (the >0.5 core misses it)
    core = keep[labels].astype(np.uint8)
    near = cv2.dilate(core, np.ones((5, 5), np.uint8))
    weight = a * near
    rows, cols = weight.sum(axis=1), weight.sum(axis=0)
    total = float(rows.sum())
    rc, cc = np.cumsum(rows), np.cumsum(cols)
    top, bottom = _percentile_index(rc, _LO_PCT), _percentile_index(rc, _HI_PCT) + 1
    left, right = _percentile_index(cc, _LO_PCT), _percentile_index(cc, _HI_PCT) + 1
    xs = np.arange(w, dtype=np.float32) + np.float32(0.5)
    band = weight[top:bottom]
    row_mass = band.sum(axis=1)
    filled = row_mass > 0.02 * row_mass.max()
    axis = float(np.median((band[filled] @ xs) / row_mass[filled]))
    cx = 0.5 * axis + 0.25 * (left + min(right, w))
    cy = float(rows @ (np.arange(h, dtype=np.float64) + 0.5)) / total
    return Box(float(left), float(top), float(min(right, w)), float(min(bottom, h)), cx, cy, total / (h * w))


def clamp_window(win: Window, size: tuple[int, int], max_zoom: float) -> Window:
    """``win`` with its height in [H / max_zoom, H] and the whole window inside the frame."""
    fw, fh = size
    cx, cy, h = win
    h = min(max(h, fh / max_zoom), float(fh))
    w = h * fw / fh
    cx = min(max(cx, w / 2), fw - w / 2)
    cy = min(max(cy, h / 2), fh - h / 2)
    return cx, cy, h


def full_window(size: tuple[int, int]) -> Window:
    """The whole frame."""
    return size[0] / 2, size[1] / 2, float(size[1])


def target_window(box: Box | None, size: tuple[int, int], settings: FramingSettings) -> Window:
    """Where the window should be for ``box`` (in pixels of a frame of ``size`` = (W, H)):
    centred on the box's centroid across, the box top ``headroom`` below the window top, the
    box ``person_height`` of the window's height; the whole frame when ``box`` is None.
    A window held larger by ``max_zoom`` keeps the centre the framing asked for (the
    person stays where they would be, only smaller)."""
    if box is None:
        return full_window(size)
    h = max(box.height, 1.0) / settings.person_height
    cy = box.top - settings.headroom * h + h / 2
    return clamp_window((box.cx, cy, h), size, settings.max_zoom)


class Follower:
    """Moves a window toward a target, still inside a dead zone, gliding outside it.

    Each :meth:`update` is one frame. While resting, the window stays exactly where it is
    until the target is farther than the dead zone (``dead_zone`` of the window height in
    position, ``dead_zone_size`` in height). Then it moves as a critically damped spring
    (``settle_s``: about the time to arrive) whose speed is capped at ``speed`` frame widths
    per second and which reaches that speed in no less than ``ramp_s`` (no sudden start), and
    rests again once within ``rest`` of the window height of the target and slower than that
    per frame. Heading for the whole frame (a target that does not jitter) it rests only
    within half a pixel, and then on the whole frame exactly, so the picture is again the
    camera's own.
    """

    def __init__(
        self,
        size: tuple[int, int],
        settings: FramingSettings,
        *,
        dead_zone: float = 0.08,
        dead_zone_size: float = 0.1,
        settle_s: float = 0.8,
        ramp_s: float = 0.3,
        rest: float = 0.01,
    ) -> None:
        self.size, self.settings = size, settings
        self.dead_zone, self.dead_zone_size, self.rest = dead_zone, dead_zone_size, rest
        self.window: Window = full_window(size)
        self._velocity = (0.0, 0.0, 0.0)
        self._moving = False
        dt = 1.0 / settings.fps
        omega = 2 * math.pi / settle_s  # arrives (within a few %) in about settle_s
        self._k, self._c, self._dt = omega * omega, 2 * omega, dt
        self._vmax = settings.speed * size[0]  # px per second
        self._dv = self._vmax / ramp_s * dt  # px per second, per frame

    @property
    def moving(self) -> bool:
        return self._moving

    def reset(self, window: Window | None = None) -> None:
        """Jump to ``window`` (the whole frame by default) and rest there."""
        self.window = window or full_window(self.size)
        self._velocity, self._moving = (0.0, 0.0, 0.0), False

    def update(self, target: Window) -> Window:
        """One frame toward ``target``; returns the new window."""
        x, v = self.window, self._velocity
        err = tuple(t - p for t, p in zip(target, x, strict=True))
        h = x[2]
        if not self._moving:
            if max(abs(err[0]), abs(err[1])) <= self.dead_zone * h and abs(err[2]) <= self.dead_zone_size * h:
                return self.window
            self._moving = True
        dt, k, c = self._dt, self._k, self._c
        nv = [vi + (k * e - c * vi) * dt for vi, e in zip(v, err, strict=True)]
        dv = math.sqrt(sum((a - b) ** 2 for a, b in zip(nv, v, strict=True)))
        if dv > self._dv:  # accelerate gently
            nv = [b + (a - b) * self._dv / dv for a, b in zip(nv, v, strict=True)]
        speed = math.hypot(nv[0], nv[1])
        if speed > self._vmax:
            nv[0], nv[1] = nv[0] * self._vmax / speed, nv[1] * self._vmax / speed
        # height changes no faster than the position (a zoom is as visible as a pan)
        nv[2] = max(-self._vmax, min(self._vmax, nv[2]))
        moved = clamp_window(tuple(p + vi * dt for p, vi in zip(x, nv, strict=True)), self.size, self.settings.max_zoom)  # type: ignore[arg-type]
        self._velocity = (nv[0], nv[1], nv[2])
        self.window = moved
        left = max(abs(t - p) for t, p in zip(target, moved, strict=True))
        whole = target == full_window(self.size)
        tol = 0.5 if whole else self.rest * moved[2]
        if left <= tol and math.hypot(*nv) * dt <= tol:
            self._moving, self._velocity = False, (0.0, 0.0, 0.0)
            if whole:
                self.window = moved = target
        return moved


def crop_rect(win: Window, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The window as whole pixels ``(x0, y0, w, h)`` inside a frame of ``size``, with the
    frame's aspect (the width follows from the rounded height)."""
    fw, fh = size
    h = min(fh, max(2, round(win[2])))
    w = min(fw, max(2, round(h * fw / fh)))
    x0 = min(max(0, round(win[0] - w / 2)), fw - w)
    y0 = min(max(0, round(win[1] - h / 2)), fh - h)
    return x0, y0, w, h
