#!/usr/bin/env python3
"""The halo, measured: composites over a new background against the exact truth, and crops.

    nice -n 10 .venv/bin/python scripts/eval_edges.py --json /tmp/edges.json --crops docs/images

The comp clips of ``../shared/evaldata`` are made by ``build.py`` from a portrait, its alpha
and a background. The same function composites the portrait over a *new* flat background at
the same pose, frame by frame: the exact picture a user should see after replacing the
background. Each refinement's output (the realtime engine, 384x216 @ 0.5, with ``bilinear``,
``band`` alpha only, ``band`` with decontaminated colours; the offline engine, 768x432 @ 0.5,
``guided``) is composited over that background and compared with it:

* ``edge`` = mean |ours - truth| (0..255 levels, RGB) over the pixels where the true alpha is
  neither 0 nor 255, dilated by 4 pixels: where the old background's ghost shows;
* ``all`` = the same over every pixel; ``MAD`` = the alpha's (x1e3, as scripts/eval.py).

``--crops DIR`` also writes, for two frames, PNG crops around the top of the head side by
side (input, realtime bilinear, realtime band, offline guided, truth), two times enlarged.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np

from vcam.compositing.blend import blend
from vcam.compositing.edges import EdgeBandRefiner
from vcam.compositing.refine import BilinearRefiner, GuidedRefiner
from vcam.matting import MattingEngine
from vcam.matting.models import default_model_dir, ensure_model
from vcam.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
NEW_BG_RGB = (30, 200, 90)  # a green none of the backgrounds has


def load_build(evaldata: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("evaldata_build", evaldata / "build.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"no build.py in {evaldata}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def comp_frames(build: ModuleType, clips: Path, seed: int, portrait: str, background: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(decoded input frame RGB, true alpha uint8, true composite over the new background RGB) per frame."""
    src = Path(build.SRC)
    fg = cv2.imread(str(src / "portraits" / f"{portrait}.jpg"))
    alpha = cv2.imread(str(src / "portraits" / f"{portrait}.alpha.png"), cv2.IMREAD_GRAYSCALE)
    bg = build._background(str(src / "backgrounds" / background))
    new_bg = np.empty_like(bg)
    new_bg[:] = NEW_BG_RGB[::-1]  # build.py works in BGR
    cap = cv2.VideoCapture(str(clips / f"comp-{portrait}" / "input.mp4"))
    out = []
    for t in range(build.T):
        ok, bgr = cap.read()
        if not ok:
            break
        truth, gt = build._composite(fg, alpha, new_bg, t, seed)
        out.append((cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), gt, cv2.cvtColor(truth, cv2.COLOR_BGR2RGB)))
    cap.release()
    return out


def head_box(gt: np.ndarray, w: int = 240, h: int = 135) -> tuple[int, int, int, int]:
    """A wxh box centred on the top of the head (the topmost edge pixels)."""
    ys, xs = np.nonzero((gt > 0) & (gt < 255))
    top = ys.min()
    sel = ys < top + 40
    cx, cy = int(np.median(xs[sel])), int(top) + h // 3
    x0 = min(max(cx - w // 2, 0), gt.shape[1] - w)
    y0 = min(max(cy - h // 2, 0), gt.shape[0] - h)
    return x0, y0, w, h


def photo_crop(path: Path, w: int = 150, h: int = 100, zoom: int = 3) -> int:
    from public_photos import BACKGROUND, PERSON, engine_for, photo_path, read_rgb

    from vcam.compositing import ReplaceCompositor
    from vcam.compositing.backgrounds import ImageBackground
    from vcam.compositing.refine import make_refiner
    from vcam.frames import Frame
    from vcam.pipeline.stages import Stages
    from vcam.presets import WARMUP_RUNS

    frame = np.ascontiguousarray(read_rgb(PERSON)[:288])  # 512x288: head and shoulders, 16:9
    size = (frame.shape[1], frame.shape[0])
    shown, alphas = [], []
    for preset, method in (("realtime", "bilinear"), ("realtime", PRESETS["realtime"].refine), ("offline", PRESETS["offline"].refine)):
        got: list[np.ndarray] = []

        def keep(_frame: Frame, alpha: np.ndarray, got: list[np.ndarray] = got) -> None:
            got.append(alpha.copy())

        stages = Stages(engine_for(preset), ReplaceCompositor(ImageBackground(photo_path(BACKGROUND), size)),
                        output_size=size, refiner=make_refiner(method), warmup=WARMUP_RUNS, on_alpha=keep)
        shown.append(stages.render(stages.matte(stages.prepare(Frame(frame, 0, 0.0)))))
        alphas.append(got[0])
        print(f"{preset}/{method}: person share {float((got[0] > 127).mean()):.3f}", file=sys.stderr)
    # the crop: centred on the top of her head in the offline matte
    ys, xs = np.nonzero(alphas[2] > 127)
    top = int(ys.min())
    cx = int(np.median(xs[ys < top + 20]))
    x0 = min(max(cx - w // 2, 0), size[0] - w)
    y0 = min(max(top - h // 3, 0), size[1] - h)
    tiles = [cv2.resize(np.ascontiguousarray(im[y0 : y0 + h, x0 : x0 + w]), (zoom * w, zoom * h), interpolation=cv2.INTER_NEAREST) for im in shown]
    sep = np.full((zoom * h, 6, 3), 255, np.uint8)
    strip = np.concatenate([tiles[0], sep, tiles[1], sep, tiles[2]], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    print(f"wrote {path}: crop x {x0}..{x0 + w}, y {y0}..{y0 + h} of the 512x288 frame, {zoom}x "
          "(realtime bilinear | realtime band | offline guided)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=Path(os.environ.get("VCAM_EVALCLIPS", "CLIPS")), help="folder built by build.py")
    ap.add_argument("--evaldata", type=Path, default=REPO.parent / "shared" / "evaldata")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--crops", type=Path, metavar="DIR", help="write crop PNGs here")
    ap.add_argument("--crop-clips", default="p_09ba26b4,p_51c916fc", help="clips (portrait names) to crop")
    ap.add_argument("--crop-frame", type=int, default=24)
    ap.add_argument("--photo-crop", type=Path, metavar="PNG", help="only write the public-domain photograph's crop (docs/edges-astronaut.png)")
    args = ap.parse_args(argv)
    if args.photo_crop is not None:
        cv2.setNumThreads(1)
        return photo_crop(args.photo_crop)
    cv2.setNumThreads(1)
    build = load_build(args.evaldata)
    model = ensure_model("rvm_mobilenetv3_fp32", None, default_model_dir())
    live, off = PRESETS["realtime"], PRESETS["offline"]
    eng_rt = MattingEngine(model, providers=("cpu",), threads=2, input_size=live.input_size, downsample_ratio=live.downsample_ratio)
    eng_off = MattingEngine(model, providers=("cpu",), threads=2, input_size=off.input_size, downsample_ratio=off.downsample_ratio)
    band_alpha_only = EdgeBandRefiner(decontaminate=False)
    band = EdgeBandRefiner()
    bil, gui = BilinearRefiner(), GuidedRefiner()
    names = ("realtime bilinear", "realtime band (alpha only)", "realtime band", "offline guided", "offline guided + band colours")
    sums: dict[str, dict[str, list[float]]] = {n: {"edge": [], "all": [], "MAD": []} for n in names}
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (9, 9))
    crops: dict[str, list[np.ndarray]] = {}
    for seed, (portrait, background) in enumerate(build.PAIRS):
        eng_rt.reset()
        eng_off.reset()
        per: dict[str, dict[str, list[float]]] = {n: {"edge": [], "all": [], "MAD": []} for n in names}
        for t, (rgb, gt, truth) in enumerate(comp_frames(build, args.clips, seed, portrait, background)):
            new_bg = np.empty_like(rgb)
            new_bg[:] = NEW_BG_RGB
            small = eng_rt.shrink(rgb)
            a_rt = eng_rt.infer(small)
            a_off = eng_off.infer(rgb)
            outs: dict[str, tuple[np.ndarray, np.ndarray]] = {
                names[0]: (bil(a_rt, rgb), rgb),
                names[1]: band_alpha_only.refine(a_rt, rgb, small),
                names[2]: band.refine(a_rt, rgb, small),
            }
            g_off = gui(a_off, rgb)
            outs[names[3]] = (g_off, rgb)
            # the offline alpha with the band's colour step (a 768x432 band: the model's view made here)
            outs[names[4]] = (g_off, EdgeBandRefiner().refine(a_off, rgb)[1])
            edge = cv2.dilate(((gt > 0) & (gt < 255)).astype(np.uint8), kernel) > 0
            gtf = gt.astype(np.float32) / 255
            shown: dict[str, np.ndarray] = {}
            for n, (alpha, image) in outs.items():
                comp = blend(image, new_bg, alpha)
                diff = np.abs(comp.astype(np.int16) - truth.astype(np.int16)).astype(np.float32)
                per[n]["edge"].append(float(diff[edge].mean()))
                per[n]["all"].append(float(diff.mean()))
                per[n]["MAD"].append(float(np.abs(alpha.astype(np.float32) / 255 - gtf).mean() * 1e3))
                shown[n] = comp
            if args.crops and t == args.crop_frame and portrait in args.crop_clips.split(","):
                x0, y0, w, h = head_box(gt)
                tiles = [rgb, shown[names[0]], shown[names[2]], shown[names[3]], truth]
                row = [cv2.resize(np.ascontiguousarray(im[y0:y0 + h, x0:x0 + w]), (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST) for im in tiles]
                crops[portrait] = row
        for n in names:
            for k in ("edge", "all", "MAD"):
                sums[n][k].append(float(np.mean(per[n][k])))
        print(f"{portrait}: " + "; ".join(f"{n} edge {np.mean(per[n]['edge']):.2f}" for n in names), file=sys.stderr)
    print("comp clips (mean over the 6 clips): composite over a new background vs the exact one")
    print(f"{'':32s} {'edge':>7s} {'all':>7s} {'MAD':>7s}")
    result: dict[str, Any] = {}
    for n in names:
        result[n] = {k: round(float(np.mean(v)), 3) for k, v in sums[n].items()}
        print(f"{n:32s} {result[n]['edge']:7.2f} {result[n]['all']:7.3f} {result[n]['MAD']:7.2f}")
    if args.crops:
        args.crops.mkdir(parents=True, exist_ok=True)
        for portrait, row in crops.items():
            sep = np.full((row[0].shape[0], 6, 3), 255, np.uint8)
            strip = np.concatenate([x for im in row for x in (im, sep)][:-1], axis=1)
            path = args.crops / f"edges-{portrait}.png"
            cv2.imwrite(str(path), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
            print(f"wrote {path} (input | realtime bilinear | realtime band | offline guided | truth)")
    if args.json:
        args.json.write_text(json.dumps({"new_background_rgb": NEW_BG_RGB, "results": result}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
