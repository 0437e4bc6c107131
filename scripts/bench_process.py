"""Frames per second of ``vcam process``: overlapped stages against one-after-another, in one run.

    .venv/bin/python scripts/bench_process.py --clip CLIPS/real-thoughtful/input.mp4 \
        --sizes 1280x720 1920x1080 --rounds 2 --json /tmp/bench_process.json

For each size the clip is scaled (cover-fit) to that size and written, with a stereo AAC
track, into a temporary folder (H.264 CRF 16, so the input is not the bottleneck of
decoding). Then ``process_file`` runs with ``overlap`` on and off, alternating A B A B... so
that a busy machine slows both alike; one engine is shared (its load time is not counted).
Reported per run: frames, wall seconds from the first frame decoded to the file finished,
frames/s, CPU seconds per frame, and the median milliseconds per stage.

With ``--before-src DIR`` (a checkout of an earlier vcam, e.g. ``git archive main | tar -x
-C DIR``) whole ``vcam process`` commands are timed instead, start-up and model loading
included: that version, this one, and this one with ``--no-overlap``, alternating.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vcam.build import build_engine
from vcam.config import load_config, parse_size
from vcam.files.process import FileOptions, process_file
from vcam.frames import cover_fit
from vcam.media.reader import VideoReader


def make_clip(src: Path, dst: Path, size: tuple[int, int], frames: int) -> Path:
    """``src`` cover-fitted to ``size`` (looped up to ``frames``), with a tone, H.264 CRF 16."""
    reader = VideoReader(src, "clip")
    images = []
    while len(images) < frames:
        f = reader.read_frame()
        if f is None:
            if not images:
                raise SystemExit(f"{src}: no frames")
            reader.rewind()
            continue
        images.append(cover_fit(f.image, size))
    reader.close()
    rate = 30
    with av.open(str(dst), "w") as c:
        v = c.add_stream("libx264", rate=rate, options={"crf": "16", "preset": "fast"})
        v.width, v.height = size
        v.pix_fmt = "yuv420p"
        a = c.add_stream("aac", rate=48000)
        a.layout = "stereo"
        for i, img in enumerate(images):
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, rate)
            c.mux(v.encode(vf))
        c.mux(v.encode(None))
        t = np.arange(int(48000 * frames / rate)) / 48000
        tone = np.stack([0.2 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)
        for start in range(0, tone.shape[1] - 1024 + 1, 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start : start + 1024]), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, start
            c.mux(a.encode(af))
        c.mux(a.encode(None))
    return dst


def run_cli(src: Path, clip: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of ``python -m vcam process`` with ``src`` first on the path."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(src))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vcam", "-q", "process", str(clip), "-o", str(out), *extra],
                   check=True, env=env, cwd=src, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def compare_cli(args: argparse.Namespace, tmp: str) -> int:
    here = Path(__file__).resolve().parents[1]
    variants = [("before", args.before_src, []), ("after", here, []), ("after --no-overlap", here, ["--no-overlap"])]
    rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for text in args.sizes:
        clip = make_clip(args.clip, Path(tmp) / f"in_{text}.mp4", parse_size(text), args.frames)
        for r in range(args.rounds):
            for name, src, extra in variants:
                out = Path(tmp) / "out.mp4"
                wall, cpu = run_cli(src, clip, out, ["--mode", args.mode, *extra])
                out.unlink()
                rows.setdefault((text, name), []).append((wall, cpu))
                print(f"{text} {name:20s} round {r}: {wall:6.2f} s = {args.frames / wall:6.2f} frames/s, "
                      f"{1000 * cpu / args.frames:6.1f} ms CPU/frame", flush=True)
    print(f"\ncores available: {len(os.sched_getaffinity(0))}, mode {args.mode}; whole command, {args.frames} frames")
    print("| size | " + " | ".join(f"{n} frames/s" for n, _, _ in variants) + " |")
    print("|---|" + "---|" * len(variants))
    for text in args.sizes:
        cells = []
        for name, _, _ in variants:
            walls = [w for w, _ in rows[(text, name)]]
            cells.append(f"{args.frames / statistics.median(walls):.1f} ({args.frames / min(walls):.1f})")
        print(f"| {text} | " + " | ".join(cells) + " |")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", required=True, type=Path, help="source video (scaled to each size)")
    ap.add_argument("--sizes", nargs="+", default=["1280x720", "1920x1080"], help="WxH sizes")
    ap.add_argument("--frames", type=int, default=120, help="frames per generated clip (default 120)")
    ap.add_argument("--rounds", type=int, default=2, help="A/B rounds per size (default 2)")
    ap.add_argument("--mode", default="blur", help="effect mode (default blur)")
    ap.add_argument("--encoder-preset", default="medium", help="x264 preset (default medium)")
    ap.add_argument("--preset", default="offline", help="quality preset (default offline, as vcam process)")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (default 0: cores available)")
    ap.add_argument("--cv-threads", type=int, help="OpenCV threads (default: OpenCV's own choice)")
    ap.add_argument("--only", choices=["overlap", "sequential"], help="run one of the two only")
    ap.add_argument("--before-src", type=Path, help="time whole commands against this earlier checkout")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.before_src is not None:
        with tempfile.TemporaryDirectory(prefix="vcam-bench-") as tmp:
            return compare_cli(args, tmp)
    if args.cv_threads is not None:
        import cv2

        cv2.setNumThreads(args.cv_threads)
    cfg, _ = load_config(None, {"effect": {"mode": args.mode}, "model": {"threads": args.threads, "preset": args.preset}})
    engine = build_engine(cfg)
    results = []
    with tempfile.TemporaryDirectory(prefix="vcam-bench-") as tmp:
        for text in args.sizes:
            size = parse_size(text)
            clip = make_clip(args.clip, Path(tmp) / f"in_{text}.mp4", size, args.frames)
            for r in range(args.rounds):
                modes = {"overlap": (True,), "sequential": (False,), None: (True, False)}[args.only]
                for overlap in modes:
                    out = Path(tmp) / f"out_{text}_{overlap}_{r}.mp4"
                    opts = FileOptions(overlap=overlap, encoder_preset=args.encoder_preset)
                    c0, t0 = cpu_seconds(), time.perf_counter()
                    s = process_file(cfg, clip, out, opts, engine=engine)
                    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
                    n = int(str(s["frames_out"]))
                    row = {
                        "size": text, "overlap": overlap, "round": r, "frames": n, "wall_s": round(wall, 2),
                        "fps": round(n / wall, 2), "cpu_ms_per_frame": round(1000 * cpu / n, 1),
                        "stage_ms": s["stage_ms"], "provider": s["provider"], "threads": s["threads"],
                        "model_input": s["model_input"], "downsample_ratio": s["downsample_ratio"],
                    }
                    results.append(row)
                    print(f"{text} overlap={overlap!s:5} round {r}: {n} frames in {wall:6.2f} s = {n / wall:6.2f} frames/s, "
                          f"{1000 * cpu / n:6.1f} ms CPU/frame, stages {s['stage_ms']}", flush=True)
                    out.unlink()
    print(f"\ncores available: {len(os.sched_getaffinity(0))}, mode {args.mode}, preset {args.preset} "
          f"({cfg.model.input_size[0]}x{cfg.model.input_size[1]}@{cfg.model.downsample_ratio:g}/{cfg.model.refine}), "
          f"x264 preset {args.encoder_preset}")
    print("frames/s: median of the rounds (best round); CPU ms per frame: median")
    print("| size | overlapped | one after another | overlapped / one after another | CPU ms/frame overlapped | CPU ms/frame one after another |")
    print("|---|---|---|---|---|---|")
    for text in args.sizes:
        cells = []
        for flag in (True, False):
            rows = [r for r in results if r["size"] == text and r["overlap"] is flag]
            fps = [float(str(r["fps"])) for r in rows]
            cpu = [float(str(r["cpu_ms_per_frame"])) for r in rows]
            cells.append((statistics.median(fps), max(fps), statistics.median(cpu)) if rows else (float("nan"),) * 3)
        (a, a_best, a_cpu), (b, b_best, b_cpu) = cells
        print(f"| {text} | {a:.1f} ({a_best:.1f}) | {b:.1f} ({b_best:.1f}) | {a / b:.2f}x | {a_cpu:.0f} | {b_cpu:.0f} |")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
