"""The desktop daemon around a live pipeline: controller, control socket, config hot reload,
on-demand camera and tray icon, wired together and stopped by one ``Event``.

:func:`run_desktop` is what ``vcam run`` uses in place of ``LiveRunner.run``. Threads (all
named ``vcam-*``) stop when the shared ``stop`` event is set; an error in one of them stops
the daemon and is re-raised on the calling thread. With a tray icon the pipeline runs on a
``vcam-pipeline`` thread and the tray's event loop on the calling (main) thread, as pystray
requires; without one the pipeline runs on the calling thread as before.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcam.config import Config
from vcam.errors import VcamError
from vcam.live.consumers import ConsumerMonitor
from vcam.live.control import ControlError, Controller
from vcam.live.control_pipe import PipeServer
from vcam.live.control_socket import ControlServer, open_control_server
from vcam.live.reload import ConfigWatcher, config_loader
from vcam.matting import Matter
from vcam.media.devices import count_consumers
from vcam.pipeline import LiveRunner
from vcam.pipeline.threads import Workers
from vcam.signals import DaemonSignals
from vcam.sinks import Sink
from vcam.sinks.resilient import ResilientSink
from vcam.sources import Source
from vcam.sources.gated import GatedSource

__all__ = ["DesktopOptions", "open_gated_source", "run_desktop"]

log = logging.getLogger(__name__)
_JOIN_S = 5.0


@dataclass(frozen=True)
class DesktopOptions:
    """What the desktop daemon adds to a live run.

    ``config_path``: the config file to watch and reload (None: no hot reload);
    ``config_required``: it was named explicitly, so it must exist (the default user file may
    be created or deleted while vcam runs); ``overrides``: the command-line settings that
    stay on top of the file at every reload. ``consumer_counter(device)`` returns the
    function that counts the readers of the virtual camera (default: a /proc scan).
    ``signals``: the handlers ``vcam run`` installed at its start (:class:`vcam.signals.DaemonSignals`);
    without them :func:`run_desktop` installs its own for its own time.
    The control socket is at :func:`~vcam.live.control_socket.default_socket_path`.
    """

    config_path: Path | None = None
    config_required: bool = False
    overrides: Mapping[str, Any] = field(default_factory=dict)
    consumer_counter: Callable[[str], Callable[[], int]] | None = None
    signals: DaemonSignals | None = None


def open_gated_source(cfg: Config, open_source: Callable[[Config], Source]) -> GatedSource:
    """The configured camera behind a gate that can release it (pause, on-demand)."""
    return GatedSource(lambda: open_source(cfg), cfg.output_size)


def run_desktop(
    pipeline: LiveRunner,
    cfg: Config,
    *,
    source: GatedSource | None,
    sink: Sink,
    stop: threading.Event,
    duration: float | None,
    options: DesktopOptions,
    build_engine: Callable[[Config], Matter] | None = None,
    open_source: Callable[[Config], Source] | None = None,
) -> str:
    """Run ``pipeline`` with the desktop services until ``stop``; returns why it stopped
    (as :meth:`LiveRunner.run` does). Re-raises the first error of the pipeline or a helper thread;
    Ctrl-C raises ``KeyboardInterrupt`` after everything stopped.
    """
    loader = None
    if options.config_path is not None:
        loader = config_loader(options.config_path, required=options.config_required, overrides=options.overrides)
    device = getattr(sink, "device", None)
    watchable = isinstance(device, str) and sys.platform.startswith("linux")
    resilient = sink if isinstance(sink, ResilientSink) else None
    controller = Controller(
        pipeline.stages,
        cfg,
        stop=stop,
        source=source,
        set_source=pipeline.set_source,
        sink_available=(lambda: resilient.available) if resilient is not None else None,
        config_path=options.config_path,
        load_config=loader,
        build_engine=build_engine,
        open_source=open_source,
        watch_consumers=watchable,
    )
    if cfg.camera.on_demand and not watchable:
        log.warning(
            "camera.on_demand works only with the virtual camera output on Linux (v4l2loopback); "
            "the camera stays open"
        )
    workers = Workers(stop, join_s=_JOIN_S, log_errors=True)
    server: ControlServer | PipeServer | None = None
    watcher: ConfigWatcher | None = None
    if options.config_path is not None:
        watcher = ConfigWatcher(options.config_path, lambda: _reload(controller))
    request_reload = watcher.request if watcher is not None else (lambda: None)
    own_signals = options.signals is None
    signals = options.signals or DaemonSignals(stop)
    with contextlib.ExitStack() as stack:
        if own_signals:
            stack.enter_context(signals)
        # From here on a Ctrl-C only stops: the closing below must not be cut short.
        stack.enter_context(signals.serving(request_reload))
        try:
            server = open_control_server(controller)
            try:
                server.start()
            except ControlError as exc:
                log.warning("%s; this daemon cannot be controlled with 'vcam ctl'", exc)
                server = None
            if server is not None:
                workers.start("vcam-control", functools.partial(server.run, stop))
            if watcher is not None:
                workers.start("vcam-reload", functools.partial(watcher.run, stop))
            if watchable:
                assert isinstance(device, str)
                factory = options.consumer_counter or _proc_counter
                monitor = ConsumerMonitor(factory(device), controller.set_consumers, enabled=lambda: controller.on_demand)
                monitor.poll()
                workers.start("vcam-ondemand", functools.partial(monitor.run, stop))
            why = _run(pipeline, controller, stop, duration, cfg.tray.enabled)
        finally:
            workers.join()
            if server is not None:
                server.close()
            controller.close()
        workers.raise_first()
        if signals.interrupted:
            raise KeyboardInterrupt
    return why


def _run(
    pipeline: LiveRunner,
    controller: Controller,
    stop: threading.Event,
    duration: float | None,
    tray: bool,
) -> str:
    if not tray:
        return pipeline.run(stop, duration)
    from vcam.live.tray import run_tray

    result: list[str] = []
    worker = Workers(stop, join_s=_JOIN_S)
    t = worker.start("vcam-pipeline", lambda: result.append(pipeline.run(stop, duration)))
    try:
        run_tray(controller, stop)
        # No tray (or it ended early): wait for the pipeline (Ctrl-C and SIGTERM set stop).
        while t.is_alive():
            t.join(0.2)
    finally:
        worker.join()
    worker.raise_first()
    return result[0] if result else "stopped"


def _reload(controller: Controller) -> None:
    try:
        controller.reload()
    except VcamError:
        pass  # already logged, shown in the status and sent to the tray
    except Exception as exc:  # a bug in a reload must not end the daemon
        log.error("config reload failed, keeping the last good settings: internal error: %s: %s", type(exc).__name__, exc)
        log.debug("config reload failed", exc_info=True)


def _proc_counter(device: str) -> Callable[[], int]:
    pid = os.getpid()
    return lambda: count_consumers(device, own_pid=pid)
