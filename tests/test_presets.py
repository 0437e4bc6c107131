"""Quality presets: the config key, how explicit keys override a preset, the command defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO
from tests.helpers.media import portrait_frames, write_video
from vcam.cli import main
from vcam.config import ModelConfig, load_config, validate_config
from vcam.errors import ConfigError
from vcam.matting.choice import ladder_for
from vcam.presets import LIVE_LADDER, LIVE_PRESET, OFFLINE_PRESET, PRESETS, PresetName


def test_preset_names_match_the_schema() -> None:
    assert set(PresetName.__args__) == set(PRESETS)  # type: ignore[attr-defined]
    assert (LIVE_PRESET, OFFLINE_PRESET) == ("realtime", "offline")


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_sets_the_three_keys(name: str) -> None:
    m = validate_config({"model": {"preset": name}}).model
    p = PRESETS[name]
    assert (m.input_size, m.downsample_ratio, m.refine) == (p.input_size, p.downsample_ratio, p.refine)
    assert m.still_threshold == p.still
    assert m.preset_overrides() == []


def test_default_is_the_live_preset() -> None:
    m = ModelConfig()
    p = PRESETS["realtime"]
    assert (m.preset, m.input_size, m.downsample_ratio, m.refine) == ("realtime", p.input_size, p.downsample_ratio, p.refine)


def test_explicit_keys_override_the_preset_and_are_named() -> None:
    m = validate_config({"model": {"preset": "offline", "input_size": "256x144", "refine": "bilinear"}}).model
    off = PRESETS["offline"]
    assert m.input_size == (256, 144)
    assert m.downsample_ratio == off.downsample_ratio
    expected = [f"input_size 256x144 (preset offline: {off.input_size[0]}x{off.input_size[1]})"]
    if off.refine != "bilinear":
        expected.append(f"refine bilinear (preset offline: {off.refine})")
    assert m.preset_overrides() == expected


def test_bad_values_name_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        validate_config({"model": {"preset": "fast", "refine": "bicubic"}}, "my.yaml")
    assert err.value.problems == [
        "model.preset: must be 'realtime' or 'offline', got 'fast'",
        "model.refine: must be 'bilinear', 'guided' or 'band', got 'bicubic'",
    ]


def test_command_default_under_file_under_flags(tmp_path: Path) -> None:
    cmd = {"model": {"preset": "offline"}}  # what `vcam process` puts underneath
    assert validate_config({}, defaults=cmd).model.preset == "offline"
    assert validate_config({"model": {"preset": "realtime"}}, defaults=cmd).model.preset == "realtime"
    over = validate_config({"model": {"preset": "realtime"}}, overrides={"model": {"preset": "offline"}}, defaults=cmd)
    assert over.model.preset == "offline"
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  downsample_ratio: 0.4\n")
    cfg, _ = load_config(f, defaults=cmd)
    assert (cfg.model.preset, cfg.model.input_size, cfg.model.downsample_ratio) == (
        "offline", PRESETS["offline"].input_size, 0.4)


def test_default_yaml_model_section_matches_the_schema() -> None:
    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    assert validate_config({"model": data["model"]}).model == ModelConfig()


@pytest.mark.parametrize(
    ("argv", "preset"),
    [(["process"], "offline"), (["process", "--preset", "realtime"], "realtime"), (["run"], "realtime")],
)
def test_cli_commands_pick_their_preset(argv: list[str], preset: str, tmp_path: Path, isolated_home: Path) -> None:
    frames, _ = portrait_frames(3, (160, 96))
    src = write_video(tmp_path / "in.mp4", frames)
    stats = tmp_path / "stats.json"
    common = ["--stats-json", str(stats), "--providers", "cpu", "--mode", "color"]
    if argv[0] == "process":
        rc = main([*argv, str(src), "-o", str(tmp_path / "out.mp4"), *common])
    else:
        rc = main([*argv, "--source", str(src), "--output", "null", "--duration", "0.5", *common])
    assert rc == 0
    s = json.loads(stats.read_text())
    p = PRESETS[preset]
    assert (s["downsample_ratio"], s["refine"]) == (p.downsample_ratio, p.refine)
    if preset == LIVE_PRESET:
        # the live choice climbs the realtime ladder as far as this machine's measured CPU time
        # allows (vcam/matting/choice.py): any rung of it, never the offline size
        assert tuple(s["model_input"]) in ladder_for(LIVE_LADDER, (160, 96))
    else:
        assert tuple(s["model_input"]) == p.input_size


def test_cli_rejects_an_unknown_preset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["process", "in.mp4", "-o", "out.mp4", "--preset", "fast"])
    assert exc.value.code == 2
    assert "argument --preset: invalid choice: 'fast'" in capsys.readouterr().err
