"""The systemd user unit: the shipped file, `vcam install-service`, and systemd's own check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from vcam.cli import main
from vcam.errors import OutputError
from vcam.service import PIPX_COMMAND, install_service, render_unit, service_command, unit_path


def test_shipped_unit_is_the_rendered_one() -> None:
    text = (REPO / "scripts" / "vcam.service").read_text()
    assert text == render_unit(PIPX_COMMAND)
    assert "Restart=on-failure\n" in text
    assert "ExecStart=%h/.local/bin/vcam run\n" in text
    assert "WantedBy=graphical-session.target\n" in text


def test_command_runs_this_python_and_escapes_systemd_specifiers() -> None:
    assert service_command(None, "/opt/venv/bin/python") == "/opt/venv/bin/python -m vcam run"
    assert service_command(Path("/home/a b/50%/$cfg.yaml"), "/usr/bin/python3") == (
        "/usr/bin/python3 -m vcam run --config '/home/a b/50%%/$$cfg.yaml'"
    )


def test_install_writes_the_user_unit_once(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    path = install_service("/usr/bin/python3 -m vcam run", env=env)
    assert path == tmp_path / "cfg" / "systemd" / "user" / "vcam.service" == unit_path(env)
    assert path.read_text() == render_unit("/usr/bin/python3 -m vcam run")
    with pytest.raises(OutputError) as exc:
        install_service("/bin/other", env=env)
    assert str(exc.value) == f"{path} already exists; pass --force to replace it"
    install_service("/bin/other", env=env, force=True)
    assert "ExecStart=/bin/other\n" in path.read_text()


def test_cli_install_service(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install-service"]) == 0
    path = isolated_home / ".config" / "systemd" / "user" / "vcam.service"
    assert path.read_text() == render_unit(f"{sys.executable} -m vcam run")
    assert capsys.readouterr().out == (
        f"wrote {path}\nstart it now and at every login with:\n"
        "  systemctl --user daemon-reload && systemctl --user enable --now vcam.service\n"
    )
    assert main(["install-service"]) == 1


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    unit = tmp_path / "vcam.service"
    unit.write_text(render_unit(service_command(None)))
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stderr) == (0, "")
