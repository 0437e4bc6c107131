#!/usr/bin/env python3
"""Measure matting quality, temporal stability and speed of engine settings on evaluation clips.

Build the clips once (about 20 s, 21 MB; needs numpy and opencv):

    python ../shared/evaldata/build.py CLIPS     (CLIPS: any folder)

then, from the repository root:

    nice -n 10 .venv/bin/python scripts/eval.py --clips CLIPS \\
        --setting 384x216@0.5/bilinear,guided --setting offline --json eval.json

A setting is ``WxH@RATIO/REFINE[,REFINE...]`` (one engine run, scored once per refinement
method; a method may carry parameters, ``guided-r2-e0.001``) or a preset name
(``realtime``, ``offline``). Experiments go in front of a setting: ``crop:`` (the model sees
a crop around the person), ``lagN:`` (each frame scored with the alpha of N frames before, as
``live.alpha: latest`` shows it), ``everyN:`` (the model runs on every Nth frame only; the
frames between reuse its last alpha, refined against their own picture), ``stillT:``
(inference skipped while no 8x8 block of the model-size grey picture moved by T levels, :mod:`vcam.pipeline.still`; JSON
``inference_skipped_pct``). A preset applies its own still-frame threshold, as the product does. ``--aspect 4:3``
centre-crops every clip first. Every invocation also runs the two references: the designed
default (256x144@0.25/bilinear) and MediaPipe selfie segmentation (landscape model), the
latter in the separate evaluation environment (``.venv-eval``, see docs/quality.md) or
reported as unavailable with the reason.

Metrics (MAD, MSE, Grad, dtSSD, IoU, flicker) are those of shared/evaldata/README.md, see
:mod:`vcam.tools.evaluation.metrics`; each is computed per clip at the clip's own resolution and
averaged over the clips of a kind (comp, davis, real). The per-kind "infer"/"refine" columns
are medians of per-frame wall time during scoring. Speed is then measured on its own: the
first 720p comp clip's frames are run through every setting in turn, for several rounds, and
the quietest round's median is reported, because the machine is shared (engine threads =
cores available unless ``--threads``). MediaPipe's times come from its own process.

``--render JSON`` prints the markdown tables of docs/quality.md from a ``--json`` file.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vcam.compositing.refine import BilinearRefiner, GuidedRefiner, Refiner
from vcam.matting import Matter
from vcam.matting.choice import Candidate, open_engine
from vcam.matting.engine import available_cores, shrink_frame
from vcam.matting.models import default_model_dir, ensure_model
from vcam.pipeline.scenecut import SceneCutDetector
from vcam.pipeline.still import SETTLE_FRAMES, StillGate
from vcam.presets import DESIGNED_DEFAULT, LIVE_PRESET, PRESETS
from vcam.tools.evaluation import ClipScorer, luma

log = logging.getLogger("vcam.eval")
REPO = Path(__file__).resolve().parents[1]
KINDS = ("comp", "davis", "real")
METRICS = ("MAD", "MSE", "Grad", "dtSSD", "IoU", "flicker")
EVAL_VENV_PYTHON = REPO / ".venv-eval" / "bin" / "python"
_SETTING = re.compile(r"(\d+)x(\d+)@([0-9.]+)(?:/(.+))?")


@dataclass
class Clip:
    name: str
    kind: str
    path: Path
    aspect: float | None = None  # centre-crop every frame (and its ground truth) to this width/height

    def _crop(self, img: np.ndarray) -> np.ndarray:
        if self.aspect is None:
            return img
        h, w = img.shape[:2]
        cw, ch = min(w, round(h * self.aspect)), min(h, round(w / self.aspect))
        x, y = (w - cw) // 2, (h - ch) // 2
        return np.ascontiguousarray(img[y : y + ch, x : x + cw])

    def frames(self, limit: int | None) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """(RGB uint8 frame, ground-truth alpha float32 0..1 or None) in order."""
        cap = cv2.VideoCapture(str(self.path / "input.mp4"))
        gt_dir = self.path / "gt"
        i = 0
        try:
            while limit is None or i < limit:
                ok, bgr = cap.read()
                if not ok:
                    break
                gt = None
                if gt_dir.is_dir():
                    g = cv2.imread(str(gt_dir / f"{i:06d}.png"), cv2.IMREAD_GRAYSCALE)
                    if g is None:
                        raise SystemExit(f"{self.name}: ground truth {i:06d}.png is missing")
                    gt = self._crop(g).astype(np.float32) * np.float32(1 / 255)
                yield self._crop(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), gt
                i += 1
        finally:
            cap.release()


@dataclass
class Setting:
    """One engine configuration scored with one or more refiners."""

    input_size: tuple[int, int]
    ratio: float
    refiners: list[tuple[str, Refiner]]
    preset: str | None = None
    crop: bool = False
    lag: int = 0  # score frame t with the alpha of frame t - lag (live.alpha: latest)
    still: float = 0.0  # skip inference (reuse the last alpha) while the picture stays this close
    every: int = 1  # run the model on every Nth frame only, reusing its alpha on the others

    @property
    def engine_label(self) -> str:
        lag = f"lag{self.lag}:" if self.lag else ""
        lag = (f"every{self.every}:" if self.every > 1 else "") + (f"still{self.still:g}:" if self.still else "") + lag
        return lag + ("crop:" if self.crop else "") + f"{self.input_size[0]}x{self.input_size[1]}@{self.ratio:g}"


class PersonCrop:
    """Experimental (evaluation only): feed the model a person-centred crop of the frame.

    The crop has the model input's aspect. It starts as the largest centred box of that
    aspect that fits the frame's height, then follows the bounding box of the previous
    frame's alpha (> 0.1) grown by ``margin`` on each side, smoothed by ``smooth`` (jumping at
    once when the person would leave it). Parts of the crop outside the frame are filled by
    edge replication. The crop holds still while the wanted box is within ``hold_frac`` of
    its height. When the crop moves or rescales by more than ``reset_frac`` of its height in
    one frame, the recurrent state no longer lines up and the engine is reset.
    """

    def __init__(self, aspect: float, margin: float = 0.12, smooth: float = 0.3, reset_frac: float = 0.1,
                 hold_frac: float = 0.1) -> None:
        self.aspect, self.margin, self.smooth, self.reset_frac = aspect, margin, smooth, reset_frac
        self.hold_frac = hold_frac
        self.box: tuple[float, float, float] | None = None  # centre x, centre y, height (pixels)
        self.resets = 0

    def current(self, w: int, h: int) -> tuple[int, int, int, int]:
        """(x0, y0, width, height) of the crop in frame pixels (may reach outside the frame)."""
        if self.box is None:
            self.box = (w / 2, h / 2, float(h))
        cx, cy, bh = self.box
        bw = bh * self.aspect
        x0, y0 = cx - bw / 2, cy - bh / 2
        # keep the box inside the frame where it fits: real picture beats replicated edges
        if bw <= w:
            x0 = min(max(x0, 0.0), w - bw)
        if bh <= h:
            y0 = min(max(y0, 0.0), h - bh)
        return round(x0), round(y0), max(2, round(bw)), max(2, round(bh))

    def extract(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        x0, y0, bw, bh = box
        h, w = rgb.shape[:2]
        pad = max(0, -x0, -y0, x0 + bw - w, y0 + bh - h)
        src = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else rgb
        return np.ascontiguousarray(src[y0 + pad : y0 + pad + bh, x0 + pad : x0 + pad + bw])

    @staticmethod
    def paste(patch_alpha: np.ndarray, box: tuple[int, int, int, int], w: int, h: int) -> np.ndarray:
        x0, y0, bw, bh = box
        out = np.zeros((h, w), np.float32)
        xs, ys, xe, ye = max(0, x0), max(0, y0), min(w, x0 + bw), min(h, y0 + bh)
        if xe > xs and ye > ys:
            out[ys:ye, xs:xe] = patch_alpha[ys - y0 : ye - y0, xs - x0 : xe - x0]
        return out

    def observe(self, alpha: np.ndarray) -> bool:
        """Move the crop for the next frame from this frame's full-size alpha; True = reset."""
        h, w = alpha.shape
        assert self.box is not None
        ys, xs = np.nonzero(alpha[::4, ::4] > 0.1)
        if len(xs) == 0:
            want = (w / 2, h / 2, float(max(h, w / self.aspect)))
        else:
            x0, x1, y0, y1 = xs.min() * 4, xs.max() * 4 + 4, ys.min() * 4, ys.max() * 4 + 4
            bw, bh = (x1 - x0) * (1 + 2 * self.margin), (y1 - y0) * (1 + 2 * self.margin)
            bh = max(bh, bw / self.aspect, 0.3 * h)
            bh = min(bh, max(h, w / self.aspect) * 1.1)
            want = ((x0 + x1) / 2, (y0 + y1) / 2, float(bh))
        cx, cy, bh = self.box
        if max(abs(want[0] - cx), abs(want[1] - cy), abs(want[2] - bh)) < self.hold_frac * bh:
            return False  # close enough: hold still, a crop that jitters makes the matte flicker
        new = tuple(self.smooth * o + (1 - self.smooth) * n for o, n in zip(self.box, want, strict=True))
        # jump when the smoothed box would cut the person off
        nbw = new[2] * self.aspect
        if len(xs) and (xs.min() * 4 < new[0] - nbw / 2 or xs.max() * 4 + 4 > new[0] + nbw / 2
                        or ys.min() * 4 < new[1] - new[2] / 2 or ys.max() * 4 + 4 > new[1] + new[2] / 2):
            new = want
        self.box = (float(new[0]), float(new[1]), float(new[2]))
        moved = max(abs(new[0] - cx), abs(new[1] - cy), abs(new[2] - bh)) > self.reset_frac * bh
        self.resets += int(moved)
        return bool(moved)


@dataclass
class Result:
    label: str
    per_clip: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str | None = None
    timing: dict[str, Any] | None = None


def parse_refiner(spec: str) -> tuple[str, Refiner]:
    """``bilinear``, ``guided``, ``guided-r<radius>-e<eps>``, ``band`` or
    ``band-l<lo>-h<hi>-g<grow>`` (alpha levels 0..255, model-size pixels)."""
    if spec == "bilinear":
        return spec, BilinearRefiner()
    band = re.fullmatch(r"band(?:-l(\d+))?(?:-h(\d+))?(?:-g(\d+))?", spec)
    if band:
        from vcam.compositing.edges import BAND_GROW, BAND_HI, BAND_LO, EdgeBandRefiner

        lo, hi, grow = (int(g) if g else d for g, d in zip(band.groups(), (BAND_LO, BAND_HI, BAND_GROW), strict=True))
        return spec, EdgeBandRefiner(lo, hi, grow)
    m = re.fullmatch(r"guided(?:-r(\d+))?(?:-e([0-9.e-]+))?", spec)
    if not m:
        raise SystemExit(f"unknown refinement {spec!r}: use bilinear, guided, guided-r2-e0.001, band or band-l8-h247-g1")
    ref = GuidedRefiner()
    if m.group(1):
        ref = GuidedRefiner(int(m.group(1)), ref.eps)
    if m.group(2):
        ref = GuidedRefiner(ref.radius, float(m.group(2)))
    return spec, ref


def parse_setting(spec: str) -> Setting:
    every = re.match(r"every(\d+):", spec)
    if every:
        inner = parse_setting(spec[every.end():])
        if inner.crop or inner.lag or inner.still or int(every.group(1)) < 1:
            raise SystemExit(f"bad setting {spec!r}: every takes N >= 1 and does not combine with crop, lag or still")
        inner.every = int(every.group(1))
        return inner
    still = re.match(r"still(\d+(?:\.\d+)?):", spec)
    if still:
        inner = parse_setting(spec[still.end():])
        if inner.crop or inner.lag:
            raise SystemExit(f"bad setting {spec!r}: still does not combine with crop or lag")
        inner.still = float(still.group(1))
        return inner
    lag = re.match(r"lag(\d+):", spec)
    if lag:
        inner = parse_setting(spec[lag.end():])
        if inner.crop:
            raise SystemExit(f"bad setting {spec!r}: lag and crop do not combine")
        inner.lag = int(lag.group(1))
        return inner
    if spec.startswith("crop:"):
        inner = parse_setting(spec[5:])
        inner.crop = True
        return inner
    if spec in PRESETS:
        p = PRESETS[spec]
        return Setting(p.input_size, p.downsample_ratio, [parse_refiner(p.refine)], preset=spec, still=p.still)
    m = _SETTING.fullmatch(spec)
    if not m:
        raise SystemExit(f"bad setting {spec!r}: use WxH@RATIO/REFINE[,REFINE] or one of {', '.join(PRESETS)}")
    refs = (m.group(4) or "bilinear").split(",")
    return Setting((int(m.group(1)), int(m.group(2))), float(m.group(3)), [parse_refiner(r) for r in refs])


def find_clips(root: Path, kinds: list[str], only: str | None, aspect: float | None = None) -> list[Clip]:
    if not root.is_dir():
        raise SystemExit(f"no clips at {root}: build them with 'python ../shared/evaldata/build.py {root}'")
    clips = []
    for d in sorted(root.iterdir()):
        kind = d.name.split("-", 1)[0]
        if kind in kinds and (d / "input.mp4").is_file() and (only is None or only in d.name):
            clips.append(Clip(d.name, kind, d, aspect))
    if not clips:
        raise SystemExit(f"no clips of kind {', '.join(kinds)} under {root}")
    return clips


def _aspect(text: str) -> float:
    m = re.fullmatch(r"(\d+):(\d+)", text.strip())
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise argparse.ArgumentTypeError(f"aspect ratio must look like 4:3, got {text!r}")
    return int(m.group(1)) / int(m.group(2))


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 2) if xs else None


def time_settings(
    settings: list[Setting], model: Path, threads: int, frames: list[np.ndarray], blocks: int
) -> list[list[dict[str, Any]]]:
    """Per setting, per refiner: median per-frame inference and refinement ms over ``frames``,
    measured in ``blocks`` rounds that visit every setting in turn, so that load from other
    processes on the shared machine falls on all settings alike. Reports every round's
    median and the quietest round's (the figure to compare)."""
    engines = [_engine(s, model, threads) for s in settings]
    rounds: list[list[tuple[float, list[float], float]]] = [[] for _ in settings]
    for b in range(blocks):
        order = list(range(len(settings)))
        order = order[b % len(order):] + order[: b % len(order)]  # rotate who goes first
        for i in order:
            setting, engine = settings[i], engines[i]
            engine.reset()
            infer: list[float] = []
            cpu: list[float] = []
            refine: list[list[float]] = [[] for _ in setting.refiners]
            for rgb in frames:
                c0, t0 = time.process_time(), time.perf_counter()
                small = engine.infer(rgb)
                infer.append((time.perf_counter() - t0) * 1e3)
                cpu.append((time.process_time() - c0) * 1e3)
                for k, (_, refiner) in enumerate(setting.refiners):
                    t1 = time.perf_counter()
                    refiner(small, rgb)
                    refine[k].append((time.perf_counter() - t1) * 1e3)
            rounds[i].append((statistics.median(infer), [statistics.median(r) for r in refine], statistics.median(cpu)))
        log.info("timing round %d of %d done", b + 1, blocks)
    out = []
    for setting, per in zip(settings, rounds, strict=True):
        out.append([{
            "frames": len(frames), "size": [int(frames[0].shape[1]), int(frames[0].shape[0])],
            "infer_ms_blocks": [round(r[0], 2) for r in per],
            "refine_ms_blocks": [round(r[1][k], 2) for r in per],
            "infer_ms": round(min(r[0] for r in per), 2),
            "infer_cpu_ms_blocks": [round(r[2], 2) for r in per],
            "infer_cpu_ms": round(statistics.median(r[2] for r in per), 2),
            "refine_ms": round(min(r[1][k] for r in per), 2),
        } for k in range(len(setting.refiners))])
    return out


RUNTIME = Candidate("onnxruntime", "f32")  # --runtime
STILL_SETTLE = SETTLE_FRAMES  # model runs after a reset before the still gate may skip (the product's)


def _engine(setting: Setting, model: Path, threads: int) -> Matter:
    return open_engine(RUNTIME, model, input_size=setting.input_size, downsample_ratio=setting.ratio, threads=threads)


def _runtime_prefix() -> str:
    return "" if RUNTIME.label == "onnxruntime-f32" else f"{RUNTIME.label}:"


def run_setting(setting: Setting, model: Path, clips: list[Clip], threads: int, limit: int | None) -> list[Result]:
    engine = _engine(setting, model, threads)
    results = [Result(f"{_runtime_prefix()}{setting.engine_label}/{name}") for name, _ in setting.refiners]
    for clip in clips:
        engine.reset()
        scorers = [ClipScorer() for _ in setting.refiners]
        infer_ms: list[float] = []
        refine_ms: list[list[float]] = [[] for _ in setting.refiners]
        crop = PersonCrop(setting.input_size[0] / setting.input_size[1]) if setting.crop else None
        recent: collections.deque[np.ndarray] = collections.deque(maxlen=setting.lag + 1)
        still = StillGate(setting.still, settle=STILL_SETTLE) if setting.still else None  # the product's gate (vcam/pipeline/still.py)
        last: np.ndarray | None = None
        for n, (rgb, gt) in enumerate(clip.frames(limit)):
            fh, fw = rgb.shape[:2]
            box = crop.current(fw, fh) if crop else None
            src = crop.extract(rgb, box) if crop and box else rgb
            t0 = time.perf_counter()
            if setting.every > 1 and n % setting.every and last is not None:
                small = last  # the model rests: the alpha of its last run (its state not advanced)
            elif still is not None:
                shrunk = engine.shrink(src)
                small = still.reuse(shrunk)
                if small is None:
                    small = engine.infer(shrunk)
                    still.record(small)
            else:
                small = engine.infer(src)
            last = small
            infer_ms.append((time.perf_counter() - t0) * 1e3)
            recent.append(small)
            small = recent[0]  # with lag N: the alpha of N frames ago (the first one at the start)
            y = luma(rgb)
            first = None
            for k, (_, refiner) in enumerate(setting.refiners):
                t1 = time.perf_counter()
                full = refiner(small, src).astype(np.float32) * np.float32(1 / 255)  # uint8 -> 0..1
                if crop and box:
                    full = crop.paste(full, box, fw, fh)
                refine_ms[k].append((time.perf_counter() - t1) * 1e3)
                scorers[k].add(full, y, gt)
                first = full if first is None else first
            if crop and first is not None and crop.observe(first):
                engine.reset()
        for k, res in enumerate(results):
            res.per_clip[clip.name] = {
                "kind": clip.kind, "frames": scorers[k].frames, **scorers[k].result(),
                **({"crop_resets": crop.resets} if crop else {}),
                **({"inference_skipped_pct": round(100.0 * still.skipped / max(1, still.frames), 1)} if still else {}),
                "infer_ms": _median(infer_ms), "refine_ms": _median(refine_ms[k]),
                "_infer_all": infer_ms, "_refine_all": refine_ms[k],
            }
        log.info("%s %s: %s", setting.engine_label, clip.name,
                 ", ".join(f"{r.label.split('/', 1)[1]} MAD {r.per_clip[clip.name]['MAD']}" for r in results))
    return results


def mediapipe_python(explicit: str | None) -> tuple[str | None, str]:
    """The interpreter that can import mediapipe, or None and why not."""
    candidates = [explicit] if explicit else [sys.executable, str(EVAL_VENV_PYTHON)]
    why = []
    for py in candidates:
        if not py or not Path(py).exists():
            why.append(f"{py}: no such interpreter")
            continue
        probe = subprocess.run([py, "-c", "import mediapipe; print(mediapipe.__version__)"],
                               capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return py, probe.stdout.strip()
        last = (probe.stderr.strip().splitlines() or ["failed"])[-1]
        why.append(f"{py}: {last}")
    return None, "; ".join(why) + " (set up .venv-eval as docs/quality.md says)"


def run_mediapipe(py: str, clips: list[Clip], limit: int | None) -> Result:
    res = Result("mediapipe-landscape")
    tmp = Path(tempfile.mkdtemp(prefix="vcam-eval-mp-"))
    try:
        for clip in clips:
            out = tmp / f"{clip.name}.npy"
            cmd = [py, str(REPO / "scripts" / "mediapipe_ref.py"), str(clip.path / "input.mp4"), str(out)]
            proc = subprocess.run([*cmd, str(limit)] if limit else cmd,
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"mediapipe failed on {clip.name}: {proc.stderr.strip()[-500:]}")
            info = json.loads(proc.stdout.strip().splitlines()[-1])
            masks = np.load(out, mmap_mode="r")
            scorer = ClipScorer()
            for t, (rgb, gt) in enumerate(clip.frames(limit)):
                scorer.add(np.asarray(masks[t]), luma(rgb), gt)
            ms = info["ms"][: scorer.frames]
            res.per_clip[clip.name] = {"kind": clip.kind, "frames": scorer.frames, **scorer.result(),
                                       "infer_ms": _median(ms), "refine_ms": None, "_infer_all": ms, "_refine_all": []}
            res.note = f"mediapipe {info['version']}, selfie segmentation model_selection=1 (landscape)"
            del masks
            out.unlink()
            log.info("mediapipe %s: MAD %s", clip.name, res.per_clip[clip.name]["MAD"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def scene_cut_report(clips: list[Clip], limit: int | None) -> dict[str, Any]:
    """The scene-cut detector's scores (thumbnail difference, histogram distance) within each
    clip (largest seen) and across clips (last frame of one against the first of another,
    smallest seen), with how many within-clip frames it flags and how many joins it finds.
    Like the pipeline, it looks at the model's input picture (the live preset's size)."""
    cut_size = PRESETS[LIVE_PRESET].input_size
    firsts, lasts, within = {}, {}, {}
    for clip in clips:
        det = SceneCutDetector()
        diffs, hists, flagged = [], [], 0
        for rgb, _ in clip.frames(limit):
            rgb = shrink_frame(rgb, cut_size)  # the pipeline checks the model's input picture
            flagged += det.update(rgb)
            if det.last_scores is not None:
                diffs.append(det.last_scores[0])
                hists.append(det.last_scores[1])
            else:
                firsts[clip.name] = rgb
            lasts[clip.name] = rgb
        if diffs:
            within[clip.name] = {"max_diff": round(max(diffs), 2), "max_hist": round(max(hists), 4), "cuts_flagged": flagged}
    joins, found = [], 0
    for a in clips:
        for b in clips:
            if a is b:
                continue
            det = SceneCutDetector()
            det.update(lasts[a.name])
            found += det.update(firsts[b.name])
            assert det.last_scores is not None
            joins.append(det.last_scores)
    across = None
    if joins:
        across = {"min_diff": round(min(j[0] for j in joins), 2), "min_hist": round(min(j[1] for j in joins), 4),
                  "joins": len(joins), "joins_detected": found}
    return {"within_clip": within, "across_clips": across}


def summarize(res: Result) -> dict[str, Any]:
    """Per kind: the mean of each metric over its clips, and median ms over all its frames."""
    kinds: dict[str, Any] = {}
    for kind in KINDS:
        rows = [r for r in res.per_clip.values() if r["kind"] == kind]
        if not rows:
            continue
        agg: dict[str, Any] = {"clips": len(rows)}
        for m in METRICS:
            vals = [r[m] for r in rows if r[m] is not None]
            agg[m] = round(float(np.mean(vals)), 4) if vals else None
        agg["infer_ms"] = _median([x for r in rows for x in r["_infer_all"]])
        agg["refine_ms"] = _median([x for r in rows for x in r["_refine_all"]])
        kinds[kind] = agg
    return kinds


def _fmt(v: Any, nd: int = 2) -> str:
    return "-" if v is None else f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def print_timing(results: list[Result], clip: str) -> None:
    rows = [(r.label, r.timing) for r in results if r.timing]
    if not rows:
        return
    t0 = rows[0][1]
    print(f"\n== speed: median ms per frame on {clip} ({t0['size'][0]}x{t0['size'][1]}), {t0['frames']} frames "
          f"per round, quietest of {len(t0['infer_ms_blocks'])} interleaved rounds")
    print(f"{'setting':44s} {'infer':>6s} {'refine':>6s} {'cpu':>6s}  rounds (infer / refine)")
    for label, t in rows:
        print(f"{label:44s} {t['infer_ms']:6.1f} {t['refine_ms']:6.1f} {t['infer_cpu_ms']:6.1f}  "
              f"{t['infer_ms_blocks']} / {t['refine_ms_blocks']}")
    for r in results:
        if r.timing is None and r.per_clip:
            comp = [v["infer_ms"] for v in r.per_clip.values() if v["kind"] == "comp" and v["infer_ms"] is not None]
            if comp:
                print(f"{r.label:44s} {min(comp):6.1f}      -  (its own process; quietest comp clip's median)")


def print_table(summaries: dict[str, dict[str, Any]], unavailable: dict[str, str]) -> None:
    for kind in KINDS:
        rows = [(label, s[kind]) for label, s in summaries.items() if kind in s]
        if not rows:
            continue
        print(f"\n== {kind} ({rows[0][1]['clips']} clips; mean over clips, ms = median per frame)")
        print(f"{'setting':44s} {'MAD':>7s} {'MSE':>7s} {'Grad':>7s} {'dtSSD':>6s} {'IoU':>6s} {'flicker':>7s} {'infer':>6s} {'refine':>6s}")
        for label, a in rows:
            print(f"{label:44s} {_fmt(a['MAD']):>7s} {_fmt(a['MSE']):>7s} {_fmt(a['Grad']):>7s} {_fmt(a['dtSSD']):>6s} "
                  f"{_fmt(a['IoU'], 4):>6s} {_fmt(a['flicker']):>7s} {_fmt(a['infer_ms'], 1):>6s} {_fmt(a['refine_ms'], 1):>6s}")
    for label, why in unavailable.items():
        print(f"\n{label}: unavailable: {why}")


def render_markdown(doc: dict[str, Any]) -> str:
    """Markdown tables (comp, davis, real, speed) from a JSON written by ``--json``."""
    tags = {p.label: name for name, p in PRESETS.items()} | {DESIGNED_DEFAULT.label: "designed default"}

    def name(r: dict[str, Any]) -> str:
        tag = tags.get(r["setting"])
        return f"`{r['setting']}`" + (f" **{tag}**" if tag else "")

    def ms(r: dict[str, Any]) -> list[str]:
        t = r.get("timing")
        if t:
            cpu = t.get("infer_cpu_ms")
            return [f"{t['infer_ms']:.1f}", f"{t['refine_ms']:.1f}", "-" if cpu is None else f"{cpu:.1f}"]
        comp = [v["infer_ms"] for v in r["per_clip"].values() if v["kind"] == "comp" and v["infer_ms"] is not None]
        return [f"{min(comp):.1f}" if comp else "-", "-", "-"]

    out = []
    cols = {"comp": METRICS, "davis": ("MAD", "dtSSD", "IoU", "flicker"), "real": ("flicker",)}
    for kind, metrics in cols.items():
        rows = [r for r in doc["results"] if kind in r["per_kind"]]
        if not rows:
            continue
        n = rows[0]["per_kind"][kind]["clips"]
        out.append(f"\n**{kind}** ({n} clip{'s' if n > 1 else ''}, mean over clips)\n")
        extra = ["infer ms", "refine ms", "infer CPU ms"] if kind == "comp" else []
        out.append("| setting | " + " | ".join([*metrics, *extra]) + " |")
        out.append("|---" * (1 + len(metrics) + len(extra)) + "|")
        for r in rows:
            a = r["per_kind"][kind]
            cells = [_fmt(a[m], 4 if m == "IoU" else 2) for m in metrics]
            if extra:
                cells += ms(r)
            out.append(f"| {name(r)} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=Path(os.environ.get("VCAM_EVALCLIPS", "CLIPS")),
                    help="folder built by ../shared/evaldata/build.py (default $VCAM_EVALCLIPS or CLIPS)")
    ap.add_argument("--setting", "-s", action="append", default=[], metavar="SPEC",
                    help="WxH@RATIO/REFINE[,REFINE...] or a preset name; repeatable (default: every preset)")
    ap.add_argument("--json", type=Path, metavar="PATH", help="write every number (per clip and per kind) here")
    ap.add_argument("--kinds", default=",".join(KINDS), help="clip kinds to run (default comp,davis,real)")
    ap.add_argument("--only", metavar="TEXT", help="only clips whose name contains TEXT")
    ap.add_argument("--frames", type=int, metavar="N", help="at most N frames per clip (quick checks)")
    ap.add_argument("--aspect", metavar="W:H", type=_aspect,
                    help="centre-crop every clip to this aspect ratio first (e.g. 4:3, a 640x480 camera)")
    ap.add_argument("--threads", type=int, default=0, help="engine intra-op threads (default: cores available)")
    ap.add_argument("--timing-frames", type=int, default=30, metavar="N",
                    help="frames of the first comp clip (720p) timed per setting and round (default 30)")
    ap.add_argument("--timing-blocks", type=int, default=5, metavar="N",
                    help="timing rounds over all settings after scoring; the quietest is reported (default 5, 0 = none)")
    ap.add_argument("--no-reference", action="store_true", help="skip the designed-default reference")
    ap.add_argument("--no-mediapipe", action="store_true", help="skip the MediaPipe reference")
    ap.add_argument("--mediapipe-python", metavar="PATH", help="interpreter with mediapipe (default: this one or .venv-eval)")
    ap.add_argument("--model", type=Path, help="RVM ONNX file (default: the verified cached model)")
    ap.add_argument("--render", type=Path, metavar="JSON", help="only print markdown tables from an earlier --json")
    ap.add_argument("--runtime", default="onnxruntime-f32", choices=["onnxruntime-f32", "openvino-f32", "openvino-bf16"],
                    help="the runtime every setting runs on (default onnxruntime-f32; others label their rows)")
    args = ap.parse_args(argv)
    global RUNTIME
    RUNTIME = Candidate(*args.runtime.split("-"))
    if args.render:
        print(render_markdown(json.loads(args.render.read_text(encoding="utf-8"))), end="")
        return 0
    logging.basicConfig(level=logging.INFO, format="eval: %(message)s", stream=sys.stderr)

    kinds = [k for k in args.kinds.split(",") if k]
    clips = find_clips(args.clips, kinds, args.only, args.aspect)
    model = args.model or ensure_model("rvm_mobilenetv3_fp32", None, default_model_dir())
    settings = [parse_setting(s) for s in (args.setting or list(PRESETS))]
    if not args.no_reference:
        d = DESIGNED_DEFAULT
        settings.insert(0, Setting(d.input_size, d.downsample_ratio, [parse_refiner(d.refine)], preset="designed default"))
    threads = args.threads or available_cores()

    timing_clip = next((c for c in clips if c.kind == "comp"), clips[0])
    timing_frames = [rgb for rgb, _ in timing_clip.frames(args.timing_frames)]
    results: list[Result] = []
    per_setting = [run_setting(s, model, clips, threads, args.frames) for s in settings]
    if args.timing_blocks and timing_frames:
        timings = time_settings(settings, model, threads, timing_frames, args.timing_blocks)
        for res_list, t_list in zip(per_setting, timings, strict=True):
            for res, t in zip(res_list, t_list, strict=True):
                res.timing = t
    results = [r for rs in per_setting for r in rs]
    unavailable: dict[str, str] = {}
    if not args.no_mediapipe:
        py, info = mediapipe_python(args.mediapipe_python)
        if py is None:
            unavailable["mediapipe-landscape"] = info
            log.warning("MediaPipe reference unavailable: %s", info)
        else:
            results.append(run_mediapipe(py, clips, args.frames))

    cuts = scene_cut_report(clips, args.frames)
    summaries = {}
    tags = {p.label: name for name, p in PRESETS.items()} | {DESIGNED_DEFAULT.label: "designed default"}
    for r in results:
        label = r.label + (f" [{tags[r.label]}]" if r.label in tags else "")
        summaries[label] = summarize(r)
    print_table(summaries, unavailable)
    print_timing(results, timing_clip.name)
    w, x = cuts["within_clip"], cuts["across_clips"]
    if w:
        print(f"\nscene cuts: within clips max diff {max(v['max_diff'] for v in w.values()):.2f}, max hist "
              f"{max(v['max_hist'] for v in w.values()):.4f}, {sum(v['cuts_flagged'] for v in w.values())} frames flagged"
              + (f"; across clips min diff {x['min_diff']:.2f}, min hist {x['min_hist']:.4f}, "
                 f"{x['joins_detected']}/{x['joins']} joins detected" if x else ""))
    if args.json:
        doc = {
            "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
            "machine": {"cores_available": available_cores(), "engine_threads": threads, "python": platform.python_version(),
                        "onnxruntime": __import__("onnxruntime").__version__, "opencv": cv2.__version__,
                        "platform": platform.platform()},
            "clips": str(args.clips),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
            "results": [
                {"setting": r.label, "note": r.note, "per_kind": summaries[label], "timing": r.timing,
                 "per_clip": {c: {k: v for k, v in m.items() if not k.startswith("_")} for c, m in r.per_clip.items()}}
                for r, label in zip(results, summaries, strict=True)
            ],
            "unavailable": unavailable,
            "scene_cuts": cuts,
        }
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
