"""The desktop daemon around a live pipeline: controller, control socket, config hot reload,
on-demand camera and tray icon, wired together and stopped by one ``Event``.

:func:`run_desktop` is what ``vcam run`` uses in place of ``Pipeline.run``. Threads (all
named ``vcam-*``) stop when the shared ``stop`` event is set; an error in one of them stops
the daemon and is re-raised on the calling thread. With a tray icon the pipeline runs on a
``vcam-pipeline`` thread and the tray's event loop on the calling (main) thread, as pystray
requires; without one the pipeline runs on the calling thread as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from vcam.config import Config
from vcam.control import ControlError, Controller
from vcam.control_socket import ControlServer
from vcam.errors import VcamError
from vcam.matting.engine import MattingEngine
from vcam.ondemand import ConsumerMonitor, GatedSource, count_consumers
from vcam.pipeline import Pipeline
from vcam.pipeline.threads import join_threads
from vcam.reload import ConfigWatcher, config_loader
from vcam.sinks import Sink
from vcam.sources import Source

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
    The control socket is at :func:`~vcam.control_socket.default_socket_path`.
    """

    config_path: Path | None = None
    config_required: bool = False
    overrides: Mapping[str, Any] = field(default_factory=dict)
    consumer_counter: Callable[[str], Callable[[], int]] | None = None


def open_gated_source(cfg: Config, open_source: Callable[[Config], Source]) -> GatedSource:
    """The configured camera behind a gate that can release it (pause, on-demand)."""
    return GatedSource(lambda: open_source(cfg), cfg.output_size)


class _Workers:
    """Named helper threads that hand their first error to the main thread and stop the rest."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []

    def start(self, name: str, body: Callable[[threading.Event], object]) -> None:
        def target() -> None:
            try:
                body(self.stop)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                log.error("%s failed: %s", name, exc)
                self.errors.append(exc)
                self.stop.set()

        t = threading.Thread(target=target, name=name, daemon=True)
        self.threads.append(t)
        t.start()

    def join(self) -> None:
        self.stop.set()
        join_threads(self.threads, _JOIN_S)


def _set_soon(*events: threading.Event) -> None:
    """Set ``events`` from a signal handler. Not directly: the handler runs on the main thread
    between two bytecodes, maybe inside that very Event's (non-reentrant) lock."""

    def body() -> None:
        for e in events:
            e.set()

    threading.Thread(target=body, name="vcam-signal", daemon=True).start()


@contextlib.contextmanager
def _signals(stop: threading.Event, on_hup: Callable[[], None]) -> Iterator[threading.Event]:
    """On the main thread: SIGTERM stops cleanly, SIGHUP reloads the config, and (yielded)
    an event that SIGINT sets while the tray loop, which would swallow KeyboardInterrupt, runs.
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def on_term(signum: int, frame: FrameType | None) -> None:
        _set_soon(stop)

    def on_hup_signal(signum: int, frame: FrameType | None) -> None:
        on_hup()

    old = {signal.SIGTERM: signal.signal(signal.SIGTERM, on_term)}
    if hasattr(signal, "SIGHUP"):
        old[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hup_signal)
    try:
        yield interrupted
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _sigint_sets(interrupted: threading.Event, stop: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_int(signum: int, frame: FrameType | None) -> None:
        _set_soon(interrupted, stop)

    old = signal.signal(signal.SIGINT, on_int)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def run_desktop(
    pipeline: Pipeline,
    cfg: Config,
    *,
    source: GatedSource | None,
    sink: Sink,
    stop: threading.Event,
    duration: float | None,
    options: DesktopOptions,
    build_engine: Callable[[Config], MattingEngine] | None = None,
    open_source: Callable[[Config], Source] | None = None,
) -> str:
    """Run ``pipeline`` with the desktop services until ``stop``; returns why it stopped
    (as ``Pipeline.run`` does). Re-raises the first error of the pipeline or a helper thread;
    Ctrl-C raises ``KeyboardInterrupt`` after everything stopped.
    """
    loader = None
    if options.config_path is not None:
        loader = config_loader(options.config_path, required=options.config_required, overrides=options.overrides)
    device = getattr(sink, "device", None)
    watchable = isinstance(device, str) and sys.platform.startswith("linux")
    controller = Controller(
        pipeline,
        cfg,
        stop=stop,
        source=source,
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
    workers = _Workers(stop)
    server: ControlServer | None = None
    watcher: ConfigWatcher | None = None
    try:
        server = ControlServer(controller)
        try:
            server.start()
        except ControlError as exc:
            log.warning("%s; this daemon cannot be controlled with 'vcam ctl'", exc)
            server = None
        if server is not None:
            workers.start("vcam-control", server.run)
        if options.config_path is not None:
            watcher = ConfigWatcher(options.config_path, lambda: _reload(controller))
            workers.start("vcam-reload", watcher.run)
        if watchable:
            assert isinstance(device, str)
            factory = options.consumer_counter or _proc_counter
            monitor = ConsumerMonitor(factory(device), controller.set_consumers, enabled=lambda: controller.on_demand)
            monitor.poll()
            workers.start("vcam-ondemand", monitor.run)
        request_reload = watcher.request if watcher is not None else (lambda: None)
        with _signals(stop, request_reload) as interrupted:
            why = _run(pipeline, controller, stop, duration, cfg.tray.enabled, interrupted)
    finally:
        workers.join()
        if server is not None:
            server.close()
        controller.close()
    if workers.errors:
        raise workers.errors[0]
    return why


def _run(
    pipeline: Pipeline,
    controller: Controller,
    stop: threading.Event,
    duration: float | None,
    tray: bool,
    interrupted: threading.Event,
) -> str:
    if not tray:
        return pipeline.run(stop, duration)
    from vcam.tray import run_tray

    result: list[str] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            result.append(pipeline.run(stop, duration))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
            stop.set()

    t = threading.Thread(target=body, name="vcam-pipeline", daemon=True)
    t.start()
    try:
        with _sigint_sets(interrupted, stop):
            run_tray(controller, stop)
        # No tray (or it ended early): wait for the pipeline; Ctrl-C lands here as usual.
        while t.is_alive():
            t.join(0.2)
    finally:
        stop.set()
        t.join(_JOIN_S)
    if interrupted.is_set():
        raise KeyboardInterrupt
    if errors:
        raise errors[0]
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
