"""The systemd user unit: the shipped file, `vcam install-service`, and systemd's own check."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

import pytest

from tests.helpers import REPO
from vcam.cli import main
from vcam.errors import OutputError
from vcam.setup.service import PIPX_COMMAND, install_service, render_unit, service_command, unit_path


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


def test_a_dangling_symlink_unit_is_not_replaced_without_force(tmp_path: Path) -> None:
    # exists() is False for a link to a missing file: only a no-replace link sees it is taken.
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    path = unit_path(env)
    path.parent.mkdir(parents=True)
    path.symlink_to(tmp_path / "dotfiles" / "vcam.service")
    with pytest.raises(OutputError) as exc:
        install_service("/bin/other", env=env)
    assert str(exc.value) == f"{path} already exists; pass --force to replace it"
    assert (path.is_symlink(), os.readlink(path)) == (True, str(tmp_path / "dotfiles" / "vcam.service"))
    assert sorted(p.name for p in path.parent.iterdir()) == ["vcam.service"]


@pytest.mark.parametrize("existing", [None, "old unit\n"], ids=["new", "existing+force"])
def test_a_signal_at_any_line_leaves_no_temp_file_and_no_half_written_unit(tmp_path: Path, existing: str | None) -> None:
    """A real SIGINT raised at every line of install_service in turn (Python runs the handler
    between bytecodes, so this is where a Ctrl-C can land): afterwards the folder holds the old
    unit or the complete new one, and nothing else."""
    import vcam.setup.service

    new = render_unit("/bin/new")
    points = 0
    n = 0
    while True:
        n += 1
        env = {"XDG_CONFIG_HOME": str(tmp_path / f"cfg{n}")}
        path = unit_path(env)
        if existing is not None:
            path.parent.mkdir(parents=True)
            path.write_text(existing)
        seen = 0

        def tracer(frame: FrameType, event: str, arg: object, n: int = n) -> object:
            nonlocal seen
            if event == "line" and frame.f_code.co_filename == vcam.setup.service.__file__:
                seen += 1
                if seen == n:
                    signal.raise_signal(signal.SIGINT)
            return tracer

        interrupted = False
        sys.settrace(lambda f, e, a: tracer if f.f_code.co_filename == vcam.setup.service.__file__ else None)
        try:
            install_service("/bin/new", env=env, force=existing is not None)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            sys.settrace(None)
        names = sorted(p.name for p in path.parent.iterdir()) if path.parent.exists() else []
        assert names in ([], ["vcam.service"]), f"signal at line {n}: {names}"
        if names:
            assert path.read_text() in ({new} if existing is None else {new, existing}), f"signal at line {n}"
        if not interrupted:  # the signal came after the last line: every point was tried
            assert path.read_text() == new
            break
        points += 1
    assert points >= 10
