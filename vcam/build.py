"""Every "config -> object" factory, shared by all modes: the matting engine, sources, sinks,
and the stats summary. Running them is the modes' business (:mod:`vcam.live.run`,
:mod:`vcam.files.process`); nothing here imports a mode."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vcam.config import Config
from vcam.errors import InputError, ModelError, OutputError
from vcam.matting import Matter, ensure_model
from vcam.matting.choice import CACHE_NAME, Plan, open_engine, plan_engine, stale, time_engine
from vcam.matting.models import KNOWN_MODELS, ProgressFactory, default_model_dir
from vcam.pipeline import Stages
from vcam.sinks import Sink
from vcam.sinks.file import FileSink
from vcam.sinks.null import NullSink
from vcam.sources import Source
from vcam.sources.file import FileSource
from vcam.sources.resilient import ResilientSource
from vcam.sources.synthetic import TestPatternSource
from vcam.sources.webcam import CameraSource

__all__ = [
    "build_engine",
    "build_live_engine",
    "calibration_cache",
    "finish_sink",
    "model_dir",
    "open_live_source",
    "open_sink",
    "open_source",
    "summarize",
    "write_stats",
]

log = logging.getLogger(__name__)
TEST_PATTERN = "testpattern"


def model_dir(cfg: Config) -> Path:
    """The folder models are cached in: ``model.dir`` or the user cache folder."""
    return Path(cfg.model.dir).expanduser() if cfg.model.dir else default_model_dir()


def build_engine(cfg: Config, progress: ProgressFactory | None = None, *, live: bool = False) -> Matter:
    """Verify (fetching on first use) the configured model and start an engine on it: the
    runtime, precision and input size that ``model.runtime`` / ``model.precision`` /
    ``model.input_sizes`` leave free are chosen by :func:`vcam.matting.choice.plan_engine`
    (measured once per machine, then cached). ``live``: for the live pipeline, where
    ``model.threads: 0`` picks the thread count by the frame rate."""
    overrides = cfg.model.preset_overrides()
    log.info(
        "quality preset %s%s", cfg.model.preset, ("; overridden: " + ", ".join(overrides)) if overrides else ""
    )
    if progress is None:
        path = ensure_model(cfg.model.name, cfg.model.path, model_dir(cfg))
    else:
        path = ensure_model(cfg.model.name, cfg.model.path, model_dir(cfg), progress=progress)
    sha256 = KNOWN_MODELS[cfg.model.name].sha256
    plan = plan_engine(cfg, path, sha256, calibration_cache(cfg), live=live)

    def start(plan: Plan) -> Matter:
        return open_engine(
            plan.candidate, path, input_size=plan.input_size, downsample_ratio=cfg.model.downsample_ratio,
            threads=plan.threads, providers=cfg.model.providers, frame_budget_s=1.0 / cfg.output_fps if live else None,
        )

    engine = start(plan)
    if live and plan.cached:  # a cache made on a busier machine would hold a poorer choice (choice.stale)
        try:
            now = time_engine(engine)
        except Exception:  # noqa: BLE001 - settings the model cannot run: build_live_engine says so, clearly
            now = None
        if now is not None and stale(plan, now):
            plan = plan_engine(cfg, path, sha256, calibration_cache(cfg), live=live, remeasure=True)
            engine = start(plan)
        else:
            engine.reset()
    return engine


def calibration_cache(cfg: Config) -> Path:
    """The runtime calibration cache: ``calibration.json`` in the model cache folder."""
    return model_dir(cfg) / CACHE_NAME


def build_live_engine(cfg: Config, progress: ProgressFactory | None = None) -> Matter:
    """:func:`build_engine` for the live pipeline (engine swaps on a config change included),
    tried on one blank frame: settings that pass validation but that ONNX Runtime cannot run
    (``model.downsample_ratio: 0.001`` gives the encoder a 0x0 input) fail here, as a
    :class:`~vcam.errors.ModelError`, and not on the first live frame."""
    engine = build_engine(cfg, progress, live=True)
    w, h = engine.input_size
    try:
        engine.infer(np.zeros((h, w, 3), np.uint8))
    except Exception as exc:  # ORT raises several private exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"the model cannot run at input {w}x{h} with downsample ratio {engine.downsample_ratio:g} ({first}); "
            "use a larger model.downsample_ratio or model.input_size"
        ) from exc
    engine.reset()
    return engine


def open_live_source(cfg: Config) -> Source:
    """The configured source for live mode: failures after a successful start (unplugged
    camera, read errors) are survived by :class:`ResilientSource`; a source that cannot be
    opened at start is an error."""
    first = open_source(cfg)
    return ResilientSource(lambda: open_source(cfg), cfg.output_size, cfg.output_fps, first=first)


def open_source(cfg: Config, clock: Callable[[], float] = time.monotonic) -> Source:
    """The configured camera: an index, a device path, a video file (looped, paced) or
    ``testpattern``."""
    dev = cfg.camera.device
    if isinstance(dev, str) and dev.strip().isdigit():
        dev = int(dev)
    if isinstance(dev, int):
        return CameraSource(dev, cfg.camera.size, cfg.camera.fps, cfg.camera.fourcc, clock=clock)
    if dev == TEST_PATTERN:
        return TestPatternSource(cfg.camera.size, cfg.camera.fps, clock=clock)
    if dev.startswith("/dev/"):
        return CameraSource(dev, cfg.camera.size, cfg.camera.fps, cfg.camera.fourcc, clock=clock)
    path = Path(dev).expanduser()
    if not path.exists():
        raise InputError(
            f"source {dev}: no such camera or video file; give a camera index (0), a device "
            "path (/dev/video0), a video file or 'testpattern'"
        )
    return FileSource(path, loop=True, pace=True, clock=clock, what="source video")


def open_sink(cfg: Config, target: str | None = None, overwrite: bool = False) -> Sink:
    """``virtualcam``, ``preview``, ``null`` or a video file path."""
    target = target or cfg.output.target
    size, fps = cfg.output_size, cfg.output_fps
    if target == "virtualcam":
        from vcam.sinks.resilient import ResilientSink
        from vcam.sinks.virtualcam import VirtualCamSink

        def open_cam() -> Sink:
            return VirtualCamSink(size, fps, cfg.output.device, cfg.output.backend)

        # failing to open at start is an error; failing while running is retried
        return ResilientSink(open_cam, open_cam())
    if target == "preview":
        from vcam.sinks.preview import PreviewSink

        return PreviewSink()
    if target == "null":
        return NullSink()
    return FileSink(target, size, fps, overwrite=overwrite, keep_partial=True)  # a full disk keeps the recording


def write_stats(path: str | None, data: dict[str, object]) -> None:
    if not path:
        return
    p = Path(path).expanduser()
    try:
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, p)
    except OSError as exc:
        raise OutputError(f"stats file {p}: cannot write it ({exc.strerror})") from exc


def finish_sink(sink: Sink, ok: bool) -> None:
    if not ok and isinstance(sink, FileSink):
        sink.abort()
    else:
        sink.close()


def summarize(stages: Stages, alpha_policy: str = "wait") -> dict[str, object]:
    """The run statistics with what ran: engine (the current one: it may have been reloaded),
    refiner and alpha policy."""
    engine = stages.engine
    return {
        **stages.stats.summary(),
        "provider": engine.provider,
        "runtime": engine.runtime,
        "precision": engine.precision,
        "model_input": list(engine.input_size),
        "downsample_ratio": engine.downsample_ratio,
        "refine": stages.refiner.name,
        "still_reused": stages.still.skipped if stages.still is not None else 0,
        "threads": engine.threads,
        "alpha_policy": alpha_policy,
    }
