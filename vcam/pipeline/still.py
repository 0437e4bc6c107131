"""Still-frame reuse: skip the model while the picture has not changed, reuse the last alpha.

A webcam picture is often nearly still (someone listening). Running the model on a frame
that looks like the last one it saw gives that frame's alpha back, at the full cost of a
model call. :class:`StillGate` compares the model's view of each frame (the picture already
shrunk for the model) with the one the model last *ran* on: both are reduced to grey 8x8-pixel
block means, and when no block moved by ``threshold`` levels (0..255) or more, the frame is
still and the last alpha is reused. The threshold was set on real webcam footage and on
hold-still clips made from the evaluation portraits (docs/quality.md, "Still-frame reuse"):
sensor noise moves block means by a level or two, a moving hand or head by tens.

The recurrent state stays coherent: a skipped frame does not advance it, so the next model
call continues from the frame the state last saw, which looks like the skipped ones (the
comparison is with that frame, never with the previous skipped one, so slow drift adds up
and ends the skip). After every reset of the engine the model runs on ``settle`` frames
before anything is skipped, so a fresh state is not frozen before it has settled.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["BLOCK", "SETTLE_FRAMES", "StillGate", "block_means"]

BLOCK = 8  # model-size pixels per block side
SETTLE_FRAMES = 10  # model runs after a reset before a frame may be skipped


def block_means(small: np.ndarray) -> np.ndarray:
    """(h // 8, w // 8) float32 grey block means (BT.601 luma, 0..255, rounded to whole levels)
    of an (h, w, 3) uint8 RGB picture (at least one block)."""
    if small.ndim != 3 or small.shape[2] != 3 or small.dtype != np.uint8:
        raise ValueError(f"expected (h, w, 3) uint8 RGB, got {small.shape} {small.dtype}")
    h, w = small.shape[:2]
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    out: np.ndarray = cv2.resize(grey, (max(1, w // BLOCK), max(1, h // BLOCK)), interpolation=cv2.INTER_AREA).astype(np.float32)
    return out


class StillGate:
    """Decides, frame by frame, whether the model must run (see the module notes).

    ``threshold``: the largest block-mean change (levels) that still counts as "not moved";
    0 turns reuse off. ``settle``: model runs after :meth:`reset` before a skip is allowed.
    Use: ``alpha = gate.reuse(small)``; when it is None run the model and :meth:`record` the
    result. Counts ``frames`` seen and ``skipped``.
    """

    def __init__(self, threshold: float, settle: int = SETTLE_FRAMES) -> None:
        if threshold < 0 or settle < 0:
            raise ValueError(f"still-frame threshold and settle must be >= 0, got {threshold} and {settle}")
        self.threshold, self.settle = float(threshold), settle
        self._ref: np.ndarray | None = None
        self._alpha: np.ndarray | None = None
        self._pending: np.ndarray | None = None
        self._runs = 0
        self.frames = self.skipped = 0
        self.last_change: float | None = None

    def reset(self) -> None:
        """The engine's state was reset: forget the reference, run the model ``settle`` times."""
        self._ref = self._alpha = None
        self._runs = 0

    def reuse(self, small: np.ndarray) -> np.ndarray | None:
        """The last alpha when ``small`` (the model's view of this frame) is still, else None."""
        self.frames += 1
        self._pending = block_means(small) if self.threshold > 0 else None
        if self._pending is None or self._ref is None or self._alpha is None or self._ref.shape != self._pending.shape:
            self.last_change = None
            return None
        self.last_change = float(np.abs(self._pending - self._ref).max())
        if self._runs < self.settle or self.last_change >= self.threshold:
            return None
        self.skipped += 1
        return self._alpha

    def record(self, alpha: np.ndarray) -> None:
        """The model ran on the frame last given to :meth:`reuse` and returned ``alpha``."""
        self._runs += 1
        if self.threshold > 0:
            self._ref, self._alpha = self._pending, alpha
