import os
from pathlib import Path

import pytest
import yaml

from vcam.config import Config, default_config_path, load_config, read_yaml, validate_config
from vcam.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_YAML = REPO / "configs" / "default.yaml"


def _keys(model: type, prefix: str = "") -> set[str]:
    from pydantic import BaseModel

    out = set()
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out |= _keys(ann, f"{prefix}{name}.")
        else:
            out.add(prefix + name)
    return out


def _yaml_keys(data: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in data.items():
        if isinstance(v, dict):
            out |= _yaml_keys(v, f"{prefix}{k}.")
        else:
            out.add(prefix + k)
    return out


# Keys a preset sets: documented commented out, since writing them would override the preset.
PRESET_KEYS = {"model.preset", "model.input_size", "model.input_sizes", "model.downsample_ratio", "model.refine", "model.still_threshold"}


def test_default_yaml_documents_every_key_with_the_default_value() -> None:
    text = DEFAULT_YAML.read_text()
    data = yaml.safe_load(text)
    assert _yaml_keys(data) == _keys(Config) - PRESET_KEYS
    assert validate_config(data, str(DEFAULT_YAML)) == Config()
    commented = yaml.safe_load("\n".join(
        line.replace("# ", "", 1) for line in text.splitlines()
        if line.startswith("  # ") and line[4:].split(":")[0] in {k.split(".")[1] for k in PRESET_KEYS}
    ))
    assert {f"model.{k}" for k in commented} == PRESET_KEYS
    assert validate_config({"model": commented}) == Config()


def test_default_yaml_has_a_comment_for_every_key() -> None:
    """Each key (or a run of adjacent keys) sits under a comment explaining it."""
    lines = DEFAULT_YAML.read_text().splitlines()

    def is_key(line: str) -> bool:
        return line.startswith("  ") and not line.strip().startswith("#") and ":" in line

    for i, line in enumerate(lines):
        if is_key(line):
            j = i - 1
            while is_key(lines[j]):
                j -= 1
            assert lines[j].strip().startswith("#"), f"key without a comment: {line.strip()}"


def test_defaults() -> None:
    cfg = Config()
    assert cfg.camera.size == (1280, 720) and cfg.camera.fps == 30.0 and cfg.camera.fourcc == "MJPG"
    assert (cfg.model.preset, cfg.model.input_size, cfg.model.downsample_ratio, cfg.model.refine) == ("realtime", (384, 216), 0.5, "band")
    assert (cfg.model.still_threshold, cfg.model.warmup) == (4.0, 8)
    assert cfg.model.providers == ("tensorrt", "cuda", "cpu")
    assert cfg.effect.mode == "blur"
    assert cfg.output_size == (1280, 720) and cfg.output_fps == 30.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"camera": {"fps": 0}}, "camera.fps: must be greater than 0, got 0.0"),
        ({"camera": {"fsp": 30}}, "camera.fsp: unknown key (known keys here: device, size, fps, fourcc, on_demand)"),
        ({"camera": {"size": "1280by720"}}, "camera.size: expected WIDTHxHEIGHT such as 1280x720, got '1280by720'"),
        ({"camera": {"size": [8, 8]}}, "camera.size: width and height must be in 16..8192, got 8x8"),
        ({"camera": {"device": -1}}, "camera.device: a camera index must be 0 or more, got -1"),
        ({"camera": {"fourcc": "MJPEG"}}, "camera.fourcc: must be a 4-character code such as MJPG or YUYV, or null, got 'MJPEG'"),
        ({"model": {"downsample_ratio": 2}}, "model.downsample_ratio: must be less than or equal to 1, got 2.0"),
        ({"model": {"providers": ["gpu"]}}, "model.providers: must be 'tensorrt', 'cuda' or 'cpu', got 'gpu'"),
        ({"model": {"providers": []}}, "model.providers: list at least one provider: tensorrt, cuda, cpu, got []"),
        ({"model": {"threads": "4"}}, "model.threads: must be a valid integer, got '4'"),
        ({"effect": {"mode": "green"}}, "effect.mode: must be 'blur', 'replace', 'color' or 'off', got 'green'"),
        ({"effect": {"blur_strength": 0}}, "effect.blur_strength: must be greater than or equal to 1, got 0"),
        ({"effect": {"color": "red"}}, "effect.color: expected a colour like '#00b140' or [0, 177, 64], got 'red'"),
        ({"effect": {"mirror": "yes"}}, "effect.mirror: must be a valid boolean, got 'yes'"),
        ({"effect": {"mode": "replace"}}, "effect.background: mode 'replace' needs a background image or video path"),
        ({"output": {"fps": -5}}, "output.fps: must be greater than 0, got -5.0"),
        ({"camera": []}, "camera: must be a valid dictionary or instance of CameraConfig, got []"),
        ({"extra": 1}, "extra: unknown key (known keys here: camera, model, effect, output, live, tray, framing, light)"),
    ],
)
def test_bad_values_name_the_key_path(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(data, "my.yaml")
    assert info.value.problems == [message]
    assert str(info.value) == f"my.yaml: {message}"


def test_every_error_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config({"camera": {"fps": 0, "size": "x"}, "effect": {"mode": "nope"}}, "c.yaml")
    assert len(info.value.problems) == 3
    assert str(info.value).startswith("c.yaml: 3 errors:\n  camera.size: ")


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^c.yaml: the top level must be a mapping of sections, got list$"):
        validate_config([1, 2], "c.yaml")


def test_values_accept_their_documented_forms() -> None:
    cfg = validate_config(
        {"camera": {"size": "640x480", "device": "/dev/video2", "fourcc": None}, "effect": {"color": [1, 2, 3]}}
    )
    assert cfg.camera.size == (640, 480)
    assert cfg.camera.device == "/dev/video2"
    assert cfg.camera.fourcc is None
    assert cfg.effect.color == (1, 2, 3)
    assert validate_config({"effect": {"color": "#0A0b0C"}}).effect.color == (10, 11, 12)


def test_overrides_apply_over_the_file_and_are_validated(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("effect:\n  mode: color\n  color: '#ffffff'\ncamera:\n  fps: 15\n")
    cfg, src = load_config(f, {"effect": {"mode": "off"}})
    assert src == f
    assert cfg.effect.mode == "off" and cfg.effect.color == (255, 255, 255) and cfg.camera.fps == 15.0
    with pytest.raises(ConfigError, match=r"model.downsample_ratio: must be greater than 0, got 0.0"):
        load_config(f, {"model": {"downsample_ratio": 0}})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file has no settings (empty or only comments); write the settings to change, or delete the file"),
        ("   \n# only a comment\n", "file has no settings (empty or only comments); write the settings to change, or delete the file"),
        ("camera: [1, 2\n", "not valid YAML at line 2, column 1: expected ',' or ']', but got '<stream end>'"),
        ("a: &x [1]\nb: *x\n", "not valid YAML: aliases (*name) are not allowed in a vcam config, line 2"),
        ("!!python/object/apply:os.system ['true']\n", None),
    ],
)
def test_unreadable_yaml(tmp_path: Path, text: str, message: str | None) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        validate_config(read_yaml(f), str(f))
    assert info.value.source == str(f)
    if message is not None:
        assert info.value.problems == [message]


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1}]" for i in range(1, 9)]
    f = tmp_path / "bomb.yaml"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="aliases"):
        read_yaml(f)


def test_missing_and_directory_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.yaml: file not found$"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"is a directory, expected a YAML file$"):
        read_yaml(tmp_path)


def test_default_path_follows_xdg_and_is_optional(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "HOME": str(tmp_path)}
    assert default_config_path(env) == tmp_path / "cfg" / "vcam" / "config.yaml"
    assert default_config_path({"HOME": str(tmp_path)}) == tmp_path / ".config" / "vcam" / "config.yaml"
    cfg, src = load_config(None, env=env)
    assert src is None and cfg == Config()
    p = default_config_path(env)
    p.parent.mkdir(parents=True)
    p.write_text("effect: {mode: off}\n")  # a bare YAML `off` is false; it means mode off
    cfg, src = load_config(None, env=env)
    assert src == p and cfg.effect.mode == "off"


# -- inputs that hang or mislead (issue 17) ------------------------------------------------


def _read_in_thread(path: Path, unblock: Path | None = None) -> BaseException | object:
    """``read_yaml(path)`` in a thread, joined with a generous bound; a read that hangs (a
    FIFO with no writer blocks in open) is released by opening ``unblock`` for writing."""
    import threading

    out: list[BaseException | object] = []

    def read() -> None:
        try:
            out.append(read_yaml(path))
        except BaseException as exc:
            out.append(exc)

    t = threading.Thread(target=read, name="read-yaml-test", daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():
        if unblock is not None:  # give the blocked open() a writer and an EOF, so the thread ends
            fd = os.open(unblock, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        t.join(10)
        raise AssertionError(f"read_yaml({path}) was still reading after 10 s")
    return out[0]


def test_dev_zero_is_refused_without_reading_it() -> None:
    result = _read_in_thread(Path("/dev/zero"))
    assert isinstance(result, ConfigError)
    assert str(result) == "/dev/zero: is not a regular file (a character device), expected a YAML file"


def test_a_fifo_is_refused_at_once_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    result = _read_in_thread(fifo, unblock=fifo)
    assert isinstance(result, ConfigError)
    assert str(result) == f"{fifo}: is not a regular file (a named pipe), expected a YAML file"
    with pytest.raises(ConfigError, match=r"is not a regular file \(a named pipe\), expected a YAML file$"):
        load_config(fifo)


def test_the_size_cap_holds_when_the_file_system_reports_no_size() -> None:
    # /proc/self/pagemap is a regular file whose st_size is 0 but which reads as gigabytes
    # (8 bytes per page of address space): only the cap, not st_size, can stop the read.
    path = Path("/proc/self/pagemap")
    assert path.stat().st_size == 0
    result = _read_in_thread(path)
    assert isinstance(result, ConfigError)
    assert str(result) == "/proc/self/pagemap: file is larger than 1000000 bytes; a config is at most 1 MB"


def test_an_oversize_regular_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    f.write_bytes(b"#" * 1_000_001)
    with pytest.raises(ConfigError) as info:
        read_yaml(f)
    assert info.value.problems == ["file is 1000001 bytes; a config is at most 1 MB"]
    f.write_bytes(b"effect: {mode: color}\n" + b"#" * (1_000_000 - 23) + b"\n")
    assert f.stat().st_size == 1_000_000
    assert validate_config(read_yaml(f)).effect.mode == "color"
