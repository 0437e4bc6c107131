"""Matting quality and temporal-stability metrics, as defined in ``shared/evaldata/README.md``.

With predicted alpha p and true alpha g, both (H, W) float32 in 0..1, over all pixels and
frames of one clip:

* MAD   = mean |p - g| * 1e3
* MSE   = mean (p - g)^2 * 1e3
* Grad  = per frame, sum of (|grad G(p)| - |grad G(g)|)^2 with G a Gaussian of sigma 1.4
  (OpenCV ``GaussianBlur``, reflect-101 border) and grad a 3x3 Sobel (unnormalised, so a
  ramp of slope s gives 8 s); averaged over frames, * 1e-3
* dtSSD = sqrt(mean(((p_t - p_{t-1}) - (g_t - g_{t-1}))^2)) * 1e2, the mean taken over all
  pixels of all consecutive frame pairs of the clip
* IoU   = |(p > 0.5) and (g > 0.5)| / |(p > 0.5) or (g > 0.5)| over all pixels and frames
  (1.0 when both are empty everywhere)
* flicker (no ground truth) = mean |p_t - p_{t-1}| * 1e3 over the pixels whose luma
  (BT.601, 0..255, from the input frame) changed by less than 2 levels between the frames

Every mean is pooled over the whole clip (pixels of all frames together), not averaged per
frame, except Grad whose per-frame sums are averaged over frames. A metric with nothing to
average (no ground truth, fewer than two frames, no still pixels) is ``None``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = [
    "FLICKER_LUMA_LEVELS", "GRAD_SIGMA", "SEAM_RADIUS", "ClipScorer", "clip_metrics", "gradient_magnitude", "luma",
    "seam_scores",
]

GRAD_SIGMA = 1.4
FLICKER_LUMA_LEVELS = 2.0
SEAM_RADIUS = 5
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an (H, W, 3) uint8 RGB image: (H, W) float32 in 0..255 (not rounded)."""
    out: np.ndarray = rgb.astype(np.float32) @ _LUMA_WEIGHTS
    return out


def gradient_magnitude(alpha: np.ndarray, sigma: float = GRAD_SIGMA) -> np.ndarray:
    """|Sobel 3x3 (Gaussian(alpha, sigma))| of an (H, W) float32 image, as (H, W) float32."""
    a = np.asarray(alpha, np.float32)
    blurred = cv2.GaussianBlur(a, (0, 0), sigma) if sigma > 0 else a
    gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


class ClipScorer:
    """Accumulates the metrics of one clip frame by frame (in time order), in float64 sums.

    ``add(pred, luma, true)``: ``pred`` (H, W) float32 0..1; ``luma`` (H, W) float 0..255 of
    the input frame (see :func:`luma`); ``true`` (H, W) float32 0..1 or None for clips
    without ground truth. A clip either has ground truth on every frame or on none.
    """

    def __init__(self) -> None:
        self.frames = 0
        self._n_pix = 0
        self._abs = self._sq = 0.0
        self._grad = 0.0
        self._gt_frames = 0
        self._dt_sq = 0.0
        self._dt_n = 0
        self._inter = self._union = 0
        self._flick = 0.0
        self._flick_n = 0
        self._prev: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None

    def add(self, pred: np.ndarray, luma: np.ndarray, true: np.ndarray | None = None) -> None:
        p = np.asarray(pred, np.float32)
        y = np.asarray(luma, np.float32)
        g = None if true is None else np.asarray(true, np.float32)
        if p.ndim != 2 or y.shape != p.shape or (g is not None and g.shape != p.shape):
            raise ValueError(f"pred, luma and true must be the same (H, W), got {p.shape}, {y.shape}, "
                             f"{None if g is None else g.shape}")
        if self.frames and (self._gt_frames == self.frames) != (g is not None):
            raise ValueError("a clip has ground truth on every frame or on none")
        if g is not None:
            d = p - g
            self._abs += float(np.abs(d).sum(dtype=np.float64))
            self._sq += float(np.square(d).sum(dtype=np.float64))
            self._n_pix += d.size
            gd = gradient_magnitude(p) - gradient_magnitude(g)
            self._grad += float(np.square(gd).sum(dtype=np.float64))
            self._gt_frames += 1
            pb, gb = p > 0.5, g > 0.5
            self._inter += int(np.count_nonzero(pb & gb))
            self._union += int(np.count_nonzero(pb | gb))
        if self._prev is not None:
            pp, py, pg = self._prev
            dp = p - pp
            if g is not None and pg is not None:
                self._dt_sq += float(np.square(dp - (g - pg)).sum(dtype=np.float64))
                self._dt_n += dp.size
            still = np.abs(y - py) < FLICKER_LUMA_LEVELS
            self._flick += float(np.abs(dp[still]).sum(dtype=np.float64))
            self._flick_n += int(np.count_nonzero(still))
        self._prev = (p, y, g)
        self.frames += 1

    def result(self) -> dict[str, float | None]:
        """``{"MAD", "MSE", "Grad", "dtSSD", "IoU", "flicker"}`` in the README's units."""
        has_gt = self._gt_frames > 0
        return {
            "MAD": self._abs / self._n_pix * 1e3 if has_gt else None,
            "MSE": self._sq / self._n_pix * 1e3 if has_gt else None,
            "Grad": self._grad / self._gt_frames * 1e-3 if has_gt else None,
            "dtSSD": math.sqrt(self._dt_sq / self._dt_n) * 1e2 if self._dt_n else None,
            "IoU": (self._inter / self._union if self._union else 1.0) if has_gt else None,
            "flicker": self._flick / self._flick_n * 1e3 if self._flick_n else None,
        }


def clip_metrics(
    preds: np.ndarray, lumas: np.ndarray, trues: np.ndarray | None = None
) -> dict[str, float | None]:
    """All metrics of one clip from (T, H, W) stacks (see :class:`ClipScorer` for the formats)."""
    scorer = ClipScorer()
    for t in range(len(preds)):
        scorer.add(preds[t], lumas[t], None if trues is None else trues[t])
    return scorer.result()


def seam_scores(
    reference: list[np.ndarray], chunked: list[np.ndarray], cuts: list[int], radius: int = SEAM_RADIUS
) -> dict[str, float | None]:
    """MAD and dtSSD (README units) of a chunked run's alpha against an unchunked run's
    (``reference`` in the role of the truth), pooled over the frames ``cut - radius`` ..
    ``cut + radius - 1`` around each cut (the frame pairs across the cut included): how
    visible the seams are. Alphas as in :class:`ClipScorer`."""
    if len(reference) != len(chunked):
        raise ValueError(f"reference and chunked must have as many frames, got {len(reference)} and {len(chunked)}")
    abs_sum = n_pix = dt_sq = dt_n = 0.0
    for cut in cuts:
        frames = range(max(cut - radius, 0), min(cut + radius, len(reference)))
        prev: tuple[np.ndarray, np.ndarray] | None = None
        for t in frames:
            g = np.asarray(reference[t], np.float32)
            p = np.asarray(chunked[t], np.float32)
            abs_sum += float(np.abs(p - g).sum(dtype=np.float64))
            n_pix += p.size
            if prev is not None:
                dt_sq += float(np.square((p - prev[0]) - (g - prev[1])).sum(dtype=np.float64))
                dt_n += p.size
            prev = (p, g)
    return {
        "MAD": abs_sum / n_pix * 1e3 if n_pix else None,
        "dtSSD": math.sqrt(dt_sq / dt_n) * 1e2 if dt_n else None,
    }
