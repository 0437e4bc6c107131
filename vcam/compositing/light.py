"""Low-light correction: the person's exposure from the matte, lifted with a slow tone curve.

* :func:`person_luma`: the person's exposure: the alpha-weighted 75th percentile of luma
  (BT.601, 0..255) over the person in the model's small picture, so a bright window behind
  does not count. The upper quartile and not the median: on the dev portraits dark hair or
  dark clothes are half of the person (one well-lit portrait has a median of 10 levels and
  an upper quartile of 117); skin and lit cloth are in the upper quartile.
* :func:`wanted_gain`: the gain of the curve that maps that exposure to ``target``; 1 (nothing
  done) for a person at least ``well_lit`` of the target, a full lift below ``dark`` of it,
  and a blend between, so the correction fades in with the darkness instead of switching.
* :func:`tone_lut`: the curve as a uint8 LUT: ``k u / (1 + (k - 1) u)`` (a lift with a soft
  shoulder: highlights are not clipped), faded into the identity over the darkest
  :data:`TOE` levels (smoothstep), so the slope at black is 1 and sensor noise in near-black
  is not amplified.
* :class:`LightCorrector`: the gain follows the wanted one slowly (log-domain average over
  ``settle_s``) and the LUT is rebuilt only when the gain moved by more than 0.5 %: the
  picture does not pump with every blink of the estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["TOE", "LightCorrector", "LightSettings", "person_luma", "tone_lut", "wanted_gain"]

TOE = 40  # levels over which the curve fades in from the identity at black
_MIN_PERSON_SHARE = 0.01  # less alpha than this share of the picture: nobody to measure
_LUT_STEP = 0.005  # rebuild the LUT when log(gain) moved by more than this


@dataclass(frozen=True, slots=True)
class LightSettings:
    """``target``: the person's exposure (:func:`person_luma`) to reach (0..255); ``max_gain``: the strongest
    lift (the curve's slope above the toe); ``settle_s``: time constant of the gain;
    ``fps``: frames per second."""

    target: float = 140.0
    max_gain: float = 5.0
    settle_s: float = 1.0
    fps: float = 30.0
    well_lit: float = 0.8  # person at or above this share of the target: left alone
    dark: float = 0.65  # at or below this share: lifted all the way to the target


def person_luma(image: np.ndarray, alpha: np.ndarray, q: float = 0.75) -> float | None:
    """Alpha-weighted ``q`` quantile of the luma of ``image`` ((h, w, 3) uint8 RGB) under
    ``alpha`` ((h, w) float32 0..1 or uint8), on every second pixel; None when there is
    (almost) no person."""
    img = image[::2, ::2]
    a = alpha[::2, ::2]
    weight = a.astype(np.float32) * np.float32(1 / 255) if a.dtype == np.uint8 else a
    luma = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    hist = np.bincount(luma.ravel(), weights=weight.ravel(), minlength=256)
    total = float(hist.sum())
    if total < _MIN_PERSON_SHARE * luma.size:
        return None
    cum = np.cumsum(hist)
    return float(np.searchsorted(cum, total * q, side="left"))


def _gain_for(m: float, t: float) -> float:
    """k with k u / (1 + (k - 1) u) = t at u = m (both 0..1)."""
    return t * (1 - m) / (m * (1 - t))


def wanted_gain(exposure: float, settings: LightSettings) -> float:
    """The curve gain for a person whose :func:`person_luma` is ``exposure`` (see the module
    notes), in 1..max_gain."""
    t = settings.target
    lo, hi = settings.dark * t, settings.well_lit * t
    if exposure >= hi:
        return 1.0
    goal = t if exposure <= lo else exposure + (t - exposure) * (hi - exposure) / (hi - lo)
    m = max(exposure, 1.0) / 255.0
    return float(min(max(_gain_for(m, goal / 255.0), 1.0), settings.max_gain))


def tone_lut(gain: float) -> np.ndarray:
    """The (256,) uint8 tone curve for ``gain`` (the identity for 1): see the module notes."""
    u = np.arange(256, dtype=np.float64) / 255.0
    lift = gain * u / (1.0 + (gain - 1.0) * u)
    s = np.clip(np.arange(256, dtype=np.float64) / TOE, 0.0, 1.0)
    w = s * s * (3 - 2 * s)
    out = np.rint(255.0 * (u + w * (lift - u)))
    return np.clip(out, 0, 255).astype(np.uint8)


class LightCorrector:
    """The slow gain and its LUT. :meth:`update` takes one frame's person exposure (None: no
    person; the gain holds) and returns the LUT to apply, or None while the gain is 1."""

    def __init__(self, settings: LightSettings) -> None:
        self.settings = settings
        self.gain = 1.0
        self._lut_gain = 1.0
        self._lut: np.ndarray | None = None
        self._rate = 1.0 - math.exp(-1.0 / (settings.settle_s * settings.fps))

    def update(self, exposure: float | None, enabled: bool = True) -> np.ndarray | None:
        """One frame; ``enabled`` False lets the gain return to 1 at the same slow pace."""
        want = 1.0 if not enabled else (self.gain if exposure is None else wanted_gain(exposure, self.settings))
        lg = math.log(self.gain) + (math.log(want) - math.log(self.gain)) * self._rate
        self.gain = math.exp(lg)
        if abs(lg) < _LUT_STEP and want == 1.0:
            self.gain = 1.0
        if self.gain == 1.0:
            self._lut, self._lut_gain = None, 1.0
            return None
        if self._lut is None or abs(lg - math.log(self._lut_gain)) > _LUT_STEP:
            self._lut, self._lut_gain = tone_lut(self.gain), self.gain
        return self._lut
