"""Typed configuration: schema, YAML loading, CLI overrides and errors that name the key path.

The schema is a tree of pydantic models that forbid unknown keys. Values are checked
strictly (a string is not silently turned into a number), and every problem is reported
as ``section.key: what is wrong, got VALUE``. Nothing falls back to a default when a value
is wrong: a bad config is an error.
"""

from __future__ import annotations

import copy
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vcam.errors import ConfigError
from vcam.presets import LIVE_LADDER, LIVE_PRESET, PRESETS, WARMUP_RUNS, PresetName, RefineMethod

__all__ = [
    "MODES",
    "CameraConfig",
    "Config",
    "EffectConfig",
    "FramingConfig",
    "LightConfig",
    "LiveConfig",
    "ModelConfig",
    "OutputConfig",
    "TrayConfig",
    "default_config_path",
    "load_config",
    "non_regular_kind",
    "parse_color",
    "parse_size",
    "validate_config",
]

Mode = Literal["blur", "replace", "color", "off"]
Switch = Literal["off", "auto"]
MODES: tuple[str, ...] = get_args(Mode)
Provider = Literal["tensorrt", "cuda", "cpu"]
MAX_CONFIG_BYTES = 1_000_000
_READ_CHUNK = 1 << 16


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"WIDTHxHEIGHT"`` (e.g. ``"1280x720"``) into (width, height)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX\u00d7]\s*(\d+)\s*", text)
    if not m:
        raise ValueError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def parse_color(value: object) -> tuple[int, int, int]:
    """Parse ``"#rrggbb"`` or ``[r, g, b]`` (each 0..255) into an RGB tuple."""
    if isinstance(value, str):
        m = re.fullmatch(r"#?([0-9a-fA-F]{6})", value.strip())
        if not m:
            raise ValueError(f"expected a colour like '#00b140' or [0, 177, 64], got {value!r}")
        h = m.group(1)
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    if (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)
    ):
        return int(value[0]), int(value[1]), int(value[2])
    raise ValueError(f"expected a colour like '#00b140' or [0, 177, 64], got {value!r}")


MAX_MODEL_INPUT = 1920  # model.input_size, each side


def _check_size(value: object, lo: int, hi: int) -> tuple[int, int]:
    if isinstance(value, str):
        w, h = parse_size(value)
    elif (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        w, h = int(value[0]), int(value[1])
    else:
        raise ValueError(f"expected [width, height] or 'WIDTHxHEIGHT', got {value!r}")
    if not (lo <= w <= hi and lo <= h <= hi):
        raise ValueError(f"width and height must be in {lo}..{hi}, got {w}x{h}")
    return w, h


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CameraConfig(_Section):
    """Where frames come from: a camera index, a device path, or a video file (looped)."""

    device: int | str = 0
    size: tuple[int, int] = (1280, 720)
    fps: Annotated[float, Field(gt=0, le=240)] = 30.0
    fourcc: str | None = "MJPG"
    # Open the webcam only while an application reads the virtual camera (Linux, v4l2loopback).
    on_demand: bool = False

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, v: object) -> object:
        if isinstance(v, bool):
            raise ValueError(f"expected a camera index, device path or video file, got {v!r}")
        if isinstance(v, int) and v < 0:
            raise ValueError(f"a camera index must be 0 or more, got {v}")
        if isinstance(v, str) and not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, v: object) -> tuple[int, int]:
        return _check_size(v, 16, 8192)

    @field_validator("fps", mode="before")
    @classmethod
    def _fps(cls, v: object) -> object:
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("fourcc")
    @classmethod
    def _fourcc(cls, v: str | None) -> str | None:
        if v is not None and len(v) != 4:
            raise ValueError(f"must be a 4-character code such as MJPG or YUYV, or null, got {v!r}")
        return v


class ModelConfig(_Section):
    """The matting model and how ONNX Runtime runs it.

    ``preset`` names a quality preset (:data:`vcam.presets.PRESETS`) that supplies
    ``input_size``, ``downsample_ratio``, ``refine`` and ``still_threshold``; any of those keys
    given explicitly overrides the preset's value (see :meth:`preset_overrides`). ``warmup``:
    extra model runs on the first frame of a file (and after each scene cut) in file mode.
    """

    name: str = "rvm_mobilenetv3_fp32"
    path: str | None = None
    dir: str | None = None
    providers: tuple[Provider, ...] = ("tensorrt", "cuda", "cpu")
    threads: Annotated[int, Field(ge=0, le=256)] = 0
    preset: PresetName = LIVE_PRESET
    input_size: tuple[int, int] = PRESETS[LIVE_PRESET].input_size
    downsample_ratio: Annotated[float, Field(gt=0, le=1)] = PRESETS[LIVE_PRESET].downsample_ratio
    refine: RefineMethod = PRESETS[LIVE_PRESET].refine
    still_threshold: Annotated[float, Field(ge=0, le=255)] = PRESETS[LIVE_PRESET].still
    warmup: Annotated[int, Field(ge=0, le=32)] = WARMUP_RUNS
    # Which runtime and arithmetic run the model (auto: measured at start, vcam/matting/choice.py),
    # and the input sizes the live choice picks from (the realtime preset's ladder unless
    # input_size is given, which pins it).
    runtime: Literal["auto", "onnxruntime", "openvino"] = "auto"
    precision: Literal["auto", "f32", "bf16"] = "auto"
    input_sizes: tuple[tuple[int, int], ...] = LIVE_LADDER

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: object) -> object:
        # Keys the user gave win; the preset fills the rest. An unknown preset name is left
        # for the field check to report (as "model.preset: must be ...").
        if isinstance(data, dict):
            name = data.get("preset", LIVE_PRESET)
            preset = PRESETS.get(name) if isinstance(name, str) else None
            if preset is not None:
                filled = {
                    "input_size": preset.input_size,
                    "downsample_ratio": preset.downsample_ratio,
                    "refine": preset.refine,
                    "still_threshold": preset.still,
                }
                given = data.get("input_size")
                if given is not None:
                    try:  # a given size pins the ladder; a bad one is reported once, at input_size
                        filled["input_sizes"] = [_check_size(given, 16, MAX_MODEL_INPUT)]
                    except ValueError:
                        filled["input_sizes"] = [preset.input_size]
                elif name == LIVE_PRESET:
                    filled["input_sizes"] = LIVE_LADDER
                else:
                    filled["input_sizes"] = [preset.input_size]
                return {**filled, **data}
        return data

    def preset_overrides(self) -> list[str]:
        """The preset-controlled keys whose value differs from the preset's, as
        ``"input_size 256x144 (preset realtime: 384x216)"`` lines (empty when none)."""
        p = PRESETS[self.preset]
        out = []
        if self.input_size != p.input_size:
            out.append(
                f"input_size {self.input_size[0]}x{self.input_size[1]} "
                f"(preset {self.preset}: {p.input_size[0]}x{p.input_size[1]})"
            )
        if self.downsample_ratio != p.downsample_ratio:
            out.append(f"downsample_ratio {self.downsample_ratio:g} (preset {self.preset}: {p.downsample_ratio:g})")
        if self.refine != p.refine:
            out.append(f"refine {self.refine} (preset {self.preset}: {p.refine})")
        if self.still_threshold != p.still:
            out.append(f"still_threshold {self.still_threshold:g} (preset {self.preset}: {p.still:g})")
        return out

    @field_validator("providers", mode="before")
    @classmethod
    def _providers(cls, v: object) -> object:
        if isinstance(v, list):
            if not v:
                raise ValueError("list at least one provider: tensorrt, cuda, cpu")
            return tuple(v)
        return v

    @field_validator("input_size", mode="before")
    @classmethod
    def _input_size(cls, v: object) -> tuple[int, int]:
        # 1920 covers a 1080p frame at its own size; 4096x4096 took over 40 s to start (about
        # 5 s per inference on 2 cores), uninterruptible inside each ONNX Runtime call.
        return _check_size(v, 16, MAX_MODEL_INPUT)

    @field_validator("input_sizes", mode="before")
    @classmethod
    def _input_sizes(cls, v: object) -> tuple[tuple[int, int], ...]:
        if not isinstance(v, (list, tuple)) or not v:
            raise ValueError("list at least one size [width, height], e.g. [[384, 216], [448, 252]]")
        return tuple(_check_size(s, 16, MAX_MODEL_INPUT) for s in v)

    @field_validator("downsample_ratio", mode="before")
    @classmethod
    def _ratio(cls, v: object) -> object:
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class EffectConfig(_Section):
    """What happens to the background."""

    mode: Mode = "blur"
    blur_strength: Annotated[int, Field(ge=1, le=100)] = 20
    background: str | None = None
    color: tuple[int, int, int] = (0, 177, 64)
    mirror: bool = False
    # Folder whose images and videos the tray lists (None: $XDG_CONFIG_HOME/vcam/backgrounds).
    backgrounds_dir: str | None = None
    # Auto-framing and low-light correction (vcam.compositing.enhance); settings in `framing`, `light`.
    framing: Switch = "off"
    light: Switch = "off"

    @field_validator("color", mode="before")
    @classmethod
    def _color(cls, v: object) -> tuple[int, int, int]:
        return parse_color(v)

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, v: object) -> object:
        # YAML 1.1 reads a bare `off` as false; that is what the user meant.
        return "off" if v is False else v

    @field_validator("framing", "light", mode="before")
    @classmethod
    def _switch(cls, v: object) -> object:
        return {False: "off", True: "auto"}.get(v, v) if isinstance(v, bool) else v


class FramingConfig(_Section):
    """Auto-framing (effect.framing: auto): how the person is framed."""

    person_height: Annotated[float, Field(ge=0.2, le=1)] = 0.8
    headroom: Annotated[float, Field(ge=0, le=0.4)] = 0.1
    max_zoom: Annotated[float, Field(ge=1, le=4)] = 2.0
    speed: Annotated[float, Field(gt=0, le=2)] = 0.3

    @field_validator("person_height", "headroom", "max_zoom", "speed", mode="before")
    @classmethod
    def _float(cls, v: object) -> object:
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class LightConfig(_Section):
    """Low-light correction (effect.light: auto): the exposure the person is lifted to."""

    target: Annotated[int, Field(ge=40, le=220)] = 140
    max_gain: Annotated[float, Field(ge=1, le=8)] = 5.0
    settle_s: Annotated[float, Field(gt=0, le=30)] = 1.0

    @field_validator("max_gain", "settle_s", mode="before")
    @classmethod
    def _float(cls, v: object) -> object:
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class OutputConfig(_Section):
    """Where processed frames go and in what format."""

    target: str = "virtualcam"
    device: str | None = None
    backend: str | None = None
    size: tuple[int, int] | None = None
    fps: Annotated[float, Field(gt=0, le=240)] | None = None

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, v: object) -> tuple[int, int] | None:
        if v is None:
            return None
        w, h = _check_size(v, 16, 8192)
        if w % 2 or h % 2:
            # v4l2loopback issue #472: browsers and call apps refuse or garble odd sizes
            raise ValueError(
                f"must have an even width and height, got {w}x{h} (video apps refuse odd sizes); "
                f"use {w - w % 2}x{h - h % 2}"
            )
        return w, h

    @field_validator("fps", mode="before")
    @classmethod
    def _fps(cls, v: object) -> object:
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must be virtualcam, preview, null or a file path")
        return v


class LiveConfig(_Section):
    """How the live pipeline trades latency against mask freshness."""

    alpha: Literal["wait", "latest"] = "wait"
    # CPU the whole live pipeline may use, in cores at the output frame rate: model.runtime
    # auto picks the largest model input that keeps within it (docs/performance.md).
    cpu_budget: Annotated[float, Field(gt=0, le=256)] = 0.6

    @field_validator("cpu_budget", mode="before")
    @classmethod
    def _budget(cls, v: object) -> object:
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class TrayConfig(_Section):
    """The tray icon of the live daemon."""

    enabled: bool = True


class Config(_Section):
    """The whole vcam configuration (see ``configs/default.yaml`` for every key)."""

    camera: CameraConfig = CameraConfig()
    model: ModelConfig = ModelConfig()
    effect: EffectConfig = EffectConfig()
    output: OutputConfig = OutputConfig()
    live: LiveConfig = LiveConfig()
    tray: TrayConfig = TrayConfig()
    framing: FramingConfig = FramingConfig()
    light: LightConfig = LightConfig()

    @model_validator(mode="after")
    def _replace_needs_background(self) -> Config:
        if self.effect.mode == "replace" and not self.effect.background:
            raise ValueError(
                "effect.background: mode 'replace' needs a background image or video path"
            )
        return self

    @property
    def output_size(self) -> tuple[int, int]:
        """Output (width, height): ``output.size`` or else the camera size."""
        return self.output.size or self.camera.size

    @property
    def output_fps(self) -> float:
        """Output frame rate: ``output.fps`` or else the camera rate."""
        return self.output.fps or self.camera.fps


def _format_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """Each problem as (key path, ``"key.path: what is wrong"``); the path is "" for a
    whole-config rule, whose message names its own key."""
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not isinstance(p, int))
        kind = err["type"]
        value = err.get("input")
        if kind == "extra_forbidden":
            parent = loc.rpartition(".")[0]
            known = _known_keys(parent)
            problems.append((loc, f"{loc}: unknown key (known keys here: {', '.join(known)})"))
            continue
        msg = str(err["msg"])
        msg = re.sub(r"^(Value|Assertion) error, ", "", msg)
        msg = re.sub(r"^Input should be", "must be", msg)
        msg = msg[:1].lower() + msg[1:]
        if not loc:  # a whole-config rule: its message names its own key
            problems.append((loc, msg))
            continue
        if "got" not in msg:
            msg = f"{msg}, got {value!r}"
        problems.append((loc, f"{loc}: {msg}"))
    return problems


def _key_paths(tree: Mapping[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out |= _key_paths(v, f"{prefix}{k}.")
        else:
            out.add(f"{prefix}{k}")
    return out


def _config_error(
    exc: ValidationError, source: str, overrides: Mapping[str, Any] | None, flags: Mapping[str, str] | None
) -> ConfigError:
    """The :class:`ConfigError` for ``exc``: a problem at a key the command line set is
    blamed on its flag (``--size: ...``), never on the file, whose value it replaced."""
    given = _key_paths(overrides or {})
    flags = flags or {}
    texts: list[str] = []
    named: list[tuple[str, str]] = []  # (flag, what is wrong) for problems of named flags
    blamed = 0
    for loc, text in _format_errors(exc):
        if loc not in given:
            texts.append(text)
            continue
        blamed += 1
        what = text[len(loc) + 2 :]
        if loc in flags:
            named.append((flags[loc], what))
            texts.append(f"{flags[loc]}: {what}")
        else:
            texts.append(text)  # "command line: camera.size: ..."
    if not blamed:
        return ConfigError(source, texts)
    if blamed < len(texts):
        return ConfigError(f"{source} and the command line", texts)
    if len(named) == 1 == len(texts):
        return ConfigError(named[0][0], [named[0][1]])  # "--size: ..."
    return ConfigError("command line", texts)


def _known_keys(section: str) -> list[str]:
    model: type[BaseModel] = Config
    for part in [p for p in section.split(".") if p]:
        field = model.model_fields.get(part)
        ann = field.annotation if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def validate_config(
    data: object,
    source: str = "config",
    overrides: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
) -> Config:
    """Validate a mapping (as read from YAML) plus optional overrides into a :class:`Config`.

    ``overrides`` is a nested mapping (``{"effect": {"mode": "off"}}``) applied on top, as
    CLI flags are; ``defaults`` (same form) lies underneath, as a command's own defaults do
    (``vcam process`` uses ``{"model": {"preset": "offline"}}``). Raises
    :class:`ConfigError` listing every problem with its key path; a problem with an
    override is blamed on the command line, under its flag's name from ``flags``
    (``{"camera.size": "--size"}``), not on ``source``.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            source, [f"the top level must be a mapping of sections, got {type(data).__name__}"]
        )
    merged = _deep_merge(_deep_merge(dict(defaults or {}), data), overrides or {})
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, source, overrides, flags) from None


class _NoAliasLoader(yaml.SafeLoader):
    """Safe loader that refuses anchors/aliases, so a "billion laughs" file cannot blow up."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(
                f"aliases (*name) are not allowed in a vcam config, line {event.start_mark.line + 1}"
            )
        return super().compose_node(parent, index)


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def non_regular_kind(mode: int) -> str | None:
    """What a file that is not a regular file is (``"a named pipe"``), from its ``st_mode``;
    None for a regular file. Such files are refused before they are opened: a FIFO blocks
    ``open`` until a writer comes, a device such as ``/dev/zero`` reads for ever."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _FILE_KINDS if test(mode)), "not a file")


def _read_capped(path: Path, source: str) -> bytes:
    """The bytes of the regular file ``path``, at most :data:`MAX_CONFIG_BYTES`.

    The path is checked before it is opened (a FIFO would block ``open`` until a writer
    comes; a device reads forever), opened with ``O_NONBLOCK`` in case something else was
    put there in between, and checked again on the open file. At most the cap plus one
    chunk is read whatever ``st_size`` says (procfs and some FUSE file systems report 0).
    """
    kind = non_regular_kind(os.stat(path).st_mode)
    if kind == "a directory":
        raise IsADirectoryError(path)
    if kind is not None:
        raise ConfigError(source, [f"is not a regular file ({kind}), expected a YAML file"])
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb", buffering=0) as f:
        st = os.fstat(fd)
        kind = non_regular_kind(st.st_mode)
        if kind is not None:
            raise ConfigError(source, [f"is not a regular file ({kind}), expected a YAML file"])
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(source, [f"file is {st.st_size} bytes; a config is at most 1 MB"])
        chunks: list[bytes] = []
        total = 0
        while total <= MAX_CONFIG_BYTES:
            chunk = f.read(_READ_CHUNK)  # a multiple of 8: /proc files such as pagemap need it
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    if total > MAX_CONFIG_BYTES:
        raise ConfigError(source, [f"file is larger than {MAX_CONFIG_BYTES} bytes; a config is at most 1 MB"])
    return b"".join(chunks)


def read_yaml(path: Path) -> object:
    """Read a YAML file with the safe, alias-free loader. Raises :class:`ConfigError`.

    Only a regular file of at most 1 MB is read: a directory, FIFO, device or socket is
    refused before it is opened, so nothing can block or read forever.
    """
    source = str(path)
    try:
        text = _read_capped(path, source).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(source, ["file not found"]) from None
    except IsADirectoryError:
        raise ConfigError(source, ["is a directory, expected a YAML file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [f"cannot read: {exc}"]) from None
    empty = ConfigError(
        source, ["file has no settings (empty or only comments); write the settings to change, or delete the file"]
    )
    if not text.strip():
        raise empty
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - safe loader subclass
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"not valid YAML{where}: {problem}"]) from None
    if data is None:
        raise empty
    return data


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/vcam/config.yaml`` (``~/.config/vcam/config.yaml`` by default)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", "~"), ".config")
    return Path(os.path.expanduser(base)) / "vcam" / "config.yaml"


def load_config(
    path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
) -> tuple[Config, Path | None]:
    """Load the config from ``path``, or the user's default file if it exists, or defaults.

    Returns the config and the file it came from (None when only defaults were used).
    An explicitly given path must exist; the default path is optional. ``overrides`` and
    ``defaults`` and ``flags`` are as in :func:`validate_config`.
    """
    if path is None:
        candidate = default_config_path(env)
        path = candidate if candidate.exists() else None
    data = read_yaml(path) if path is not None else {}
    return validate_config(data, str(path) if path else "config", overrides, defaults, flags), path
