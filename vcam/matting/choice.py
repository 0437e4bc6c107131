"""The measured choice of matting runtime, precision and model input size (``model.runtime: auto``).

Live (``vcam run``, and ``vcam process --preset realtime``, which must match it): the candidates
(runtime x precision) are timed at the smallest rung of the input-size ladder, one thread,
recurrent state carried; the cheapest one then climbs the ladder, largest rung first, and the
largest input whose one-thread CPU time plus the rest of the pipeline fits ``live.cpu_budget``
cores at the frame rate, and whose CPU time also fits 75 % of the frame time, is chosen. The
runtimes' ranking is measured at the smallest rung only (it held at every rung measured, see
docs/performance.md); that keeps the measurement short. Nothing fits: the smallest rung with
the cheapest runtime. ``vcam run`` then uses one thread when that call's CPU time fits 75 % of
the frame time, else leaves the threads to the engine's rule (more threads).

Offline (``vcam process`` with its own preset): the size is the preset's (its quality floor);
the candidate with the least CPU time per call on every core is chosen.

Timings are cached in ``calibration.json`` in the model cache folder, keyed by the CPU (model
name and flags), the runtime versions, the model's sha256, the candidates and the ladder: a
later start measures nothing, but ``vcam run`` times the engine it opened as it was
calibrated (four calls, :func:`time_engine`) and measures everything afresh when it now takes
less than 75 % of its cached CPU time (the cache was made on a busier machine, :func:`stale`);
``vcam run --recalibrate`` (:func:`forget`) starts afresh.
The choice itself is recomputed from the timings each start, so a new budget needs no new
measurement unless it needs another rung. Everything is pure but :func:`measure_engine`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vcam.config import Config
from vcam.errors import ModelError
from vcam.matting.engine import BUDGET_SHARE, MattingEngine, available_cores, onnxruntime_version
from vcam.presets import LIVE_LADDER, LIVE_PRESET

if TYPE_CHECKING:
    from vcam.matting import Matter

__all__ = [
    "CACHE_NAME",
    "LADDER_16_9",
    "LADDER_4_3",
    "Budget",
    "Candidate",
    "Choice",
    "Plan",
    "Timing",
    "cache_key",
    "candidates",
    "choose_live",
    "choose_offline",
    "cpu_identity",
    "forget",
    "ladder_for",
    "measure_engine",
    "open_engine",
    "pipeline_overhead_ms",
    "plan_engine",
    "stale",
    "time_engine",
]

log = logging.getLogger(__name__)
CACHE_NAME = "calibration.json"
LADDER_16_9 = LIVE_LADDER
LADDER_4_3 = ((384, 288), (448, 336), (512, 384))
# CPU ms per output frame the live pipeline spends besides the model (decode, shrink, scene-cut
# check, upsampling, blur, blend, hand-offs), as a + b x output megapixels: fitted to `vcam
# bench` (pipeline CPU per frame - bare model CPU per call) at 640x480, 1280x720 and 1920x1080
# on this project's 2-core machines (docs/performance.md).
# Another runtime replaces ONNX Runtime (the default, and the one whose threads behaved under
# load) only when it is at least 10 % cheaper: repeated timings differ by about 5 %, and at
# equal cost OpenVINO's two threads took 6x their CPU time in wall time at load 15.
DEFAULT_RUNTIME = "onnxruntime"
MARGIN = 1.1
_OVERHEAD_MS = 2.9
_OVERHEAD_MS_PER_MPIX = 4.9


@dataclass(frozen=True, order=True)
class Candidate:
    """One runtime at one precision."""

    runtime: str  # "onnxruntime" | "openvino"
    precision: str  # "f32" | "bf16"

    @property
    def label(self) -> str:
        return f"{self.runtime}-{self.precision}"


@dataclass(frozen=True)
class Timing:
    """One candidate at one input size: process CPU ms and median wall ms per call."""

    cpu_ms: float
    wall_ms: float


@dataclass(frozen=True)
class Budget:
    """What the live pipeline may spend per frame: ``cores`` x the frame time of CPU in all,
    ``overhead_ms`` of it outside the model, and a model call (its one-thread CPU time) within
    75 % of the frame time."""

    fps: float
    cores: float
    overhead_ms: float

    @property
    def model_cpu_ms(self) -> float:
        return self.cores * 1000.0 / self.fps - self.overhead_ms

    @property
    def model_wall_ms(self) -> float:
        return BUDGET_SHARE * 1000.0 / self.fps

    def fits(self, t: Timing) -> bool:
        # CPU time stands for the latency too: it is what one call takes on a free core, while
        # the wall time measured at start includes whatever else ran then, and the cache would
        # keep that moment's load for good (measured: 18 ms CPU took 49 ms wall at load 13).
        return t.cpu_ms <= self.model_cpu_ms and t.cpu_ms <= self.model_wall_ms


@dataclass(frozen=True)
class Choice:
    """What to run, whether it fitted the budget, one line saying why, and the timings used."""

    candidate: Candidate
    input_size: tuple[int, int]
    fits: bool
    reason: str
    timings: dict[str, Timing] = field(default_factory=dict)
    measured_s: float = 0.0  # seconds spent measuring this time (0 on a full cache hit)


def pipeline_overhead_ms(output_size: tuple[int, int]) -> float:
    """CPU ms per frame of the live pipeline outside the model at ``output_size``."""
    return _OVERHEAD_MS + _OVERHEAD_MS_PER_MPIX * output_size[0] * output_size[1] / 1e6


def ladder_for(sizes: Sequence[tuple[int, int]], frame_size: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    """The ladder for a picture of ``frame_size``: the configured (16:9) rungs, or for a picture
    nearer 4:3 than 16:9 each rung's 4:3 counterpart (same width, height x 4/3 over 16/9)."""
    aspect = frame_size[0] / frame_size[1]
    if abs(aspect - 4 / 3) < abs(aspect - 16 / 9):
        return tuple((w, round(w * 3 / 4 / 4) * 4) for w, h in sizes if abs(w / h - 16 / 9) < 0.02) or tuple(sizes)
    return tuple(sizes)


def candidates(runtime: str, precision: str, *, openvino: tuple[str, ...] | None) -> list[Candidate]:
    """The candidates for ``model.runtime`` / ``model.precision`` (``auto`` or a pin).
    ``openvino``: the precisions OpenVINO runs natively here, or None when it is not installed.
    bf16 replaces f32 for OpenVINO where it is native (measured faster at every rung here, with
    alpha within 0.0003 on average); ONNX Runtime's CPU provider runs f32 only."""
    out: list[Candidate] = []
    if runtime in ("auto", "onnxruntime") and precision in ("auto", "f32"):
        out.append(Candidate("onnxruntime", "f32"))
    if runtime in ("auto", "openvino") and openvino is not None:
        if precision == "auto":
            out.append(Candidate("openvino", "bf16" if "bf16" in openvino else "f32"))
        elif precision in openvino:
            out.append(Candidate("openvino", precision))
    return out


def _key(c: Candidate, size: tuple[int, int]) -> str:
    return f"{c.label}@{size[0]}x{size[1]}"


def choose_live(
    cands: Sequence[Candidate],
    ladder: Sequence[tuple[int, int]],
    budget: Budget,
    measure: Callable[[Candidate, tuple[int, int]], Timing],
    *,
    known: Mapping[str, Timing] | None = None,
    limit_s: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
) -> Choice:
    """The live choice (see the module docstring). ``known`` timings are used instead of
    measuring. Every candidate is measured at the smallest rung; a larger rung is skipped when
    measuring it would likely end after ``limit_s`` (estimated as twice the slowest
    measurement so far)."""
    timings: dict[str, Timing] = dict(known or {})
    start = clock()
    slowest = 0.0

    def get(c: Candidate, size: tuple[int, int], *, always: bool = False) -> Timing | None:
        nonlocal slowest
        k = _key(c, size)
        if k not in timings:
            t0 = clock()
            if not always and t0 - start + 2 * slowest > limit_s:
                return None
            timings[k] = measure(c, size)
            slowest = max(slowest, clock() - t0)
        return timings[k]

    rungs = sorted(ladder, key=lambda s: s[0] * s[1])
    base = rungs[0]
    base_t = {c: _need(get(c, base, always=True)) for c in cands}
    ranked = sorted(cands, key=lambda c: (base_t[c].cpu_ms * (1.0 if c.runtime == DEFAULT_RUNTIME else MARGIN), c))
    best = ranked[0]
    chosen, fits = base, budget.fits(base_t[best])
    skipped = False
    if fits:
        for size in reversed(rungs[1:]):
            t = get(best, size)
            if t is None:
                skipped = True
                continue
            if budget.fits(t):
                chosen = size
                break
    t = timings[_key(best, chosen)]
    others = ", ".join(f"{c.label} {timings[_key(c, base)].cpu_ms:.1f}" for c in ranked[1:])
    why = (f"{best.label} at {chosen[0]}x{chosen[1]}: {t.cpu_ms:.1f} ms CPU per call ({t.wall_ms:.1f} ms wall), "
           f"{'within' if fits else 'over'} the budget of {budget.model_cpu_ms:.1f} ms CPU "
           f"({budget.cores:g} cores at {budget.fps:g} fps less {budget.overhead_ms:.1f} ms for the rest of "
           f"the pipeline) and {budget.model_wall_ms:.1f} ms per call")
    if others:
        why += f"; at {base[0]}x{base[1]}: {best.label} {timings[_key(best, base)].cpu_ms:.1f}, {others} ms CPU"
    if skipped:
        why += f"; larger rungs not measured within {limit_s:g} s"
    return Choice(best, chosen, fits, why, timings, round(clock() - start, 3))


def _need(t: Timing | None) -> Timing:
    assert t is not None  # the base rung is measured with always=True
    return t


def choose_offline(
    cands: Sequence[Candidate],
    size: tuple[int, int],
    measure: Callable[[Candidate, tuple[int, int]], Timing],
    *,
    known: Mapping[str, Timing] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Choice:
    """File mode: the size is fixed (the preset's quality floor); the least CPU per call wins
    (with every core busy, throughput follows CPU time; wall time would follow the machine's
    other load at the moment of measuring, which the cache would keep)."""
    timings: dict[str, Timing] = dict(known or {})
    start = clock()
    for c in cands:
        timings.setdefault(_key(c, size), measure(c, size))
    best = min(cands, key=lambda c: (timings[_key(c, size)].cpu_ms * (1.0 if c.runtime == DEFAULT_RUNTIME else MARGIN), c))
    rest = ", ".join(f"{c.label} {timings[_key(c, size)].cpu_ms:.1f}" for c in cands if c != best)
    why = (f"{best.label} at {size[0]}x{size[1]}: fastest, {timings[_key(best, size)].cpu_ms:.1f} ms CPU per call"
           + (f" (against {rest} ms)" if rest else ""))
    return Choice(best, size, True, why, timings, round(clock() - start, 3))


# --- the machine, the cache -------------------------------------------------------------------


def cpu_identity(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, str]:
    """(CPU model name, its flags) from /proc/cpuinfo, or :mod:`platform` where there is none."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields.setdefault(name.strip(), value.strip())
    return fields.get("model name", platform.machine()), " ".join(sorted(fields.get("flags", "").split()))


def cache_key(parts: Mapping[str, object]) -> str:
    """sha256 of the key parts (CPU, flags, runtime versions, model sha256, candidates, ladder, mode)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def load_timings(path: Path, key: str) -> dict[str, Timing]:
    """The cached timings for ``key`` (empty when the file is missing, unreadable or for another key)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entry = data["entries"][key]["timings"]
        return {k: Timing(float(v["cpu_ms"]), float(v["wall_ms"])) for k, v in entry.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def save_timings(path: Path, key: str, parts: Mapping[str, object], timings: Mapping[str, Timing]) -> None:
    """Write the timings for ``key`` (other keys' entries kept), through a temporary file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["entries"] if isinstance(data.get("entries"), dict) else {}
    except (OSError, ValueError, AttributeError):
        entries = {}
    entries[key] = {"parts": dict(parts),
                    "timings": {k: {"cpu_ms": t.cpu_ms, "wall_ms": t.wall_ms} for k, t in sorted(timings.items())}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"entries": entries}, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write the runtime calibration cache %s (%s); the next start measures again",
                    path, exc.strerror)


def forget(path: Path) -> bool:
    """Remove the calibration cache (``vcam run --recalibrate``); True if there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("cannot remove the runtime calibration cache %s (%s)", path, exc.strerror)
        return False
    return True


# --- the real engines -------------------------------------------------------------------------


def open_engine(
    c: Candidate,
    model_path: Path,
    *,
    input_size: tuple[int, int],
    downsample_ratio: float,
    threads: int,
    providers: Sequence[str] = ("cpu",),
    frame_budget_s: float | None = None,
) -> Matter:
    """An engine for candidate ``c`` (a :class:`~vcam.matting.Matter`)."""
    if c.runtime == "openvino":
        from vcam.matting.openvino_engine import OpenVinoEngine

        return OpenVinoEngine(model_path, precision=c.precision, threads=threads, input_size=input_size,
                              downsample_ratio=downsample_ratio, frame_budget_s=frame_budget_s)
    return MattingEngine(model_path, providers=providers, threads=threads, input_size=input_size,
                         downsample_ratio=downsample_ratio, frame_budget_s=frame_budget_s)


def measure_engine(
    model_path: Path, downsample_ratio: float, threads: int, calls: int = 4
) -> Callable[[Candidate, tuple[int, int]], Timing]:
    """A ``measure`` for :func:`choose_live` / :func:`choose_offline` on the real model: opens
    the candidate at the size, one warm-up call, then ``calls`` calls with the state carried on
    a camera-like picture (smooth gradient plus noise); process CPU ms and median wall ms."""

    def measure(c: Candidate, size: tuple[int, int]) -> Timing:
        with _quiet_engines():  # the engines' own start-up lines are for the engine that runs
            engine = open_engine(c, model_path, input_size=size, downsample_ratio=downsample_ratio, threads=threads)
        return time_engine(engine, calls)

    return measure


def time_engine(engine: Matter, calls: int = 4) -> Timing:
    """One warm-up call, then ``calls`` calls with the state carried on a camera-like picture
    (smooth gradient plus noise) at the engine's input size: process CPU ms and median wall ms
    per call. Leaves the recurrent state dirty (reset it before real frames)."""
    w, h = engine.input_size
    rng = np.random.default_rng(0)
    ramp = np.linspace(40, 200, w, dtype=np.float32)[None, :, None] + np.zeros((h, 1, 3), np.float32)
    frames = [np.clip(ramp + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8) for _ in range(2)]
    engine.infer(frames[0])
    walls = []
    cpu0 = time.process_time()
    for i in range(calls):
        t0 = time.perf_counter()
        engine.infer(frames[i % 2])
        walls.append(time.perf_counter() - t0)
    cpu = (time.process_time() - cpu0) / calls
    return Timing(round(cpu * 1e3, 2), round(float(np.median(walls)) * 1e3, 2))


@contextlib.contextmanager
def _quiet_engines() -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in ("vcam.matting.engine", "vcam.matting.openvino_engine")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def machine_parts(model_sha256: str, cands: Sequence[Candidate], sizes: Sequence[tuple[int, int]],
                  mode: str, openvino_version: str | None, threads: int) -> dict[str, object]:
    """The cache key's parts for this machine and this set of candidates."""
    name, flags = cpu_identity()
    return {
        "cpu": name, "flags": flags, "cores": available_cores(), "onnxruntime": onnxruntime_version(),
        "openvino": openvino_version, "model_sha256": model_sha256, "candidates": [c.label for c in cands],
        "sizes": [list(s) for s in sizes], "mode": mode, "threads": threads,
    }


@dataclass(frozen=True)
class Plan:
    """What :func:`vcam.build.build_engine` opens: the candidate, the input size, the threads
    (0: the engine's own rule) and the measured choice behind them (None when nothing was free)."""

    candidate: Candidate
    input_size: tuple[int, int]
    threads: int
    choice: Choice | None
    cached: bool = False  # every timing behind the choice came from the cache (nothing measured)


def plan_engine(
    cfg: Config,
    model_path: Path,
    model_sha256: str,
    cache: Path,
    *,
    live: bool,
    measure: Callable[[Candidate, tuple[int, int]], Timing] | None = None,
    native: Callable[[], tuple[str, ...] | None] | None = None,
    remeasure: bool = False,
) -> Plan:
    """Resolve ``model.runtime`` / ``model.precision`` / ``model.input_sizes`` for this machine,
    measuring (or reading the cache) where more than one option is left. ``live``: ``vcam run``;
    file mode with the realtime preset makes the same choice (same config, same cache entry).
    ``remeasure``: ignore (and then replace) the cached timings (a :func:`stale` cache)."""
    m = cfg.model
    if m.runtime in ("auto", "onnxruntime") and _gpu_first(m.providers):
        log.info("runtime: onnxruntime on a GPU provider (no CPU calibration)")
        return Plan(Candidate("onnxruntime", "f32"), m.input_size, m.threads, None)
    ov = (native or _openvino_native)()
    cands = candidates(m.runtime, m.precision, openvino=ov)
    if not cands:
        raise ModelError(_no_candidate(m.runtime, m.precision, ov))
    mode = "live" if live or m.preset == LIVE_PRESET else "offline"
    sizes = ladder_for(m.input_sizes, cfg.output_size) if mode == "live" else (m.input_size,)
    if len(cands) == 1 and len(sizes) == 1:
        return Plan(cands[0], sizes[0], m.threads, None)
    threads = 1 if mode == "live" else (m.threads or available_cores())
    from vcam.matting.openvino_engine import openvino_version

    parts = machine_parts(model_sha256, cands, sizes, mode, openvino_version() if ov is not None else None, threads)
    key = cache_key(parts)
    known = {} if remeasure else load_timings(cache, key)
    measure = measure or measure_engine(model_path, m.downsample_ratio, threads, calls=4 if mode == "live" else 2)
    if mode == "live":
        fps = cfg.output_fps
        budget = Budget(fps, cfg.live.cpu_budget, round(pipeline_overhead_ms(cfg.output_size), 1))
        choice = choose_live(cands, sizes, budget, measure, known=known)
    else:
        choice = choose_offline(cands, sizes[0], measure, known=known)
    if set(choice.timings) - set(known):
        save_timings(cache, key, parts, choice.timings)
        source = f"measured in {choice.measured_s:.1f} s, cached in {cache}"
    else:
        source = f"from the cache {cache}"
    log.info("runtime choice (%s): %s (%s)", mode, choice.reason, source)
    one_thread = False
    if mode == "live" and live:
        # One thread when its CPU time per call fits the frame time, even if the CPU budget is
        # exceeded: a second thread costs CPU, and the engine's own rule would judge by a wall
        # time taken under whatever load there is at start (at load 15, OpenVINO with two
        # threads took 152 ms wall for 25 ms of CPU per call).
        one_thread = choice.timings[_key(choice.candidate, choice.input_size)].cpu_ms <= budget.model_wall_ms
    out_threads = m.threads or (1 if one_thread else 0)
    return Plan(choice.candidate, choice.input_size, out_threads, choice, cached=not set(choice.timings) - set(known))


# A cached choice is stale when its engine now takes less than this share of the cached CPU time.
STALE_SHARE = 0.75


def stale(plan: Plan, now: Timing) -> bool:
    """Whether ``plan`` came from timings cached on a busier machine than this one is now: its
    engine, timed again as it was calibrated (:func:`time_engine`), takes less than
    :data:`STALE_SHARE` of its cached CPU time. A calibration made under load (a build, a
    browser, other jobs) would otherwise hold a smaller input, or more threads, until
    ``--recalibrate``; an engine slower now keeps the cache (the machine is busy now). The
    cache holds one-thread figures: an engine on more threads spends more CPU per call, so
    then the check can only err towards keeping the cache."""
    if plan.choice is None or not plan.cached:
        return False
    cached = plan.choice.timings[_key(plan.candidate, plan.input_size)]
    if now.cpu_ms >= STALE_SHARE * cached.cpu_ms:
        return False
    log.info("runtime choice (live): the cached timings were taken on a busier machine (%s at %dx%d: %.1f ms CPU per "
             "call now, %.1f cached); measuring again", plan.candidate.label, *plan.input_size, now.cpu_ms, cached.cpu_ms)
    return True


def _gpu_first(providers: Sequence[str]) -> bool:
    from vcam.matting.engine import PROVIDER_NAMES
    from vcam.matting.runtime import import_onnxruntime

    ort = import_onnxruntime()  # a clear error when not installed (a plain `pip install .`)

    have = set(ort.get_available_providers())
    usable = [p for p in providers if PROVIDER_NAMES[p] in have]
    return bool(usable) and usable[0] != "cpu"


def _openvino_native() -> tuple[str, ...] | None:
    from vcam.matting.openvino_engine import native_precisions

    try:
        return native_precisions()
    except ImportError:
        # at debug level, as unavailable default providers are (issue 13): most installs lack it;
        # a pinned model.runtime: openvino is an error instead (_no_candidate)
        log.debug("runtime openvino is not installed; skipping it (in the vcam folder: pip install '.[cpu,openvino]')")
        return None


def _no_candidate(runtime: str, precision: str, ov: tuple[str, ...] | None) -> str:
    if runtime == "openvino" and ov is None:
        return "model.runtime: openvino is not installed; in the vcam folder: pip install '.[cpu,openvino]', or use model.runtime: auto"
    if runtime == "onnxruntime":
        return f"model.precision: {precision} is not available with onnxruntime on the CPU; use f32 or auto"
    return (f"model.precision: {precision} is not native on this CPU (OpenVINO runs "
            f"{', '.join(ov or ())}); use f32 or auto")
