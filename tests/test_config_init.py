"""The starter config: the commented default ships inside the package; ``vcam config init``
writes it to the user's config path (never over a file without --force, never half), and
``vcam config path`` says where config is read from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO
from tests.helpers.cli import run_cli
from vcam.config import Config, validate_config
from vcam.setup.configfile import STARTER

pytestmark = pytest.mark.usefixtures("isolated_home")


def test_the_packaged_default_is_configs_default_yaml() -> None:
    source = REPO / "configs" / "default.yaml"
    assert STARTER.read_bytes() == source.read_bytes(), (
        "vcam/setup/default.yaml differs from configs/default.yaml: cp configs/default.yaml vcam/setup/default.yaml"
    )
    # package data, so that a wheel (pip, pipx) has it (tomllib is Python 3.11+: read the line)
    lines = (REPO / "pyproject.toml").read_text().splitlines()
    section = lines.index("[tool.setuptools.package-data]")
    assert lines[section + 1] == 'vcam = ["py.typed", "setup/default.yaml"]'
    assert validate_config(yaml.safe_load(STARTER.read_text()), "default") == Config()


def test_init_writes_the_commented_default_and_check_config_says_ok(
    isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = isolated_home / ".config" / "vcam" / "config.yaml"
    code, out, err = run_cli(capsys, "config", "init")
    assert (code, out, err) == (
        0,
        f"wrote {target} (every key with its default and a comment; check it with: vcam check-config)\n",
        "",
    )
    assert target.read_bytes() == STARTER.read_bytes()
    assert os.listdir(target.parent) == ["config.yaml"]  # no temporary file left
    assert run_cli(capsys, "check-config") == (0, "ok\n", "")
    assert run_cli(capsys, "check-config", str(target)) == (0, "ok\n", "")


def test_init_never_replaces_a_config_without_force(
    isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = isolated_home / ".config" / "vcam" / "config.yaml"
    target.parent.mkdir(parents=True)
    target.write_text("effect:\n  mode: color\n")
    code, out, err = run_cli(capsys, "config", "init")
    assert (code, out) == (1, "")
    assert err == (
        f"vcam: error: config {target} already exists; pass --force to replace it with the default "
        "(check it: vcam check-config)\n"
    )
    assert target.read_text() == "effect:\n  mode: color\n"
    assert run_cli(capsys, "config", "init", "--force")[0] == 0
    assert target.read_bytes() == STARTER.read_bytes()
    assert os.listdir(target.parent) == ["config.yaml"]


def test_init_keeps_a_dangling_symlink(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = isolated_home / ".config" / "vcam" / "config.yaml"
    target.parent.mkdir(parents=True)
    target.symlink_to(isolated_home / "elsewhere.yaml")
    assert run_cli(capsys, "config", "init")[0] == 1
    assert target.is_symlink() and not (isolated_home / "elsewhere.yaml").exists()


def test_path_prints_where_config_is_read_from(
    isolated_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = isolated_home / ".config" / "vcam" / "config.yaml"
    code, out, err = run_cli(capsys, "config", "path")
    assert (code, out) == (0, f"{target}\n")
    assert (
        err
        == f"vcam: {target} does not exist: vcam uses the defaults (vcam config init writes a commented one)\n"
    )
    run_cli(capsys, "config", "init")
    assert run_cli(capsys, "config", "path") == (0, f"{target}\n", "")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(isolated_home / "xdg"))
    assert run_cli(capsys, "config", "path")[1] == f"{isolated_home / 'xdg' / 'vcam' / 'config.yaml'}\n"
    assert run_cli(capsys, "config", "path", "--default") == (0, f"{STARTER}\n", "")


def test_run_help_points_at_the_installed_default(capsys: pytest.CaptureFixture[str]) -> None:
    from vcam.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the epilog
    assert f"Every key, with its default and a comment: {STARTER} (vcam config init copies it" in text
    assert STARTER.is_file()
