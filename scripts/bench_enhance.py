"""What auto-framing and low-light correction add to the blur compositor, in CPU ms per
720p frame, on real frames, in alternating rounds (medians of per-round differences: the
machines are shared, so only differences within one run mean anything).

    .venv/bin/python scripts/bench_enhance.py --clip CLIPS/real-thoughtful/input.mp4 --rounds 8

The clip's first 40 frames are scaled (cover-fit) to 1280x720, darkened like a dim sensor
(gain 0.45, gamma 1.3) and matted once with the live preset (one thread); then, round after
round: the blur compositor alone; with the light correction lifting them (its gain settled
first); with the framing held on a 1.5x crop in the middle (box, crop and enlargement, as the
live pipeline does it: only around the person when the compositor shows no more); and the
same enlarging the whole crop (what every compositor got before 2026-12-02's change).
OpenCV runs single-threaded, as under ``LiveRunner.run``. To compare with an earlier vcam,
run it with that checkout first on the path (``PYTHONPATH=/path/to/old/checkout``).
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from vcam.compositing import BlurCompositor
from vcam.compositing.edges import EdgeBandRefiner
from vcam.compositing.enhance import Enhancer
from vcam.compositing.framing import Follower, FramingSettings
from vcam.compositing.lowres import LowRes
from vcam.compositing.refine import BilinearRefiner
from vcam.frames import cover_fit
from vcam.matting import MattingEngine
from vcam.matting.models import default_model_dir, ensure_model
from vcam.media.reader import VideoReader
from vcam.presets import LIVE_PRESET, PRESETS

try:
    from vcam.compositing.enhance import refine_region
except ImportError:  # an older vcam (PYTHONPATH): it refines the whole frame
    refine_region = None  # type: ignore[assignment]

SIZE = (1280, 720)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, required=True, help="a video with a person")
    ap.add_argument("--rounds", type=int, default=8, help="alternating rounds (default 8)")
    ap.add_argument("--calls", type=int, default=100, help="calls timed per step and round (default 100)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    reader = VideoReader(args.clip, "clip")
    images: list[np.ndarray] = []
    while len(images) < 40 and (item := reader.read_frame()) is not None:
        images.append(cover_fit(item.image, SIZE))
    reader.close()
    if not images:
        print(f"{args.clip}: no frames", file=sys.stderr)
        return 1
    n = len(images)
    preset = PRESETS[LIVE_PRESET]
    engine = MattingEngine(ensure_model("rvm_mobilenetv3_fp32", None, default_model_dir()), providers=("cpu",),
                           threads=1, input_size=preset.input_size, downsample_ratio=preset.downsample_ratio)
    curve = np.rint(255 * 0.45 * (np.arange(256) / 255) ** 1.3).astype(np.uint8)
    dark = [cv2.LUT(im, curve) for im in images]
    alphas = [engine.infer(im) for im in dark]
    lows = [LowRes(engine.shrink(im), a) for im, a in zip(dark, alphas, strict=True)]
    fulls = [BilinearRefiner()(a, im) for a, im in zip(alphas, dark, strict=True)]
    comp = BlurCompositor(20)
    takes_lut = "lut" in inspect.signature(comp.__call__).parameters  # an older vcam applied it itself
    lighter = Enhancer(SIZE, light_on=True)
    for _ in range(150):
        lighter(dark[0], fulls[0], alphas[0], lows[0])
    zoomer = Enhancer(SIZE, FramingSettings(), framing_on=True)
    zoomer.follower = Follower(SIZE, zoomer.follower.settings, dead_zone=10.0, dead_zone_size=10.0)
    zoomer.follower.reset((SIZE[0] / 2, SIZE[1] / 2, SIZE[1] / 1.5))

    def plain(i: int) -> object:
        return comp(dark[i], fulls[i], lows[i])

    def lit(i: int) -> object:
        e = lighter(dark[i], fulls[i], alphas[i], lows[i])
        lut = getattr(e, "lut", None)
        return comp(e.image, e.alpha, e.low, lut=lut) if takes_lut else comp(e.image, e.alpha, e.low)

    # the live pipeline asks the compositor whether it shows the picture only under the alpha
    # (Stages.render): then only the part around the person is enlarged
    sparse = getattr(comp, "picture_under_alpha_only", None)
    takes_sparse = "sparse" in inspect.signature(zoomer.__call__).parameters

    def framed_whole(i: int) -> object:
        e = zoomer(dark[i], fulls[i], alphas[i], lows[i])
        return comp(e.image, e.alpha, e.low)

    def framed(i: int) -> object:
        e = zoomer(dark[i], fulls[i], alphas[i], lows[i], sparse=sparse) if takes_sparse else zoomer(
            dark[i], fulls[i], alphas[i], lows[i])
        return comp(e.image, e.alpha, e.low)

    def cpu_ms(fn: Callable[[int], object]) -> float:
        fn(0)
        c0 = time.process_time()
        for k in range(args.calls):
            fn(k % n)
        return (time.process_time() - c0) / args.calls * 1000.0

    # with the realtime preset's refinement in front, as Stages.render runs it: refining the whole
    # frame and then cropping, or (since 2026-12-02) only the part around the crop
    band = EdgeBandRefiner()
    stepper = getattr(zoomer, "step", None)

    def refined(i: int) -> object:
        full, picture = band.refine(alphas[i], dark[i], lows[i].image)
        return comp(picture, full, lows[i])

    def refined_framed_whole(i: int) -> object:
        full, picture = band.refine(alphas[i], dark[i], lows[i].image)
        e = zoomer(picture, full, alphas[i], lows[i], sparse=sparse) if takes_sparse else zoomer(picture, full, alphas[i], lows[i])
        return comp(e.image, e.alpha, e.low)

    def refined_framed_part(i: int) -> object:
        assert stepper is not None
        step = stepper(SIZE, alphas[i], lows[i])
        (x0, y0, x1, y1), (k0, j0, k1, j1) = refine_region(step.rect, SIZE, alphas[i].shape[::-1])
        full, picture = band.refine(np.ascontiguousarray(alphas[i][j0:j1, k0:k1]), dark[i][y0:y1, x0:x1],
                                    lows[i].image[j0:j1, k0:k1])
        e = zoomer.apply(step, picture, full, lows[i], origin=(x0, y0), sparse=sparse)
        return comp(e.image, e.alpha, e.low)

    steps = {"blur compositor": plain, "+ light": lit, "+ framing (1.5x crop)": framed,
             "+ framing, all enlarged": framed_whole, "band refine + blur": refined,
             "  + framing, refining the whole frame": refined_framed_whole}
    if stepper is not None:
        steps["  + framing, refining its part"] = refined_framed_part
    ms: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.rounds):
        for name, fn in steps.items():
            ms[name].append(cpu_ms(fn))
    base = np.array(ms["blur compositor"])
    person = float(np.mean([a.mean() for a in alphas]))
    print(f"{args.clip.name}: 1280x720, {n} frames, person {person:.0%} of the picture, light gain {lighter.light.gain:.2f}")
    print(f"  blur compositor          {np.median(base):6.3f} ms")
    for name in ("+ light", "+ framing (1.5x crop)", "+ framing, all enlarged"):
        print(f"  {name:24s} {np.median(np.array(ms[name]) - base):+6.3f} ms (median of {args.rounds} rounds)")
    ref_base = np.array(ms["band refine + blur"])
    print(f"  band refine + blur       {np.median(ref_base):6.3f} ms")
    for name in [k for k in steps if k.startswith("  + framing")]:
        print(f"  {name:38s} {np.median(np.array(ms[name]) - ref_base):+6.3f} ms (median of {args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
