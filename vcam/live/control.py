"""The controller: the one way the tray, the control channel and config hot reload change a
running daemon.

Every change goes through a :class:`Controller` method, which builds what the change needs
(a compositor, an engine, a camera) first and swaps it into the pipeline only when that
worked, so a bad request or a bad config never replaces a working setting. Changes are
serialised; :meth:`Controller.status` can be read from any thread at any time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from vcam import __version__
from vcam.commands import COMMANDS, SWITCH
from vcam.compositing import Compositor, make_compositor
from vcam.compositing.enhance import framing_settings, light_settings
from vcam.config import MODES, Config, EffectConfig
from vcam.errors import ConfigError, ControlError, VcamError
from vcam.matting import Matter
from vcam.pipeline.stages import Stages
from vcam.sources import Source
from vcam.sources.gated import GatedSource

__all__ = [
    "MODES",
    "STATUS_FIELDS",
    "ControlError",
    "Controller",
    "IDLE_REASON",
    "PAUSED_REASON",
    "run_command",
]

log = logging.getLogger(__name__)

PAUSED_REASON = "paused"
SINK_DOWN_REASON = "virtual camera unavailable"
IDLE_REASON = "no application is using the virtual camera"
STATUS_FIELDS = (
    "mode",
    "background",
    "mirror",
    "framing",
    "light",
    "paused",
    "fps",
    "latency_p95_ms",
    "provider",
    "runtime",
    "precision",
    "model_input",
    "frames_in",
    "frames_out",
    "frames_dropped",
    "config_path",
    "config_error",
    "pending_restart",
    "camera",
    "on_demand",
    "consumers",
    "pid",
    "version",
    "stopping",
)
# Fields of EffectConfig that the compositor is built from (mirror is a pipeline setting).
_COMPOSITOR_FIELDS = ("mode", "blur_strength", "background", "color")


class _MakeCompositor(Protocol):
    def __call__(self, effect: EffectConfig, size: tuple[int, int], fps: float) -> Compositor: ...


class Controller:
    """Thread-safe control of a running live pipeline, through its :class:`~vcam.pipeline.Stages`.

    ``config`` is the configuration the daemon started with; ``load_config()`` (when given)
    reads the config file again for :meth:`reload`. ``source`` is the pipeline's
    :class:`~vcam.sources.gated.GatedSource` when the daemon can release the camera (pause,
    on-demand); without it, pausing only stops the matting and a new camera goes in through
    ``set_source``. ``sink_available()`` says whether the virtual camera is up (while it is
    being reopened nobody can see the webcam: it is released too). ``build_engine`` and
    ``open_source`` rebuild the model or the camera when a reload changes their settings.
    Setting ``stop`` is how :meth:`quit` ends the daemon.
    """

    def __init__(
        self,
        stages: Stages,
        config: Config,
        *,
        stop: threading.Event,
        source: GatedSource | None = None,
        set_source: Callable[[Source], None] | None = None,
        sink_available: Callable[[], bool] | None = None,
        config_path: Path | None = None,
        load_config: Callable[[], Config] | None = None,
        compositor_factory: _MakeCompositor = make_compositor,
        build_engine: Callable[[Config], Matter] | None = None,
        open_source: Callable[[Config], Source] | None = None,
        watch_consumers: bool = False,
    ) -> None:
        self.stages = stages
        self.stop_event = stop
        self._source = source
        self._set_source = set_source
        self._sink_available = sink_available or (lambda: True)
        self._load_config = load_config
        self._make_compositor = compositor_factory
        self._build_engine = build_engine
        self._open_source = open_source
        self.config_path = config_path
        self._change = threading.Lock()  # one change at a time (may take a while: engine load)
        self._state = threading.Lock()  # short reads and writes of the fields below
        self._config = config  # the last good config (file + command-line overrides)
        self._effect = config.effect  # the live effect (tray and ctl change it)
        self._paused = False
        self._consumers: int | None = None
        self._watch_consumers = watch_consumers
        self._config_error: str | None = None
        self._pending_restart: list[str] = []
        self._owned_compositor: Compositor | None = None
        self._listeners: list[Callable[[str], None]] = []
        self._last_alpha_mode = config.effect.mode if config.effect.mode != "off" else "blur"
        if source is not None:
            source.set_gate(self.hold_reason)
        stages.set_mirror(self._effect.mirror)

    # -- reading --------------------------------------------------------------------------

    @property
    def config(self) -> Config:
        """The last good configuration, with the live effect settings."""
        with self._state:
            return self._config.model_copy(update={"effect": self._effect})

    @property
    def effect(self) -> EffectConfig:
        with self._state:
            return self._effect

    @property
    def on_demand(self) -> bool:
        """Whether the camera follows the virtual camera's consumers right now."""
        with self._state:
            return self._watch_consumers and self._config.camera.on_demand

    def hold_reason(self) -> str | None:
        """Why the camera must stay released now (None: it is wanted). The source's gate."""
        with self._state:
            if self._paused:
                return PAUSED_REASON
            if self._watch_consumers and self._config.camera.on_demand and not self._consumers:
                return IDLE_REASON
        if not self._sink_available():
            # the virtual camera is being reopened: nobody can see the webcam meanwhile
            return SINK_DOWN_REASON
        return None

    def status(self) -> dict[str, Any]:
        """A JSON-ready snapshot with the keys of :data:`STATUS_FIELDS`."""
        stats = self.stages.stats
        with self._state:
            eff, paused = self._effect, self._paused
            error, pending = self._config_error, list(self._pending_restart)
            on_demand = self._watch_consumers and self._config.camera.on_demand
            consumers = self._consumers if self._watch_consumers else None
        return {
            "mode": eff.mode,
            "background": eff.background,
            "mirror": eff.mirror,
            "framing": eff.framing,
            "light": eff.light,
            "paused": paused,
            "fps": round(stats.recent_fps(), 2),
            "latency_p95_ms": stats.latency()["p95"],
            "provider": self.stages.engine.provider,
            "runtime": self.stages.engine.runtime,
            "precision": self.stages.engine.precision,
            "model_input": list(self.stages.engine.input_size),
            "frames_in": stats.frames_in,
            "frames_out": stats.frames_out,
            "frames_dropped": stats.dropped,
            "config_path": str(self.config_path) if self.config_path else None,
            "config_error": error,
            "pending_restart": pending,
            "camera": self._source.state if self._source is not None else "open",
            "on_demand": on_demand,
            "consumers": consumers,
            "pid": os.getpid(),
            "version": __version__,
            "stopping": self.stop_event.is_set(),  # quit was asked: the daemon is ending
        }

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(message)`` with each message meant for the user (e.g. a bad config)."""
        with self._state:
            self._listeners.append(listener)

    # -- effect changes (take effect on the next frame) ---------------------------------------

    def set_mode(self, mode: str) -> None:
        """Switch to ``blur``, ``replace`` (needs a background), ``color`` or ``off``."""
        if mode not in MODES:
            raise ControlError(f"unknown mode {mode!r}; use one of: {', '.join(MODES)}")
        with self._change:
            eff = self.effect
            if mode == "replace" and not eff.background:
                raise ControlError(
                    "mode replace needs a background: choose one first "
                    "('vcam ctl background PATH', the tray's Backgrounds menu or effect.background)"
                )
            self._apply_effect(eff.model_copy(update={"mode": mode}))

    def toggle_effect(self) -> None:
        """Switch between ``off`` and the last mode that was not ``off`` (the tray's click)."""
        self.set_mode(self._last_alpha_mode if self.effect.mode == "off" else "off")

    def set_background(self, path: str | Path) -> None:
        """Replace the background with the image or video at ``path`` (mode becomes ``replace``).

        The file is loaded before anything changes: an unreadable file raises its
        :class:`~vcam.errors.InputError` and the current effect stays.
        """
        p = Path(path).expanduser()
        if not p.is_absolute():
            raise ControlError(f"background {path}: give an absolute path")
        with self._change:
            eff = self.effect.model_copy(update={"mode": "replace", "background": str(p)})
            self._apply_effect(eff)

    def set_mirror(self, mirror: bool) -> None:
        with self._change, self._state:
            self._effect = self._effect.model_copy(update={"mirror": bool(mirror)})
            self.stages.set_mirror(bool(mirror))

    def set_framing(self, value: str) -> None:
        """Auto-framing ``auto`` or ``off`` (the window glides back to the whole frame)."""
        self._set_switch("framing", value)

    def set_light(self, value: str) -> None:
        """Low-light correction ``auto`` or ``off`` (the lift fades out at its own slow pace)."""
        self._set_switch("light", value)

    def _set_switch(self, key: str, value: str) -> None:
        if value not in SWITCH:
            raise ControlError(f"{key}: use one of {', '.join(SWITCH)}, got {value!r}")
        with self._change:
            with self._state:
                self._effect = self._effect.model_copy(update={key: value})
            self._sync_enhancer()
        log.info("effect: %s %s", key, value)

    def _sync_enhancer(self) -> None:
        """Hand the live framing and light settings to the stages' enhancer."""
        enhancer = self.stages.enhancer
        with self._state:
            eff, cfg = self._effect, self._config
        enhancer.configure(
            framing_on=eff.framing == "auto", light_on=eff.light == "auto",
            framing=framing_settings(cfg, cfg.output_fps), light=light_settings(cfg, cfg.output_fps),
        )

    def set_paused(self, paused: bool) -> None:
        """Pause: the camera is released and a "paused" picture is sent instead (no matting)."""
        with self._change:
            with self._state:
                self._paused = bool(paused)
            self._update_hold()
        log.info("paused" if paused else "resumed")

    def set_consumers(self, count: int) -> None:
        """How many applications read the virtual camera now (from the consumer monitor)."""
        with self._state:
            self._consumers = count
        self._update_hold()

    def quit(self) -> None:
        """Ask the daemon to stop (the pipeline, the tray and the control channel end)."""
        log.info("quit requested")
        self.stop_event.set()

    # -- configuration --------------------------------------------------------------------

    def reload(self) -> list[str]:
        """Read the config file again and apply what changed (see :meth:`apply_config`).

        An invalid file or a change that cannot be applied is logged, reported to the
        listeners and in ``status()["config_error"]``, and raised; the last good config stays.
        """
        if self._load_config is None:
            raise ControlError("this daemon was started without a config file to reload")
        try:
            cfg = self._load_config()
        except ConfigError as exc:
            self.report_config_error(exc)
            raise
        return self.apply_config(cfg)

    def report_config_error(self, exc: VcamError) -> None:
        text = str(exc)
        with self._state:
            self._config_error = text
            listeners = list(self._listeners)
        log.error("config not applied, keeping the last good settings: %s", text.replace("\n", " "))
        for listener in listeners:
            listener(f"config not applied: {text}")

    def apply_config(self, cfg: Config) -> list[str]:
        """Apply a new valid config; returns the sections that changed.

        Effect settings apply on the next frame (only the keys that changed in the file, so a
        mode picked in the tray survives an unrelated edit); camera and model settings reopen
        just the camera or the engine; ``output`` and ``tray`` changes need a restart and are
        listed in ``status()["pending_restart"]``. Nothing is swapped unless every part was
        built: on failure the error names the section, is reported, and is raised.
        """
        with self._change:
            old = self._config
            changed = [s for s in Config.model_fields if getattr(old, s) != getattr(cfg, s)]
            source_name = str(self.config_path or "config")
            try:
                engine = None
                if "model" in changed:
                    build = self._build_engine
                    if build is None:
                        raise ControlError("model: this daemon cannot reload the model")
                    engine = self._wrap("model", lambda: build(cfg))
                effect = self._merged_effect(old.effect, cfg.effect)
                compositor = None
                if _compositor_key(effect) != _compositor_key(self.effect):
                    compositor = self._wrap("effect.background", lambda: self._new_compositor(effect, cfg))
                if _camera_key(old) != _camera_key(cfg):
                    try:
                        self._wrap("camera", lambda: self._reopen_camera(cfg))
                    except VcamError:
                        _close(compositor)
                        raise
            except VcamError as exc:
                err = exc if isinstance(exc, ConfigError) else ConfigError(source_name, [str(exc)])
                self.report_config_error(err)
                raise err from None
            if engine is not None:
                self.stages.set_engine(engine)
            if compositor is not None:
                self._swap_compositor(compositor)
            pending = [s for s in ("output", "tray") if getattr(old, s) != getattr(cfg, s)]
            with self._state:
                self._config, self._effect = cfg, effect
                self._config_error = None
                self._pending_restart = sorted(set(self._pending_restart) | set(pending))
            self.stages.set_mirror(effect.mirror)
            self._sync_enhancer()
            if effect.mode != "off":
                self._last_alpha_mode = effect.mode
        self._update_hold()
        if pending:
            log.warning("config: %s settings change only when vcam restarts", " and ".join(pending))
        log.info("config applied (%s changed)", ", ".join(changed) if changed else "nothing")
        return changed

    def close(self) -> None:
        """Release what the controller built (the current compositor, if it made it)."""
        with self._change:
            comp, self._owned_compositor = self._owned_compositor, None
        _close(comp)

    # -- internals ------------------------------------------------------------------------

    def _apply_effect(self, eff: EffectConfig) -> None:
        """Build the compositor for ``eff`` and swap it in (caller holds ``_change``)."""
        eff = EffectConfig.model_validate(eff.model_dump())
        if _compositor_key(eff) != _compositor_key(self.effect):
            what = f"background {eff.background}" if eff.mode == "replace" else f"mode {eff.mode}"
            self._swap_compositor(_built(what, lambda: self._new_compositor(eff, self._config)))
        with self._state:
            self._effect = eff
        if eff.mode != "off":
            self._last_alpha_mode = eff.mode
        log.info("effect: mode %s%s", eff.mode, f" ({eff.background})" if eff.mode == "replace" else "")

    def _new_compositor(self, eff: EffectConfig, cfg: Config) -> Compositor:
        return self._make_compositor(eff, cfg.output_size, cfg.output_fps)

    def _swap_compositor(self, comp: Compositor) -> None:
        # The stages close the compositor they replace.
        self.stages.set_compositor(comp)
        self._owned_compositor = comp

    def _merged_effect(self, old: EffectConfig, new: EffectConfig) -> EffectConfig:
        """The live effect with the keys that changed between ``old`` and ``new`` taken from new."""
        live = self.effect
        update = {k: getattr(new, k) for k in EffectConfig.model_fields if getattr(old, k) != getattr(new, k)}
        merged = live.model_copy(update=update)
        if merged.mode == "replace" and not merged.background:
            return new
        return merged

    def _reopen_camera(self, cfg: Config) -> None:
        if self._open_source is None:
            raise ControlError("this daemon cannot reopen the camera")
        opener = self._open_source
        if self._source is not None:
            self._source.replace(lambda: opener(cfg))
            # A new camera is a new scene: the matting thread starts its state over
            self.stages.request_reset()
        elif self._set_source is not None:
            self._set_source(opener(cfg))
        else:
            raise ControlError("this daemon cannot reopen the camera")

    def _update_hold(self) -> None:
        self.stages.set_held(self.hold_reason() is not None)

    @staticmethod
    def _wrap(key: str, build: Callable[[], Any]) -> Any:
        """Run ``build``; a failure is re-raised naming the config ``key`` it came from.

        Builders reach into ONNX Runtime, Pillow, FFmpeg and the file system, which raise
        what they like (``RuntimeError``, ``NotImplementedError``, ``PermissionError``, ...):
        any exception of a build is a setting that cannot be applied, never the daemon's end.
        """
        try:
            return build()
        except (ConfigError, ControlError):
            raise
        except VcamError as exc:
            raise ControlError(f"{key}: {exc}") from exc
        except Exception as exc:  # see above; the traceback goes to the debug log
            log.debug("building %s failed", key, exc_info=True)
            raise ControlError(f"{key}: cannot be applied ({_describe(exc)})") from exc


def run_command(controller: Controller, name: str, value: Any = None) -> None:
    """Apply the control command ``name`` (a key of :data:`vcam.commands.COMMANDS`) with
    ``value`` (a mode name, a path, a bool, or None for a command that takes none)."""
    command = COMMANDS[name]
    if command.method is None:
        return
    method = getattr(controller, command.method)
    if command.value is None:
        method() if command.argument is None else method(command.argument)
    elif command.value == "bool":
        method(bool(value))
    else:
        method(str(value))


def _built(what: str, build: Callable[[], Compositor]) -> Compositor:
    """Run ``build`` for a tray or ``vcam ctl`` request: a :class:`VcamError` passes as it is,
    any other exception becomes a :class:`ControlError` naming ``what`` (the effect stays)."""
    try:
        return build()
    except VcamError:
        raise
    except Exception as exc:  # third-party builders raise what they like
        log.debug("building %s failed", what, exc_info=True)
        raise ControlError(f"{what}: cannot be used ({_describe(exc)})") from exc


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _compositor_key(eff: EffectConfig) -> tuple[object, ...]:
    return tuple(getattr(eff, k) for k in _COMPOSITOR_FIELDS)


def _camera_key(cfg: Config) -> tuple[object, ...]:
    cam = cfg.camera
    return cam.device, cam.size, cam.fps, cam.fourcc


def _close(comp: object) -> None:
    close = getattr(comp, "close", None)
    if close is not None:
        close()
