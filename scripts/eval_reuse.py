#!/usr/bin/env python3
"""Still-frame reuse and first-frame warm-up, measured with the real model through ``Stages``.

    nice -n 10 .venv/bin/python scripts/eval_reuse.py --json /tmp/reuse.json

**Hold still, then move.** From each evaluation portrait ``build.py`` makes its comp clip
(sway, zoom, pan). Here the pose of frame 0 is held for ``--hold`` frames, then the motion
starts (frames 1, 2, ... of the comp clip), ``--move`` frames; every frame gets fresh
sensor-like noise (Gaussian, ``--noise`` levels), so "still" is what a camera delivers, not
identical pixels. Each clip runs through ``Stages.matte`` (the realtime preset, one engine
thread) with still-frame reuse off and on (threshold ``--threshold``), scored against the
exact alpha: MAD and dtSSD (as scripts/eval.py) on the moving frames, MAD of the first
moving frame (lag would show there), the share of frames skipped in each phase, and the
largest |on - off| alpha difference on the moving frames. The block-change scores
(:class:`vcam.pipeline.still.StillGate`) seen on held and on moving frames are reported:
the threshold sits between them.

**Real clips.** The share of frames skipped on the real-* clips, and their flicker with
reuse off and on.

**CPU.** Process CPU ms of one ``Stages.matte`` call on a still frame with reuse (the model is
skipped) and without (it runs), interleaved in rounds.

**First frames** (``--warmup``). MAD over the first 10 frames of each comp clip (realtime and
offline presets) with no warm-up and with N extra runs on the first frame; on
real-asl-thanks, the mean alpha in the bottom-left corner (15 % x 20 % of the picture, where
a blue object shows through while the state is cold), per frame, without and with.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np

from vcam.compositing.refine import make_refiner
from vcam.frames import Frame
from vcam.matting import MattingEngine
from vcam.matting.models import default_model_dir, ensure_model
from vcam.pipeline.stages import Stages
from vcam.presets import PRESETS, Preset

REPO = Path(__file__).resolve().parents[1]


class _Pass:
    needs_alpha = True

    def __call__(self, image: np.ndarray, alpha: np.ndarray, low: object = None, pts: object = None) -> np.ndarray:
        return image


def load_build(evaldata: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("evaldata_build", evaldata / "build.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"no build.py in {evaldata}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def hold_then_move(build: ModuleType, seed: int, portrait: str, background: str, hold: int, move: int,
                   noise: float) -> list[tuple[np.ndarray, np.ndarray]]:
    src = Path(build.SRC)
    fg = cv2.imread(str(src / "portraits" / f"{portrait}.jpg"))
    alpha = cv2.imread(str(src / "portraits" / f"{portrait}.alpha.png"), cv2.IMREAD_GRAYSCALE)
    bg = build._background(str(src / "backgrounds" / background))
    rng = np.random.default_rng(seed)
    out = []
    for t in [0] * hold + list(range(1, move + 1)):
        img, gt = build._composite(fg, alpha, bg, t, seed)
        noisy = np.clip(img.astype(np.float32) + rng.normal(0.0, noise, img.shape).astype(np.float32) + 0.5, 0, 255)
        out.append((cv2.cvtColor(noisy.astype(np.uint8), cv2.COLOR_BGR2RGB), gt.astype(np.float32) / 255))
    return out


def engine_for(model: Path, preset: Preset, threads: int) -> MattingEngine:
    return MattingEngine(model, providers=("cpu",), threads=threads, input_size=preset.input_size,
                         downsample_ratio=preset.downsample_ratio)


def run(stages: Stages, frames: list[np.ndarray], refine: str) -> list[np.ndarray]:
    refiner = make_refiner(refine)
    out = []
    for i, rgb in enumerate(frames):
        m = stages.matte(stages.prepare(Frame(rgb, i, float(i) / 30)))
        assert m.alpha is not None
        out.append(refiner(m.alpha, rgb).astype(np.float32) / 255)
    return out


def mad(p: np.ndarray, g: np.ndarray) -> float:
    return float(np.abs(p - g).mean() * 1e3)


def dtssd(ps: list[np.ndarray], gs: list[np.ndarray]) -> float:
    sq = [float((((ps[t] - ps[t - 1]) - (gs[t] - gs[t - 1])) ** 2).mean()) for t in range(1, len(ps))]
    return float(np.sqrt(np.mean(sq)) * 1e2)


def flicker(ps: list[np.ndarray], frames: list[np.ndarray]) -> float:
    vals = []
    for t in range(1, len(ps)):
        y0 = cv2.cvtColor(frames[t - 1], cv2.COLOR_RGB2GRAY).astype(np.float32)
        y1 = cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY).astype(np.float32)
        still = np.abs(y1 - y0) < 2
        if still.any():
            vals.append(float(np.abs(ps[t] - ps[t - 1])[still].mean()))
    return float(np.mean(vals) * 1e3)


def read_clip(path: Path, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while limit is None or len(out) < limit:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=Path(os.environ.get("VCAM_EVALCLIPS", "CLIPS")), help="folder built by build.py (real-*, comp-*)")
    ap.add_argument("--evaldata", type=Path, default=REPO.parent / "shared" / "evaldata")
    ap.add_argument("--hold", type=int, default=30)
    ap.add_argument("--move", type=int, default=30)
    ap.add_argument("--noise", type=float, default=2.0, help="sensor noise, levels (standard deviation)")
    ap.add_argument("--threshold", type=float, default=PRESETS["realtime"].still)
    ap.add_argument("--warmup", type=int, nargs="*", default=[], help="warm-up counts to compare with none")
    ap.add_argument("--cpu-rounds", type=int, default=5)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: hold,real,cpu,first (first-comp: only the comp part of it)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    skip = set(filter(None, args.skip.split(",")))
    build = load_build(args.evaldata)
    model = ensure_model("rvm_mobilenetv3_fp32", None, default_model_dir())
    live = PRESETS["realtime"]
    engine = engine_for(model, live, 1)
    doc: dict[str, Any] = {"threshold": args.threshold, "hold": args.hold, "move": args.move, "noise": args.noise}

    def stages(still: float, warmup: int = 0, eng: MattingEngine = engine, size: tuple[int, int] = (1280, 720)) -> Stages:
        eng.reset()
        return Stages(eng, _Pass(), output_size=size, still=still, warmup=warmup)  # type: ignore[arg-type]

    if "hold" not in skip:
        rows = []
        held_scores: list[float] = []
        moving_scores: list[float] = []
        for seed, (portrait, background) in enumerate(build.PAIRS):
            clip = hold_then_move(build, seed, portrait, background, args.hold, args.move, args.noise)
            frames, gts = [c[0] for c in clip], [c[1] for c in clip]
            off = run(stages(0.0), frames, live.refine)
            st = stages(args.threshold)
            gate = st.still
            assert gate is not None
            refiner = make_refiner(live.refine)
            on, skipped, scores = [], [], []
            for i, rgb in enumerate(frames):
                before = gate.skipped
                m = st.matte(st.prepare(Frame(rgb, i, float(i) / 30)))
                assert m.alpha is not None
                on.append(refiner(m.alpha, rgb).astype(np.float32) / 255)
                skipped.append(gate.skipped > before)
                scores.append(gate.last_change)
            h = args.hold
            held_scores += [s for s in scores[10:h] if s is not None]
            moving_scores += [s for s in scores[h:] if s is not None]
            mv = slice(h, None)
            row = {
                "clip": portrait,
                "moving MAD off": mad(np.stack(off[mv]), np.stack(gts[mv])), "moving MAD on": mad(np.stack(on[mv]), np.stack(gts[mv])),
                "moving dtSSD off": dtssd(off[mv], gts[mv]), "moving dtSSD on": dtssd(on[mv], gts[mv]),
                "first moving MAD off": mad(off[h], gts[h]), "first moving MAD on": mad(on[h], gts[h]),
                "held MAD off": mad(np.stack(off[10:h]), np.stack(gts[10:h])), "held MAD on": mad(np.stack(on[10:h]), np.stack(gts[10:h])),
                "held skipped %": 100.0 * sum(skipped[:h]) / h, "moving skipped %": 100.0 * sum(skipped[h:]) / len(skipped[h:]),
                "moving max |on-off|": float(max(np.abs(a - b).max() for a, b in zip(on[mv], off[mv], strict=True))),
            }
            rows.append(row)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), file=sys.stderr)
        mean = {k: round(float(np.mean([r[k] for r in rows])), 3) for k in rows[0] if k != "clip"}
        doc["hold_then_move"] = {"per_clip": rows, "mean": mean,
                                 "held_change_max": round(max(held_scores), 2),
                                 "held_change_p99": round(float(np.percentile(held_scores, 99)), 2),
                                 "moving_change_min": round(min(moving_scores), 2),
                                 "moving_change_p01": round(float(np.percentile(moving_scores, 1)), 2)}
        print("hold-then-move (mean over clips):", json.dumps(doc["hold_then_move"]["mean"]))
        print("block change: held max", doc["hold_then_move"]["held_change_max"], "p99", doc["hold_then_move"]["held_change_p99"],
              "| moving min", doc["hold_then_move"]["moving_change_min"], "p01", doc["hold_then_move"]["moving_change_p01"])

    if "real" not in skip:
        real = {}
        for d in sorted(args.clips.glob("real-*")):
            frames = read_clip(d / "input.mp4")
            size = (frames[0].shape[1], frames[0].shape[0])  # the clip's own size
            off = run(stages(0.0, size=size), frames, live.refine)
            st = stages(args.threshold, size=size)
            on = run(st, frames, live.refine)
            assert st.still is not None
            real[d.name] = {"frames": len(frames), "skipped %": round(100.0 * st.still.skipped / len(frames), 1),
                            "flicker off": round(flicker(off, frames), 3), "flicker on": round(flicker(on, frames), 3),
                            "MAD on vs off": round(mad(np.stack(on), np.stack(off)), 3)}
            print(d.name, json.dumps(real[d.name]))
        doc["real"] = real

    if "cpu" not in skip:
        clip = hold_then_move(build, 0, *build.PAIRS[0], 12, 0, args.noise)
        frames = [c[0] for c in clip]
        st_on, st_off = stages(args.threshold), stages(0.0, eng=engine_for(model, live, 1))
        for i, rgb in enumerate(frames):  # settle both, so that the gated one skips from here on
            st_on.matte(Frame(rgb, i, 0.0))
            st_off.matte(Frame(rgb, i, 0.0))
        rounds: dict[str, list[float]] = {"reuse (model skipped)": [], "model runs": []}
        n = 20
        for r in range(args.cpu_rounds):
            for name, st in ([("reuse (model skipped)", st_on), ("model runs", st_off)][:: 1 if r % 2 == 0 else -1]):
                c0 = time.process_time()
                for k in range(n):
                    st.matte(Frame(frames[k % len(frames)], 100 + k, 0.0))
                rounds[name].append((time.process_time() - c0) / n * 1e3)
        assert st_on.still is not None
        doc["cpu_ms_per_still_call"] = {k: {"median": round(float(np.median(v)), 3), "rounds": [round(x, 3) for x in v]} for k, v in rounds.items()}
        print("CPU ms per Stages.matte on a still 720p frame:", json.dumps(doc["cpu_ms_per_still_call"]))

    if "first" not in skip and args.warmup:
        first: dict[str, Any] = {}
        for pname in () if "first-comp" in skip else ("realtime", "offline"):
            preset = PRESETS[pname]
            eng = engine_for(model, preset, 2)
            per_n: dict[int, list[float]] = {}
            for n in [0, *args.warmup]:
                vals = []
                for portrait, _bg in build.PAIRS:
                    frames = read_clip(args.clips / f"comp-{portrait}" / "input.mp4", 10)
                    gts = [cv2.imread(str(args.clips / f"comp-{portrait}" / "gt" / f"{i:06d}.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
                           for i in range(len(frames))]
                    alphas = run(stages(0.0, n, eng), frames, preset.refine)
                    vals.append([mad(a, g) for a, g in zip(alphas, gts, strict=True)])
                per_n[n] = [round(float(x), 3) for x in np.mean(vals, axis=0)]
                print(pname, "warmup", n, "MAD first 10 frames (mean over comp clips):", per_n[n], "mean", round(float(np.mean(per_n[n])), 3))
            first[pname] = {str(k): {"per_frame": v, "mean": round(float(np.mean(v)), 3)} for k, v in per_n.items()}
        # real-asl-thanks: a blue object in the bottom-left corner shows through on a cold state
        asl = args.clips / "real-asl-thanks" / "input.mp4"
        if asl.is_file():
            frames = read_clip(asl, 10)
            fh, fw = frames[0].shape[:2]
            corner = (slice(int(fh * 0.8), fh), slice(0, int(fw * 0.15)))
            for pname in ("realtime", "offline"):
                preset = PRESETS[pname]
                eng = engine_for(model, preset, 2)
                spur: dict[str, list[float]] = {}
                for n in [0, *args.warmup]:
                    alphas = run(stages(0.0, n, eng, (fw, fh)), frames, preset.refine)
                    spur[str(n)] = [round(float(a[corner].mean() * 1e3), 2) for a in alphas]
                    print(f"real-asl-thanks {pname} warmup {n}: mean alpha x1e3 in the bottom-left corner, frames 0-9:", spur[str(n)])
                first[f"real-asl-thanks {pname}, corner alpha x1e3"] = spur
        doc["first_frames"] = first

    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
