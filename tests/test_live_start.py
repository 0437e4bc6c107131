"""How ``vcam run`` starts: bad input fails before the model is loaded, and ``--mode off``
loads no model until the first switch to an effect."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.cli import last_line, run_cli
from tests.helpers.fakes import FakeEngine
from vcam import build
from vcam.matting.lazy import LazyMatter

pytestmark = pytest.mark.usefixtures("isolated_home")


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every model load of the live run (a fake engine stands in)."""
    calls: list[str] = []

    def fake(cfg: object, progress: object = None) -> FakeEngine:
        calls.append("load")
        return FakeEngine()

    monkeypatch.setattr(build, "build_live_engine", fake)
    return calls


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "/nonexistent.mp4", "--output", "null"],
         "vcam: error: source /nonexistent.mp4: no such camera or video file; give a camera index (0), a device "
         "path (/dev/video0), a video file or 'testpattern'"),
        (["--source", "testpattern", "--mode", "replace", "-b", "/nope.png", "--output", "null"],
         "vcam: error: background image /nope.png: file not found"),
        (["--source", "testpattern", "--output", "/nonexistent-dir/rec.mp4"],
         "vcam: error: output /nonexistent-dir/rec.mp4: folder /nonexistent-dir does not exist"),
    ],
)
def test_bad_input_fails_before_the_model_loads(capsys: pytest.CaptureFixture[str], loads: list[str],
                                                args: list[str], message: str) -> None:
    code, _, err = run_cli(capsys, "run", "--no-tray", *args)
    assert code == 1
    assert last_line(err) == message
    assert loads == []


def test_mode_off_runs_without_loading_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str], loads: list[str]) -> None:
    stats = tmp_path / "s.json"
    code, _, err = run_cli(capsys, "run", "--no-tray", "--source", "testpattern", "--size", "160x90", "--fps", "10",
                           "--output", "null", "--mode", "off", "--duration", "0.5", "--stats-json", str(stats))
    assert code == 0, err
    assert loads == []
    s = json.loads(stats.read_text())
    assert s["provider"] == "none (model not loaded)" and s["frames_out"] > 0


def test_mode_blur_loads_the_model_at_start(tmp_path: Path, capsys: pytest.CaptureFixture[str], loads: list[str]) -> None:
    code, _, err = run_cli(capsys, "run", "--no-tray", "--source", "testpattern", "--size", "160x90", "--fps", "10",
                           "--output", "null", "--mode", "blur", "--duration", "0.3")
    assert code == 0, err
    assert loads == ["load"]


def test_lazy_matter_loads_on_the_first_frame_that_needs_alpha_and_once() -> None:
    made: list[FakeEngine] = []

    def load() -> FakeEngine:
        made.append(FakeEngine((32, 18)))
        return made[-1]

    lazy = LazyMatter(load, input_size=(64, 36), downsample_ratio=0.5, threads=2)
    lazy.reset()  # nothing to reset yet, and no load
    assert (lazy.provider, lazy.input_size, lazy.downsample_ratio, lazy.threads) == ("none (model not loaded)", (64, 36), 0.5, 2)
    assert made == []
    frame = np.zeros((18, 32, 3), np.uint8)
    lazy.infer(frame)
    lazy.infer(frame)
    assert len(made) == 1 and made[0].calls == 2
    assert (lazy.provider, lazy.input_size, lazy.downsample_ratio, lazy.threads) == ("fake", (32, 18), 0.25, 1)


def test_process_mode_off_loads_no_model(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers.media import color_frames, count_frames, write_video
    from vcam.files import process as process_module

    calls: list[str] = []

    def fake(cfg: object, progress: object = None) -> FakeEngine:
        calls.append("load")
        return FakeEngine()

    monkeypatch.setattr(build, "build_engine", fake)
    monkeypatch.setattr(process_module, "build_engine", fake)
    clip = write_video(tmp_path / "in.mp4", color_frames(6))
    out = tmp_path / "out.mp4"
    code, _, err = run_cli(capsys, "process", str(clip), "-o", str(out), "--mode", "off")
    assert code == 0, err
    assert calls == []
    assert count_frames(out)[0] == 6
    code, _, err = run_cli(capsys, "process", str(clip), "-o", str(tmp_path / "blur.mp4"), "--mode", "blur")
    assert code == 0, err
    assert calls == ["load"]
