"""CPU milliseconds per frame of each compositing step of the live pipeline, on real frames.

    .venv/bin/python scripts/bench_compositing.py --clip CLIPS/real-thoughtful/input.mp4 \
        --size 1280x720 --json /tmp/bench_compositing.json

The clip's first frames are scaled (cover-fit) to the size, matted once with the live
preset (one thread), and then each step is run over them in turn (60 distinct frames, so the
pictures come from memory as in the pipeline, not from the CPU cache), reporting process CPU
ms per call: the model-input shrink, the alpha upsampling (bilinear refiner; then bilinear,
``band`` alpha only and ``band`` with decontaminated colours in alternating rounds), the blurred
background (from the model's view of the frame, and from the full-size frame), the blend,
and the whole blur compositor; then the picture effects of :mod:`vcam.compositing.enhance`
alone (auto-framing resting on the person, low-light correction lifting a darkened copy of
the clip) and the blur compositor with and without each, all in the same run. OpenCV runs
single-threaded, as under ``LiveRunner.run``.

To compare with an earlier vcam, run the same file with that checkout first on the path
(``PYTHONPATH=/path/to/old/checkout``); steps the old code lacks are reported as missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from vcam.compositing import BlurCompositor
from vcam.compositing.blend import blend
from vcam.compositing.refine import BilinearRefiner
from vcam.frames import cover_fit
from vcam.matting import MattingEngine
from vcam.matting.models import default_model_dir, ensure_model
from vcam.media.reader import VideoReader
from vcam.presets import LIVE_PRESET, PRESETS


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def cpu_ms(fn: Callable[[int], object], frames: int, calls: int) -> float:
    fn(0)
    c0 = time.process_time()
    for i in range(calls):
        fn(i % frames)
    return (time.process_time() - c0) / calls * 1000.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, required=True, help="a video with a person")
    ap.add_argument("--size", type=_size, default=(1280, 720), help="picture size WxH (default 1280x720)")
    ap.add_argument("--frames", type=int, default=60, help="distinct frames cycled through (default 60)")
    ap.add_argument("--calls", type=int, default=240, help="calls timed per step (default 240)")
    ap.add_argument("--strength", type=int, default=20, help="blur strength (default 20, as configs/default.yaml)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds of the refiners (default 5)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    cv2.setNumThreads(1)
    reader = VideoReader(args.clip, "clip")
    images: list[np.ndarray] = []
    while len(images) < args.frames and (item := reader.read_frame()) is not None:
        images.append(cover_fit(item.image, args.size))
    reader.close()
    if not images:
        print(f"{args.clip}: no frames", file=sys.stderr)
        return 1
    n = len(images)
    preset = PRESETS[LIVE_PRESET]
    model = ensure_model("rvm_mobilenetv3_fp32", None, default_model_dir())
    engine = MattingEngine(model, providers=("cpu",), threads=1, input_size=preset.input_size,
                           downsample_ratio=preset.downsample_ratio)
    shrink = getattr(engine, "shrink", None)
    smalls = [shrink(im) for im in images] if shrink else None
    alphas = [engine.infer(im) for im in images]
    refiner = BilinearRefiner()
    fulls = [refiner(a, im) for a, im in zip(alphas, images, strict=True)]
    comp = BlurCompositor(args.strength)
    results: dict[str, float | None] = {}
    results["shrink"] = round(cpu_ms(lambda i: shrink(images[i]), n, args.calls), 3) if shrink else None
    results["refine (bilinear)"] = round(cpu_ms(lambda i: refiner(alphas[i], images[i]), n, args.calls), 3)
    try:
        from vcam.compositing.edges import EdgeBandRefiner  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        results["refine (band, alpha only)"] = results["refine (band)"] = None
    else:
        # bilinear and band alternate in rounds (the machine is shared): medians of the rounds
        band_alpha, band = EdgeBandRefiner(decontaminate=False), EdgeBandRefiner()
        steps = {
            "refine (bilinear), rounds": lambda i: refiner(alphas[i], images[i]),
            "refine (band, alpha only)": lambda i: band_alpha.refine(alphas[i], images[i], smalls[i] if smalls else None),
            "refine (band)": lambda i: band.refine(alphas[i], images[i], smalls[i] if smalls else None),
        }
        rounds: dict[str, list[float]] = {k: [] for k in steps}
        for r in range(args.rounds):
            for name in list(steps)[r % len(steps):] + list(steps)[: r % len(steps)]:
                rounds[name].append(cpu_ms(steps[name], n, args.calls // 2))
        for name, vals in rounds.items():
            results[name] = round(float(np.median(vals)), 3)
    results["blur background (full-size frame)"] = round(
        cpu_ms(lambda i: comp.background(images[i], fulls[i]), n, args.calls), 3)
    try:
        from vcam.compositing import LowRes  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        lows = None
        results["blur background (model's view)"] = None
    else:
        assert smalls is not None
        lows = [LowRes(s, a) for s, a in zip(smalls, alphas, strict=True)]
        results["blur background (model's view)"] = round(
            cpu_ms(lambda i: comp.background(images[i], fulls[i], lows[i]), n, args.calls), 3)
    bgs = [comp.background(images[i], fulls[i]) for i in range(n)]
    results["blend"] = round(cpu_ms(lambda i: blend(images[i], bgs[i], fulls[i]), n, args.calls), 3)
    if lows is not None:
        results["blur compositor (model's view)"] = round(
            cpu_ms(lambda i: comp(images[i], fulls[i], lows[i]), n, args.calls), 3)
    else:
        results["blur compositor (model's view)"] = None
    results["blur compositor (full-size frame)"] = round(cpu_ms(lambda i: comp(images[i], fulls[i]), n, args.calls), 3)
    _bench_enhance(results, images, alphas, fulls, smalls, comp, args)
    w, h = args.size
    print(f"CPU ms per call, {w}x{h}, {n} frames of {args.clip.name}, blur strength {args.strength}:")
    for name, value in results.items():
        print(f"  {name:36s} {'missing' if value is None else f'{value:7.3f}'}")
    if args.json:
        args.json.write_text(json.dumps({"size": [w, h], "clip": str(args.clip), "cpu_ms": results}, indent=2) + "\n",
                             encoding="utf-8")
    return 0


def _bench_enhance(results: dict[str, float | None], images: list[np.ndarray], alphas: list[np.ndarray],
                   fulls: list[np.ndarray], smalls: list[np.ndarray] | None, comp: BlurCompositor,
                   args: argparse.Namespace) -> None:
    """Framing and light, alone and under the blur compositor (missing in an older vcam)."""
    try:
        from vcam.compositing.enhance import Enhancer
        from vcam.compositing.framing import Follower, FramingSettings
        from vcam.compositing.lowres import LowRes
    except ImportError:
        for name in ("framing", "framing (held at a 1.5x crop)", "light", "blur compositor + framing",
                     "blur compositor + framing (1.5x crop)", "blur compositor + light"):
            results[name] = None
        return
    assert smalls is not None
    n = len(images)
    lows = [LowRes(s, a) for s, a in zip(smalls, alphas, strict=True)]
    # framing: let the window come to rest on the clip's person first (it then only crops)
    framer = Enhancer(args.size, FramingSettings(), framing_on=True)
    for _ in range(300):
        framer(images[0], fulls[0], alphas[0], lows[0])
    zoom = args.size[1] / framer.window[2]
    results["framing"] = round(cpu_ms(lambda i: framer(images[i], fulls[i], alphas[i], lows[i]), n, args.calls), 3)
    # and held still on a 1.5x crop in the middle (a dead zone it never leaves): box + crop
    zoomer = Enhancer(args.size, FramingSettings(), framing_on=True)
    zoomer.follower = Follower(args.size, zoomer.follower.settings, dead_zone=10.0, dead_zone_size=10.0)
    zoomer.follower.reset((args.size[0] / 2, args.size[1] / 2, args.size[1] / 1.5))
    results["framing (held at a 1.5x crop)"] = round(
        cpu_ms(lambda i: zoomer(images[i], fulls[i], alphas[i], lows[i]), n, args.calls), 3)
    # light: a darkened copy of the frames (gain 0.45, gamma 1.3) so that the lift is on
    curve = np.rint(255 * 0.45 * (np.arange(256) / 255) ** 1.3).astype(np.uint8)
    dark = [cv2.LUT(im, curve) for im in images]
    dark_small = [LowRes(cv2.LUT(s, curve), a) for s, a in zip(smalls, alphas, strict=True)]
    lighter = Enhancer(args.size, light_on=True)
    for _ in range(150):
        lighter(dark[0], fulls[0], alphas[0], dark_small[0])
    results["light"] = round(cpu_ms(lambda i: lighter(dark[i], fulls[i], alphas[i], dark_small[i]), n, args.calls), 3)

    def framed(i: int) -> object:
        e = framer(images[i], fulls[i], alphas[i], lows[i])
        return comp(e.image, e.alpha, e.low, lut=e.lut)

    def lit(i: int) -> object:
        e = lighter(dark[i], fulls[i], alphas[i], dark_small[i])
        return comp(e.image, e.alpha, e.low, lut=e.lut)

    results["blur compositor (model's view), again"] = round(
        cpu_ms(lambda i: comp(images[i], fulls[i], lows[i]), n, args.calls), 3)
    def zoomed(i: int) -> object:
        e = zoomer(images[i], fulls[i], alphas[i], lows[i])
        return comp(e.image, e.alpha, e.low, lut=e.lut)

    results["blur compositor + framing"] = round(cpu_ms(framed, n, args.calls), 3)
    results["blur compositor + framing (1.5x crop)"] = round(cpu_ms(zoomed, n, args.calls), 3)
    results["blur compositor + light"] = round(cpu_ms(lit, n, args.calls), 3)
    print(f"framing rests at zoom {zoom:.2f}; light gain {lighter.light.gain:.2f}")


if __name__ == "__main__":
    sys.exit(main())
