"""``vcam bench``: the live pipeline measured against the bare model, in one run.

For each picture size, a video file at that size (generated, or a given clip rescaled) is
played as a paced, looping camera into the threaded live pipeline with the null sink, and a
fixed number of output frames is measured: output FPS, frames dropped, latency from capture
to sink, median ms per stage, process CPU time per output frame and cores used. In the same
run the bare model is timed at the same input size and ratio, and the ratio
pipeline-CPU-per-frame / bare-inference-CPU-per-frame is printed.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vcam.build import build_engine
from vcam.compositing import make_compositor
from vcam.compositing.enhance import enhancer_for
from vcam.compositing.refine import make_refiner
from vcam.config import Config, validate_config
from vcam.errors import ConfigError
from vcam.frames import cover_fit
from vcam.matting import Matter
from vcam.media.reader import VideoReader
from vcam.pipeline import LiveRunner, Stages
from vcam.pipeline.threads import thread_cpu_seconds
from vcam.sinks.file import FileSink
from vcam.sinks.null import CountingSink
from vcam.sources.file import FileSource
from vcam.sources.synthetic import TestPatternSource

__all__ = ["BenchResult", "bench_size", "bench_variants", "make_clip", "run_bench"]

log = logging.getLogger(__name__)
SIZES = ((1280, 720), (640, 480), (1920, 1080))


def make_clip(path: Path, size: tuple[int, int], fps: int = 30, frames: int = 90, clip: Path | None = None) -> Path:
    """Write an H.264 clip at ``size``: frames of ``clip`` cover-fitted, or the test pattern."""
    images: list[np.ndarray] = []
    if clip is not None:
        reader = VideoReader(clip, "bench clip")
        while len(images) < frames:
            item = reader.read_frame()
            if item is None:
                break
            images.append(cover_fit(item.image, size))
        reader.close()
    else:
        pattern = TestPatternSource(size, fps, frames=frames, pace=False)
        rng = np.random.default_rng(0)
        while (f := pattern.read()) is not None:
            noise = rng.integers(-6, 7, f.image.shape, dtype=np.int16)  # sensor-like noise
            images.append(np.clip(f.image.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    sink = FileSink(path, size, Fraction(fps), crf=20)
    for img in images:
        sink.send(img)
    sink.close()
    return path


@dataclass
class BenchResult:
    size: tuple[int, int]
    frames: int
    fps: float
    dropped: int
    dropped_pct: float
    latency_ms: dict[str, float | None]
    stage_ms: dict[str, float]
    cpu_ms_per_frame: float
    cores_used: float
    bare_cpu_ms_per_frame: float
    bare_wall_ms: float
    ratio: float
    provider: str
    runtime: str
    precision: str
    model_input: tuple[int, int]
    downsample_ratio: float
    threads: int
    alpha_policy: str
    alpha_age_ms: dict[str, float | None]
    thread_cpu_ms: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["size"], d["model_input"] = list(self.size), list(self.model_input)
        return d


def bare_inference(engine: Matter, image: np.ndarray, calls: int = 150) -> tuple[float, float]:
    """(CPU ms per call, median wall ms per call) of ``engine.infer`` on one picture."""
    for _ in range(5):
        engine.infer(image)
    walls = []
    cpu0 = time.process_time()
    for _ in range(calls):
        t0 = time.perf_counter()
        engine.infer(image)
        walls.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    engine.reset()
    return cpu / calls * 1000.0, float(np.median(walls)) * 1000.0


def _thread_group(name: str, tid: int, pool: set[int]) -> str:
    if tid in pool:
        return "onnxruntime pool"
    if name.startswith("vcam-"):
        return name
    if name.startswith("av:"):
        return "decoder"
    return "other"


class _ThreadClock:
    """CPU ms per output frame of each thread group between the first and the last frame the
    sink receives (read from /proc in the output thread at those two moments)."""

    def __init__(self, limit: int, pool: set[int]) -> None:
        self.limit, self.pool = limit, pool
        self._first: dict[int, tuple[str, float]] = {}
        self.per_frame_ms: dict[str, float] = {}

    def __call__(self, count: int) -> None:
        if count == 1:
            self._first = thread_cpu_seconds()
        elif count == self.limit and self._first:
            groups: dict[str, float] = {}
            for tid, (name, cpu) in thread_cpu_seconds().items():
                used = cpu - self._first.get(tid, (name, 0.0))[1]
                key = _thread_group(name, tid, self.pool)
                groups[key] = groups.get(key, 0.0) + used
            frames = self.limit - 1
            self.per_frame_ms = {k: round(v / frames * 1000.0, 2) for k, v in
                                 sorted(groups.items(), key=lambda kv: -kv[1])}


def bench_size(cfg: Config, clip: Path, size: tuple[int, int], frames: int, warmup: int = 30) -> BenchResult:
    """Measure the live pipeline on ``clip`` (already at ``size``) for ``frames`` output frames."""
    before = set(thread_cpu_seconds())
    engine = build_engine(cfg, live=True)
    pool = set(thread_cpu_seconds()) - before  # ONNX Runtime's intra-op threads start with the session
    compositor = make_compositor(cfg.effect, size, 30.0)
    source = FileSource(clip, loop=True, pace=True, what="bench clip")
    try:
        warm_stop = threading.Event()
        LiveRunner(source, Stages(engine, compositor, output_size=size), CountingSink(warmup, warm_stop)).run(warm_stop, 60)
        stop = threading.Event()
        clock = _ThreadClock(frames, pool)
        sink = CountingSink(frames, stop, every=clock)
        stages = Stages(  # as vcam run builds it: refinement, still-frame reuse, framing and light
            engine, compositor, output_size=size, mirror=cfg.effect.mirror,
            refiner=make_refiner(cfg.model.refine), still=cfg.model.still_threshold,
            enhancer=enhancer_for(cfg, size, 30.0),
        )
        pipe = LiveRunner(source, stages, sink, alpha_policy=cfg.live.alpha)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        pipe.run(stop, duration=frames / 30.0 * 3 + 10)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        first = source.read()
    finally:
        source.close()
    assert first is not None
    bare_cpu, bare_wall = bare_inference(engine, first.image)
    s = stages.stats
    cpu_per_frame = cpu / max(1, s.frames_out) * 1000.0
    return BenchResult(
        size=size,
        frames=s.frames_out,
        fps=round(s.fps(), 2),
        dropped=s.dropped,
        dropped_pct=round(100.0 * s.dropped / max(1, s.frames_in), 2),
        latency_ms=s.latency(),
        stage_ms=s.stage_ms(),
        cpu_ms_per_frame=round(cpu_per_frame, 2),
        cores_used=round(cpu / wall, 3),
        bare_cpu_ms_per_frame=round(bare_cpu, 2),
        bare_wall_ms=round(bare_wall, 2),
        ratio=round(cpu_per_frame / bare_cpu, 3),
        provider=engine.provider,
        runtime=engine.runtime,
        precision=engine.precision,
        model_input=engine.input_size,
        downsample_ratio=engine.downsample_ratio,
        threads=engine.threads,
        alpha_policy=pipe.alpha_policy,
        alpha_age_ms=s.alpha_age_ms(),
        thread_cpu_ms=clock.per_frame_ms,
    )


def format_table(results: list[BenchResult]) -> str:
    head = (f"{'size':>10} {'fps':>6} {'drop%':>6} {'p50':>6} {'p95':>6} {'p99':>6} {'cpu ms/f':>9} "
            f"{'cores':>6} {'bare cpu':>9} {'bare ms':>8} {'ratio':>6}")
    lines = [head]
    for r in results:
        lat = r.latency_ms
        lines.append(
            f"{r.size[0]:>5}x{r.size[1]:<4} {r.fps:>6.2f} {r.dropped_pct:>6.2f} {lat['p50'] or 0:>6.1f} {lat['p95'] or 0:>6.1f} "
            f"{lat['p99'] or 0:>6.1f} {r.cpu_ms_per_frame:>9.2f} {r.cores_used:>6.3f} {r.bare_cpu_ms_per_frame:>9.2f} "
            f"{r.bare_wall_ms:>8.2f} {r.ratio:>6.3f}"
        )
        lines.append("           stages (median ms): " + ", ".join(f"{k} {v:.2f}" for k, v in r.stage_ms.items()))
        if r.thread_cpu_ms:
            lines.append("           CPU ms per frame by thread: "
                         + ", ".join(f"{k} {v:.2f}" for k, v in r.thread_cpu_ms.items()))
        if r.alpha_age_ms["p50"] is not None:
            lines.append(f"           alpha age (ms): p50 {r.alpha_age_ms['p50']:.1f}, p95 {r.alpha_age_ms['p95']:.1f}")
    r0 = results[0]
    lines.append(f"model input {r0.model_input[0]}x{r0.model_input[1]}, ratio {r0.downsample_ratio}, "
                 f"{r0.threads} threads, runtime {r0.runtime} {r0.precision}, provider {r0.provider}, "
                 f"alpha policy {r0.alpha_policy}; "
                 "latency = capture -> sink hand-off")
    return "\n".join(lines)


def run_bench(
    cfg: Config,
    sizes: tuple[tuple[int, int], ...] = SIZES,
    frames: int = 600,
    clip: Path | None = None,
) -> list[BenchResult]:
    """Benchmark every size in ``sizes``."""
    results = []
    with tempfile.TemporaryDirectory(prefix="vcam-bench-") as tmp:
        for size in sizes:
            path = make_clip(Path(tmp) / f"clip-{size[0]}x{size[1]}.mp4", size, clip=clip)
            results.append(bench_size(cfg, path, size, frames))
            log.info("%dx%d: %.2f fps, %.3f cores", *size, results[-1].fps, results[-1].cores_used)
    return results


def bench_variants(cfg: Config, specs: Sequence[str]) -> list[tuple[str, Config]]:
    """The configurations ``vcam bench`` compares: ``cfg`` alone, or one per ``--variant``
    spec (``SECTION.KEY=VALUE[;...]``, values read as YAML) applied on top of ``cfg``."""
    variants: list[tuple[str, Config]] = []
    for spec in specs:
        over: dict[str, Any] = {}
        for item in spec.split(";"):
            key, sep, value = item.partition("=")
            if not sep or "." not in key:
                raise ConfigError("--variant", [f"expected SECTION.KEY=VALUE[;...], got {item!r}"])
            section, _, name = key.strip().partition(".")
            over.setdefault(section, {})[name] = yaml.safe_load(value)
        base = cfg.model_dump(mode="python")
        if "input_size" in over.get("model", {}) and "input_sizes" not in over["model"]:
            del base["model"]["input_sizes"]  # a variant's input size pins it, as in a config file
        variants.append((spec, validate_config(base, f"--variant {spec}", over)))
    return variants or [("as configured", cfg)]
