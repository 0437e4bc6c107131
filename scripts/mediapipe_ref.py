#!/usr/bin/env python3
"""MediaPipe selfie segmentation (landscape model) over one video: the evaluation's fast peer.

Run by scripts/eval.py in the separate evaluation environment (``.venv-eval``, see
docs/quality.md), because mediapipe is an evaluation-only dependency that pulls in
opencv-contrib-python, jax and matplotlib, which the vcam runtime does not need.

usage: mediapipe_ref.py INPUT.mp4 OUT.npy [MAX_FRAMES]
writes OUT.npy: (T, H, W) float32 masks in 0..1 at the video's size, one per frame, and
prints one JSON line: {"frames": T, "ms": [per-frame process() time in ms], "version": ...}
"""

from __future__ import annotations

import json
import sys
import time

import cv2
import mediapipe
import numpy as np
from mediapipe.python.solutions import selfie_segmentation

LANDSCAPE = 1


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    limit = int(argv[2]) if len(argv) == 3 else None
    cap = cv2.VideoCapture(argv[0])
    masks: list[np.ndarray] = []
    ms: list[float] = []
    with selfie_segmentation.SelfieSegmentation(model_selection=LANDSCAPE) as seg:
        while limit is None or len(masks) < limit:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            t0 = time.perf_counter()
            result = seg.process(rgb)
            ms.append((time.perf_counter() - t0) * 1e3)
            masks.append(np.clip(result.segmentation_mask, 0.0, 1.0).astype(np.float32))
    cap.release()
    if not masks:
        print(f"no frames decoded from {argv[0]}", file=sys.stderr)
        return 1
    np.save(argv[1], np.stack(masks))
    print(json.dumps({"frames": len(masks), "ms": ms, "version": mediapipe.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
