#!/usr/bin/env python3
"""Throughput of a batch: ``vcam process --jobs 2`` (local worker processes) against
``--executor ray`` (a Ray started on this machine, one task per file), whole commands
(start-up, Ray's start, model loading included), alternating round by round in one run;
and the fixed cost per task from a batch of tiny files.

usage: .venv/bin/python scripts/bench_ray.py --clip CLIP [--files 4] [--frames 60] [--rounds 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import vcam  # noqa: F401 - loads OpenCV before PyAV
from vcam.media.reader import VideoReader

VCAM = str(Path(sys.executable).parent / "vcam")


def clips(src: Path, folder: Path, files: int, frames: int) -> list[Path]:
    import av

    r = VideoReader(src, "clip", on_corrupt="fail")
    pics = []
    while len(pics) < frames and (d := r.read_frame()) is not None:
        pics.append(d.image)
    r.close()
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(files):
        p = folder / f"f{i}.mp4"
        with av.open(str(p), "w") as c:
            s = c.add_stream("libx264", rate=30)
            s.width, s.height, s.pix_fmt = pics[0].shape[1], pics[0].shape[0], "yuv420p"
            for img in pics:
                c.mux(s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
            c.mux(s.encode(None))
        out.append(p)
    return out


def run(inputs: list[Path], out: Path, extra: list[str]) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    done = subprocess.run([VCAM, "process", *map(str, inputs), "-o", f"{out}/", "-q", *extra], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{extra}: exit {done.returncode}: {done.stderr[-2000:]}")
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", required=True)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tiny", type=int, default=8, help="tiny files (3 frames each) for the cost per task")
    ap.add_argument("--preset", default="offline")
    args = ap.parse_args()
    work = Path(tempfile.gettempdir()) / "vcam-bench-ray"
    shutil.rmtree(work, ignore_errors=True)
    inputs = clips(Path(args.clip), work / "in", args.files, args.frames)
    tiny = clips(Path(args.clip), work / "tiny", args.tiny, 3)
    variants = {
        "local --jobs 2": ["--jobs", "2", "--preset", args.preset],
        "ray (2 CPUs, 1 per task)": ["--executor", "ray", "--ray-cpus", "1", "--preset", args.preset],
    }
    walls: dict[str, list[float]] = {k: [] for k in variants}
    tiny_walls: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(args.rounds):
        for name, extra in variants.items():
            walls[name].append(run(inputs, work / "out", extra))
            tiny_walls[name].append(run(tiny, work / "tout", extra))
            print(f"round {r + 1} {name}: {walls[name][-1]:.1f} s, tiny batch {tiny_walls[name][-1]:.1f} s", flush=True)
    total = args.files * args.frames
    print(f"\n{args.files} files x {args.frames} frames ({total} frames), preset {args.preset}; median (best) of {args.rounds}")
    for name in variants:
        med, best = statistics.median(walls[name]), min(walls[name])
        print(f"{name:26s} {total / med:5.2f} ({total / best:5.2f}) frames/s   wall {med:6.1f} s")
    print(f"\n{args.tiny} files x 3 frames: wall per file (whole command / files)")
    for name in variants:
        print(f"{name:26s} {statistics.median(tiny_walls[name]) / args.tiny:5.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
