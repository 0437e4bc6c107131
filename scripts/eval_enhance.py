"""Measure auto-framing and low-light correction on clips built from the dev portraits.

    .venv/bin/python scripts/eval_enhance.py [--evaldata ../shared/evaldata] [--json out.json] [--pictures DIR]
    .venv/bin/python scripts/eval_enhance.py --photo-pictures docs

``--pictures DIR`` writes the before/after PNGs of the first portrait: made from the evaluation
data, so they stay out of the repository. ``--photo-pictures DIR`` writes the same two pictures
from public-domain photographs instead (scripts/public_photos.py: scikit-image's astronaut over
its rocket launch, the person's alpha being vcam's own ``offline`` matte of the photograph), the
ones in docs/; it prints their clips' figures too.

The clips are made in memory from ``evaldata/sources`` (portraits with their exact alpha,
backgrounds; nothing is copied into the repository) and run through vcam's own stages
(``Stages`` with the real RVM model, realtime preset, blur 20, at 1280x720) with framing or
light on. The ground-truth alpha goes through the same crop as the picture, so the person's
box in the output is measured without the model.

Framing clip (per portrait, 12 s at 30 fps): the person (their box), 42 % of the frame high
with its bottom at 90 %, stands at 28 % of the width (breathing sway of 3 px), walks to 72 % between 6 s and 9 s, then stands.
Reported: after settling (4 to 6 s and 11 to 12 s) the largest offset of the person box's centre
from the output centre (share of width / height) and of its height from the target share
(relative); the crop window's largest motion per frame while the person stands (px); the
largest frame-to-frame change of the window (share of the width) over the whole clip.

Light clips (per portrait, 5 s): the composite darkened like a dim sensor (gamma 1.3,
gain 0.45, shot and read noise drawn afresh each frame), and the composite as it is (with
the read noise only). Reported after 4 s: the person's exposure (upper-quartile luma, what
the corrector aims at) and median luma against the target; the largest frame-to-frame change
of the person's mean luma; for the well-exposed clip the largest change of the person's mean
luma against the input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from vcam.compositing import BlurCompositor
from vcam.compositing.enhance import Enhancer
from vcam.compositing.framing import FramingSettings, crop_rect, person_box
from vcam.compositing.light import LightSettings, person_luma
from vcam.frames import Frame, cover_fit
from vcam.matting import MattingEngine
from vcam.matting.models import default_model_dir, ensure_model
from vcam.pipeline.stages import Stages
from vcam.presets import LIVE_PRESET, PRESETS

W, H, FPS = 1280, 720, 30.0
PAIRS = [  # portrait, background (as the evaldata comp clips)
    ("p_07141906", "Garden.jpg"),
    ("p_09ba26b4", "architecture-5082700_1280.jpg"),
    ("p_22fc0130", "GreenMeadow.jpg"),
    ("p_514ca06a", "shibuyasky-4768679_1280.jpg"),
    ("p_51c916fc", "Wood.jpg"),
    ("p_71bcce3a", "office-0001.png"),
]


def _rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"{path}: cannot read it")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_pair(src: Path, portrait: str, background: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The portrait (RGB) and its alpha (uint8) cropped to the person's box, and the
    background cover-fitted to the frame."""
    fg = _rgb(src / "portraits" / f"{portrait}.jpg")
    alpha = cv2.imread(str(src / "portraits" / f"{portrait}.alpha.png"), cv2.IMREAD_GRAYSCALE)
    rows, cols = np.where(alpha.max(axis=1) > 8)[0], np.where(alpha.max(axis=0) > 8)[0]
    fg, alpha = fg[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], alpha[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return fg, alpha, cover_fit(_rgb(src / "backgrounds" / background), (W, H))


def place(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray, height: float, cx: float, bottom: float) -> tuple[np.ndarray, np.ndarray]:
    """The portrait scaled to ``height`` (share of H), its box centred at ``cx`` (share of W), its
    bottom at ``bottom`` (share of H), over ``bg``; returns (picture, alpha) at W x H."""
    s = height * H / fg.shape[0]
    pw, ph = max(2, round(fg.shape[1] * s)), max(2, round(fg.shape[0] * s))
    f = cv2.resize(fg, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32)
    a = cv2.resize(alpha, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    # sub-pixel placement through an affine warp, so a slow walk is not quantised to pixels
    x0, y0 = cx * W - pw / 2, bottom * H - ph
    m = np.array([[1, 0, x0], [0, 1, y0]], np.float32)
    fa = cv2.warpAffine(a, m, (W, H), flags=cv2.INTER_LINEAR, borderValue=0)
    ff = cv2.warpAffine(f, m, (W, H), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    img = ff * fa[..., None] + bg.astype(np.float32) * (1 - fa[..., None])
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), np.clip(fa * 255 + 0.5, 0, 255).astype(np.uint8)


def darken(img: np.ndarray, rng: np.random.Generator, gamma: float = 1.3, gain: float = 0.45, dark: bool = True) -> np.ndarray:
    """A dim sensor's picture of ``img``: gamma and gain, then shot noise (variance in
    proportion to the signal) and read noise (1.5 levels), drawn afresh by ``rng``."""
    u = img.astype(np.float32) / 255.0
    if dark:
        u = gain * np.power(u, gamma)
    v = u * 255.0
    noisy = v + rng.standard_normal(v.shape, dtype=np.float32) * np.sqrt(0.35 * v + 1.5**2)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def make_stages(engine: MattingEngine, enhancer: Enhancer) -> Stages:
    engine.reset()
    return Stages(engine, BlurCompositor(20), output_size=(W, H), enhancer=enhancer)


def run_frame(stages: Stages, img: np.ndarray, i: int) -> np.ndarray:
    frame = stages.prepare(Frame(img, i, i / FPS))
    return stages.render(stages.matte(frame))


def framing_clip(engine: MattingEngine, fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray,
                 pictures: list[np.ndarray] | None = None, *, height: float = 0.42, bottom: float = 0.9,
                 seconds: float = 12.0) -> dict[str, float]:
    settings = FramingSettings(fps=FPS)
    enh = Enhancer((W, H), settings, framing_on=True)
    stages = make_stages(engine, enh)
    n = int(seconds * FPS)
    windows, centre_dx, centre_dy, height_err = [], [], [], []
    settled = set(range(int(4 * FPS), int(6 * FPS))) | set(range(int(11 * FPS), n))
    for i in range(n):
        t = i / FPS
        walk = 0.0 if t < 6 else 1.0 if t > 9 else 0.5 - 0.5 * np.cos(np.pi * (t - 6) / 3)
        cx = 0.28 + 0.44 * walk + 3 / W * np.sin(2 * np.pi * t / 3.0)
        img, gt = place(fg, alpha, bg, height, cx, bottom)
        out = run_frame(stages, img, i)
        windows.append(enh.window)
        x0, y0, w, h = crop_rect(enh.window, (W, H))
        gt_out = cv2.resize(gt[y0 : y0 + h, x0 : x0 + w], (W, H), interpolation=cv2.INTER_LINEAR)
        if i in settled:
            box = person_box(gt_out)
            assert box is not None
            centre_dx.append(abs((box.left + box.right) / 2 - W / 2) / W)
            centre_dy.append(abs((box.top + box.bottom) / 2 - H / 2) / H)
            height_err.append(abs(box.height / H - settings.person_height) / settings.person_height)
        if pictures is not None and i in (0, int(5.5 * FPS)):
            pictures += [img, out]
    win = np.array(windows)
    step = np.abs(np.diff(win, axis=0))  # per frame: |d cx|, |d cy|, |d h| in px
    width_step = step[:, 2] * W / H
    move = np.maximum(np.maximum(step[:, 0], step[:, 1]), width_step)
    still = [i for i in range(1, n) if (2 <= i / FPS < 6) or i / FPS >= 10]
    return {
        "centre_offset_x": round(max(centre_dx), 4),
        "centre_offset_y": round(max(centre_dy), 4),
        "height_error": round(max(height_err), 4),
        "still_motion_px": round(float(move[[i - 1 for i in still]].max()), 3),
        "max_jump_share_of_width": round(float(move.max()) / W, 4),
        "final_zoom": round(H / float(win[-1, 2]), 3),
    }


def light_clip(engine: MattingEngine, fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray, dark: bool, seed: int,
               pictures: list[np.ndarray] | None = None) -> dict[str, float]:
    settings = LightSettings(fps=FPS)
    enh = Enhancer((W, H), light=settings, light_on=True)
    stages = make_stages(engine, enh)
    base, gt = place(fg, alpha, bg, 1.0, 0.5, 1.0)
    person = gt > 127
    rng = np.random.default_rng(seed)
    n = int(5 * FPS)
    means, ins = [], []
    exposure = median = 0.0
    for i in range(n):
        img = darken(base, rng, dark=dark)
        out = run_frame(stages, img, i)
        luma = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
        luma_in = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        means.append(float(luma[person].mean()))
        ins.append(float(luma_in[person].mean()))
        if i == n - 1:
            exposure = float(person_luma(out, gt) or 0.0)
            median = float(np.median(luma[person]))
            in_exposure = float(person_luma(img, gt) or 0.0)
            if pictures is not None:
                pictures += [img, out]
    after = slice(int(4 * FPS), n)
    m = np.array(means)
    result = {
        "input_exposure": round(in_exposure, 1),
        "exposure": round(exposure, 1),
        "exposure_error": round(abs(exposure - settings.target) / settings.target, 4),
        "median": round(median, 1),
        "max_frame_change": round(float(np.abs(np.diff(m[after])).max()), 3),
        "gain": round(enh.light.gain, 3),
    }
    if not dark:
        result["max_change_vs_input"] = round(float(np.abs(m - np.array(ins)).max()), 3)
    return result


def write_clip(path: Path, src: Path) -> None:
    """The first portrait's framing clip, darkened with noise, as an MP4 (a camera for
    ``vcam bench --clip``: small, off-centre, walking across, dim)."""
    fg, alpha, bg = load_pair(src, *PAIRS[0])
    rng = np.random.default_rng(7)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for i in range(int(12 * FPS)):
        t = i / FPS
        walk = 0.0 if t < 6 else 1.0 if t > 9 else 0.5 - 0.5 * np.cos(np.pi * (t - 6) / 3)
        img, _ = place(fg, alpha, bg, 0.42, 0.28 + 0.44 * walk, 0.9)
        out.write(cv2.cvtColor(darken(img, rng), cv2.COLOR_RGB2BGR))
    out.release()


def side_by_side(pair: list[np.ndarray], width: int = 480) -> np.ndarray:
    h = round(width * H / W)
    halves = [cv2.resize(p, (width, h), interpolation=cv2.INTER_AREA) for p in pair]
    gap = np.full((h, 8, 3), 255, np.uint8)
    return np.hstack([halves[0], gap, halves[1]])


def write_pictures(folder: Path, framing: list[np.ndarray], light: list[np.ndarray]) -> None:
    """framing: frame 0 in, frame 0 out, frame 5.5 s in, out; light: the last frame in, out."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, pair in (("framing-before-after.png", [framing[2], framing[3]]), ("light-before-after.png", light)):
        cv2.imwrite(str(folder / name), cv2.cvtColor(side_by_side(pair), cv2.COLOR_RGB2BGR))
        print(f"wrote {folder / name}")


def photo_pictures(folder: Path) -> int:
    """The before/after pictures from scikit-image's astronaut (her alpha: vcam's offline matte
    of the photograph) over its rocket launch: small, off-centre and standing for framing (6 s,
    the picture at 5.5 s), darkened for light (5 s)."""
    from public_photos import BACKGROUND, PERSON, cut_out, offline_matte, read_rgb

    cv2.setNumThreads(1)
    photo = read_rgb(PERSON)
    fg, alpha = cut_out(photo, offline_matte(photo))
    bg = cover_fit(read_rgb(BACKGROUND), (W, H))
    preset = PRESETS[LIVE_PRESET]
    engine = MattingEngine(ensure_model("rvm_mobilenetv3_fp32", None, default_model_dir()), providers=("cpu",),
                           threads=1, input_size=preset.input_size, downsample_ratio=preset.downsample_ratio)
    pics: dict[str, list[np.ndarray]] = {"framing": [], "light": []}
    # she is cut off at the photograph's bottom edge: that edge stays at the frame's bottom
    framing = framing_clip(engine, fg, alpha, bg, pics["framing"], height=0.45, bottom=1.0, seconds=6.0)
    light = light_clip(engine, fg, alpha, bg, True, 0, pics["light"])
    print(json.dumps({"framing": framing, "light_dark": light}), flush=True)
    write_pictures(folder, pics["framing"], pics["light"])
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = Path(__file__).resolve().parents[1]
    ap.add_argument("--evaldata", type=Path, default=Path(os.environ.get("VCAM_EVALDATA") or root.parent / "shared" / "evaldata"))
    ap.add_argument("--portraits", type=int, default=len(PAIRS), help="how many of the six portraits (default all)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--pictures", type=Path, help="write before/after PNGs into this folder")
    ap.add_argument("--photo-pictures", type=Path, metavar="DIR",
                    help="only write the two before/after PNGs from public-domain photographs (those in docs/)")
    ap.add_argument("--write-clip", type=Path, metavar="MP4", help="only write the dim walking clip (for vcam bench)")
    args = ap.parse_args(argv)
    if args.photo_pictures is not None:
        return photo_pictures(args.photo_pictures)
    src = args.evaldata / "sources"
    if not src.is_dir():
        print(f"{args.evaldata}: no sources/ folder (the evaluation data); give --evaldata", file=sys.stderr)
        return 1
    if args.write_clip is not None:
        write_clip(args.write_clip, src)
        return 0
    cv2.setNumThreads(1)
    preset = PRESETS[LIVE_PRESET]
    engine = MattingEngine(ensure_model("rvm_mobilenetv3_fp32", None, default_model_dir()), providers=("cpu",),
                           threads=1, input_size=preset.input_size, downsample_ratio=preset.downsample_ratio)
    results: dict[str, dict[str, dict[str, float]]] = {"framing": {}, "light_dark": {}, "light_well_exposed": {}}
    pics: dict[str, list[np.ndarray]] = {"framing": [], "light": []}
    for k, (portrait, background) in enumerate(PAIRS[: args.portraits]):
        fg, alpha, bg = load_pair(src, portrait, background)
        first = k == 0 and args.pictures is not None
        results["framing"][portrait] = framing_clip(engine, fg, alpha, bg, pics["framing"] if first else None)
        results["light_dark"][portrait] = light_clip(engine, fg, alpha, bg, True, k, pics["light"] if first else None)
        results["light_well_exposed"][portrait] = light_clip(engine, fg, alpha, bg, False, 100 + k)
        print(portrait, json.dumps({kind: results[kind][portrait] for kind in results}), flush=True)
    if args.pictures is not None:
        write_pictures(args.pictures, pics["framing"], pics["light"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
