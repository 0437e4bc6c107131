"""``vcam run``: one live run, with or without the desktop daemon around it."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from vcam import build  # one module object, so tests can swap build.build_engine
from vcam.compositing import make_compositor
from vcam.compositing.enhance import enhancer_for
from vcam.compositing.refine import make_refiner
from vcam.config import Config
from vcam.errors import ControlError
from vcam.frames import Frame
from vcam.live.daemon import DesktopOptions, open_gated_source, run_desktop
from vcam.live.sizes import follow_file_source
from vcam.matting.lazy import lazy_if_off
from vcam.matting.models import ProgressFactory
from vcam.pipeline import LiveRunner, Stages
from vcam.sources import Source

__all__ = ["run_live"]

log = logging.getLogger(__name__)


def _daemon_lock() -> contextlib.AbstractContextManager[object]:
    """One desktop daemon per user: a second one is refused (:class:`DaemonRunningError`, exit 1).
    A lock that cannot be taken for another reason (runtime folder unusable) is only a warning,
    as the control socket is."""
    from vcam.live.control_socket import DaemonRunningError, lock_daemon

    try:
        return lock_daemon()
    except DaemonRunningError:
        raise
    except ControlError as exc:
        log.warning("%s; a second vcam daemon would not be noticed", exc)
        return contextlib.nullcontext()


_MODE_OF = {"BlurCompositor": "blur", "ColorCompositor": "color", "ReplaceCompositor": "replace", "PassThrough": "off"}


def _overlay(cfg: Config, stages: Stages) -> Callable[[np.ndarray, Frame], np.ndarray] | None:
    """With the test pattern as the camera: its label (with the mode running now) and frame
    counter, drawn after the effect (:class:`~vcam.sources.synthetic.TestPatternOverlay`)."""
    if cfg.camera.device != build.TEST_PATTERN:
        return None
    from vcam.sources.synthetic import TestPatternOverlay

    draw = TestPatternOverlay()

    def overlay(image: np.ndarray, frame: Frame) -> np.ndarray:
        name = type(stages.compositor).__name__
        return draw(image, frame.index, _MODE_OF.get(name, name))

    return overlay


def run_live(
    cfg: Config,
    *,
    target: str | None = None,
    duration: float | None = None,
    stats_json: str | None = None,
    stop: threading.Event | None = None,
    overwrite: bool = False,
    progress: ProgressFactory | None = None,
    desktop: DesktopOptions | None = None,
) -> dict[str, object]:
    """Run the live daemon until stopped; returns (and writes) the stats summary.

    With ``desktop`` the daemon also serves the control socket, reloads the config, follows
    the virtual camera's consumers and shows the tray icon (see :mod:`vcam.live.daemon`).
    """
    stop = stop or threading.Event()
    cfg, from_file = follow_file_source(cfg)
    with contextlib.ExitStack() as stack:
        if desktop is not None:  # before the camera and the virtual camera are opened
            stack.enter_context(_daemon_lock())
        # Everything that can be checked is opened first (backgrounds, camera or file, the
        # virtual camera or the output file), so bad input fails before the model loads.
        t0 = time.monotonic()
        compositor = make_compositor(cfg.effect, cfg.output_size, cfg.output_fps)
        close = getattr(compositor, "close", None)
        if close is not None:
            stack.callback(close)
        gated = open_gated_source(cfg, build.open_live_source) if desktop is not None else None
        source: Source = gated or build.open_live_source(cfg)
        stack.callback(source.close)
        sink = build.open_sink(cfg, target, overwrite)
        log.debug("source, background and output checked in %.3f s", time.monotonic() - t0)
        try:
            engine = lazy_if_off(cfg, lambda: build.build_live_engine(cfg, progress))
        except BaseException:
            build.finish_sink(sink, False)
            raise
        stages = Stages(
            engine, compositor, output_size=cfg.output_size, mirror=cfg.effect.mirror,
            refiner=make_refiner(cfg.model.refine), fit="contain" if from_file else "cover",
            still=cfg.model.still_threshold, enhancer=enhancer_for(cfg),
        )
        pipeline = LiveRunner(source, stages, sink, alpha_policy=cfg.live.alpha, overlay=_overlay(cfg, stages))

        def close_swapped_source() -> None:  # a source swapped in while running
            if pipeline.source is not source:
                pipeline.source.close()

        stack.callback(close_swapped_source)
        log.info(
            "running: %s -> %s, mode %s, %dx%d @ %g fps",
            source.name, sink.name, cfg.effect.mode, *cfg.output_size, cfg.output_fps,
        )
        ok = False
        try:
            if desktop is None:
                why = pipeline.run(stop, duration)
            else:
                why = run_desktop(
                    pipeline, cfg, source=gated, sink=sink,
                    stop=stop, duration=duration, options=desktop, build_engine=build.build_live_engine, open_source=build.open_live_source,
                )
            ok = True
            log.info("stopped (%s)", why)
        except KeyboardInterrupt:
            ok = True  # Ctrl-C is how a live run ends: keep what was recorded
            raise
        finally:
            build.finish_sink(sink, ok)
            summary = build.summarize(stages, pipeline.alpha_policy)
            build.write_stats(stats_json, summary)
    return summary
