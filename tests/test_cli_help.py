"""What each verb's --help offers: a flag is listed only where it applies."""

from __future__ import annotations

import pytest

from vcam.cli import main


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_alpha_is_a_live_flag_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--alpha {wait,latest}" in _help(capsys, "run")
    assert "--alpha" not in _help(capsys, "process")
    with pytest.raises(SystemExit) as done:
        main(["process", "a.mp4", "-o", "b.mp4", "--alpha", "latest"])
    assert done.value.code == 2
    assert "unrecognized arguments: --alpha latest" in capsys.readouterr().err
