"""Scene-cut detection: an abrupt change of the whole picture (a cut in a file, a camera
switch, lights going on) after which the matting engine's recurrent state must be reset.

Each frame is reduced to a 64x36 grey thumbnail (BT.601 luma, area filter). A cut is
declared when, against the previous frame's thumbnail, both the mean absolute difference
(0..255) and the distance between 16-bin luma histograms (half the L1 distance, 0..1) are
large, or when the difference alone is very large (two shots with the same palette).
Motion within one shot moves pixels but keeps the histogram; a new shot changes both.

Thresholds were set on the evaluation clips (``scripts/eval.py`` reports these scores; see
docs/quality.md): within a clip (camera pans, a dancer spinning) the difference peaked at
17.0 and the histogram distance at 0.057; between the last frame of one clip and the first
of another they were at least 40.8 and 0.193 (all 72 joins detected, no frame within a
clip flagged).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["SceneCutDetector"]

THUMB_SIZE = (64, 36)
DIFF_THRESHOLD = 28.0
HIST_THRESHOLD = 0.12
DIFF_ALONE_THRESHOLD = 60.0
_BINS = 16


class SceneCutDetector:
    """Feed frames in order with :meth:`update`; it returns True on the first frame of a new scene.

    The first frame after construction or :meth:`reset` is never a cut (there is nothing to
    compare with). Costs well under a millisecond per 720p frame.
    """

    def __init__(
        self,
        diff_threshold: float = DIFF_THRESHOLD,
        hist_threshold: float = HIST_THRESHOLD,
        diff_alone_threshold: float = DIFF_ALONE_THRESHOLD,
    ) -> None:
        self.diff_threshold = diff_threshold
        self.hist_threshold = hist_threshold
        self.diff_alone_threshold = diff_alone_threshold
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self.last_scores: tuple[float, float] | None = None
        self.cuts = 0

    def reset(self) -> None:
        """Forget the previous frame (the next one starts a fresh comparison)."""
        self._prev = None
        self.last_scores = None

    @staticmethod
    def signature(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(thumbnail (36, 64) float32 luma 0..255, histogram (16,) float32 summing to 1) of an
        (H, W, 3) uint8 RGB frame."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        small = cv2.resize(rgb, THUMB_SIZE, interpolation=cv2.INTER_AREA)
        thumb = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
        hist = np.bincount(((thumb.astype(np.int32) * _BINS) >> 8).ravel(), minlength=_BINS).astype(np.float32)
        return thumb, hist / np.float32(thumb.size)

    def update(self, rgb: np.ndarray) -> bool:
        """True when ``rgb`` ((H, W, 3) uint8 RGB, any size) starts a new scene."""
        thumb, hist = self.signature(rgb)
        prev, self._prev = self._prev, (thumb, hist)
        if prev is None:
            return False
        diff = float(np.abs(thumb - prev[0]).mean())
        hist_dist = float(np.abs(hist - prev[1]).sum()) / 2
        self.last_scores = (diff, hist_dist)
        cut = diff >= self.diff_alone_threshold or (diff >= self.diff_threshold and hist_dist >= self.hist_threshold)
        self.cuts += cut
        return cut
