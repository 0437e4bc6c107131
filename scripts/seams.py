#!/usr/bin/env python3
"""How visible the cuts of a chunked run are (vcam process --chunks): for each warm-up
lead-in, the MAD and dtSSD (shared/evaldata/README.md units) of the chunked run's mattes
against the unchunked run's over +-5 frames around every cut, with two references:
the same figures away from the cuts ("mid"), and between two unchunked runs that differ
only in ONNX Runtime's thread count ("floor": what the runtime's own rounding gives).

The mattes are computed as file mode computes them (the same Stages, engine, refiner and
the chunk lead-in rule of vcam/files/chunks.py), without encoding.

usage: .venv/bin/python scripts/seams.py [--clips DIR] [--lead-ins 0 2 4 8 16 32] [--preset realtime]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import vcam  # noqa: F401 - loads OpenCV before PyAV
from vcam.build import build_engine
from vcam.compositing.cutout import AlphaOnly
from vcam.compositing.refine import make_refiner
from vcam.config import validate_config
from vcam.files.chunks import ChunkSpec, plan_chunks
from vcam.frames import Frame
from vcam.media.reader import VideoReader
from vcam.pipeline.stages import Stages
from vcam.tools.evaluation.metrics import seam_scores


def read_frames(path: Path) -> list[np.ndarray]:
    r = VideoReader(path, "input video", on_corrupt="fail")
    out = []
    try:
        while (d := r.read_frame()) is not None:
            out.append(d.image)
    finally:
        r.close()
    return out


def mattes(cfg, engine, frames: list[np.ndarray], ranges: list[tuple[int, int, int]]) -> list[np.ndarray]:
    """Alpha (float 0..1, output size) of every frame, each range (lead-in start, start, end)
    from a fresh state."""
    out: list[np.ndarray | None] = [None] * len(frames)
    h, w = frames[0].shape[:2]
    for lead, start, end in ranges:
        engine.reset()

        def keep(frame: Frame, alpha: np.ndarray) -> None:
            out[frame.index] = alpha.astype(np.float32) / 255.0

        st = Stages(engine, AlphaOnly(), output_size=(w, h), on_alpha=keep, refiner=make_refiner(cfg.model.refine))
        for i in range(lead, end):
            m = st.matte(st.prepare(Frame(frames[i], i, 0.0, i / 30)))
            if i >= start:
                st.render(m)
    assert all(a is not None for a in out)
    return out  # type: ignore[return-value]


def long_clip(src: Path, out: Path, repeats: int = 3) -> Path:
    """src played forward, backward, forward ... (``repeats`` times its length), keyframes
    every 30 frames."""
    import av

    frames = read_frames(src)
    seq = [f for k in range(repeats) for f in (frames if k % 2 == 0 else frames[::-1])]
    with av.open(str(out), "w") as c:
        s = c.add_stream("libx264", rate=30, options={"g": "30", "keyint_min": "30", "sc_threshold": "0", "crf": "12"})
        s.width, s.height, s.pix_fmt = seq[0].shape[1], seq[0].shape[0], "yuv420p"
        for img in seq:
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(s.encode(None))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default=os.environ.get("VCAM_EVALCLIPS", "CLIPS"), help="built evaluation clips (shared/evaldata/build.py)")
    ap.add_argument("--lead-ins", type=int, nargs="+", default=[0, 2, 4, 8, 16, 32])
    ap.add_argument("--preset", default="realtime")
    ap.add_argument("--only", nargs="*", help="clip names (default all, plus long-thoughtful)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--long-repeats", type=int, default=3, help="the long clip is real-thoughtful this many times")
    ap.add_argument("--long-chunks", type=int, default=6)
    args = ap.parse_args()
    clips = sorted(p for p in Path(args.clips).iterdir() if (p / "input.mp4").is_file())
    cfg = validate_config({"model": {"preset": args.preset, "threads": 2}})
    cfg1 = validate_config({"model": {"preset": args.preset, "threads": 1}})
    engine, engine1 = build_engine(cfg), build_engine(cfg1)
    work = Path(tempfile.gettempdir()) / "vcam-seams"
    work.mkdir(exist_ok=True)
    inputs = [(p.name, p / "input.mp4", ChunkSpec(seconds=0.4)) for p in clips]  # a cut at every keyframe (12 frames)
    thoughtful = Path(args.clips) / "real-thoughtful" / "input.mp4"
    if thoughtful.is_file():
        long = long_clip(thoughtful, work / f"long{args.long_repeats}.mp4", args.long_repeats)
        inputs.append(("long-thoughtful", long, ChunkSpec(count=args.long_chunks)))
    if args.only:
        inputs = [i for i in inputs if i[0] in args.only]
    rows = []
    for name, path, spec in inputs:
        frames = read_frames(path)
        n = len(frames)
        ref = mattes(cfg, engine, frames, [(0, 0, n)])
        ref1 = mattes(cfg1, engine1, frames, [(0, 0, n)])
        chunks = plan_chunks(path, spec)
        cuts = [c.start for c in chunks[1:]]
        mids = [(c.start + c.end) // 2 for c in chunks if c.end - c.start >= 22]
        floor = seam_scores(ref, ref1, cuts)
        row = {"clip": name, "frames": n, "cuts": cuts, "floor": floor, "lead_ins": {}}
        gt_dir = path.parent / "gt"
        gt = None
        if gt_dir.is_dir():
            import cv2

            gt = [cv2.imread(str(gt_dir / f"{i:06d}.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255 for i in range(n)]
            row["unchunked_vs_truth"] = seam_scores(gt, ref, cuts)
        for lead in args.lead_ins:
            got = mattes(cfg, engine, frames, [(c.start - min(lead, c.start), c.start, c.end) for c in chunks])
            row["lead_ins"][lead] = {"seam": seam_scores(ref, got, cuts), "mid": seam_scores(ref, got, mids) if mids else None}
            if gt is not None:
                row["lead_ins"][lead]["vs_truth"] = seam_scores(gt, got, cuts)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    # the mean over clips per lead-in
    print("\nlead-in  seam MAD  seam dtSSD   (floor MAD / dtSSD: threads 1 vs 2, unchunked)")
    fm = np.mean([r["floor"]["MAD"] for r in rows])
    fd = np.mean([r["floor"]["dtSSD"] for r in rows])
    for lead in args.lead_ins:
        m = np.mean([r["lead_ins"][lead]["seam"]["MAD"] for r in rows])
        d = np.mean([r["lead_ins"][lead]["seam"]["dtSSD"] for r in rows])
        print(f"{lead:7d}  {m:8.3f}  {d:10.3f}   ({fm:.3f} / {fd:.3f})")
    truth = [r for r in rows if "unchunked_vs_truth" in r]
    if truth:
        print("\nagainst the ground truth (comp clips), around the cuts: MAD / dtSSD")
        um = np.mean([r["unchunked_vs_truth"]["MAD"] for r in truth])
        ud = np.mean([r["unchunked_vs_truth"]["dtSSD"] for r in truth])
        print(f"unchunked  {um:.3f} / {ud:.3f}")
        for lead in args.lead_ins:
            m = np.mean([r["lead_ins"][lead]["vs_truth"]["MAD"] for r in truth])
            d = np.mean([r["lead_ins"][lead]["vs_truth"]["dtSSD"] for r in truth])
            print(f"lead-in {lead:2d} {m:.3f} / {d:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
