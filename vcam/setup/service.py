"""The systemd user service that starts vcam with the desktop session and restarts it on failure.

``scripts/vcam.service`` is :func:`render_unit` for a pipx install (``~/.local/bin/vcam``);
``vcam install-service`` writes the same unit with the command of the running installation.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from vcam.errors import OutputError
from vcam.media.paths import write_new_file
from vcam.signals import hold_stop_signals

__all__ = ["PIPX_COMMAND", "UNIT_NAME", "install_service", "render_unit", "service_command", "unit_path"]

UNIT_NAME = "vcam.service"
PIPX_COMMAND = "%h/.local/bin/vcam run"

_UNIT = """\
[Unit]
Description=vcam virtual webcam (background blur and replacement)
# Started with the graphical session so that the tray icon finds the desktop; vcam runs
# headless where there is no tray.
PartOf=graphical-session.target
After=graphical-session.target
# Give up after 5 failed starts in 2 minutes (e.g. no camera): see journalctl --user -u vcam
StartLimitIntervalSec=120
StartLimitBurst=5

[Service]
Type=simple
ExecStart={command}
# systemctl --user reload vcam: read the config file again
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5

[Install]
WantedBy=graphical-session.target
"""


def render_unit(command: str) -> str:
    """The unit file text for ``command``, an ``ExecStart=`` value (already systemd-escaped)."""
    return _UNIT.format(command=command)


def _escape(arg: str) -> str:
    # systemd expands %specifiers and $VARIABLES in ExecStart=; keep paths literal.
    return shlex.quote(arg.replace("%", "%%").replace("$", "$$"))


def service_command(config: Path | None = None, python: str | None = None) -> str:
    """``ExecStart=`` for this installation: its Python running ``-m vcam run`` (and ``--config``)."""
    argv = [python or sys.executable, "-m", "vcam", "run"]
    if config is not None:
        argv += ["--config", str(config)]
    return " ".join(_escape(a) for a in argv)


def unit_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/systemd/user/vcam.service``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", "~"), ".config")
    return Path(os.path.expanduser(base)) / "systemd" / "user" / UNIT_NAME


def install_service(
    command: str, *, force: bool = False, env: Mapping[str, str] | None = None, platform: str | None = None
) -> Path:
    """Write the user unit running ``command``; refuses to replace one unless ``force``.
    systemd is Linux only: elsewhere an :class:`~vcam.errors.OutputError` says so.

    The unit is written whole to a hidden temporary file beside it, then put in place with
    :func:`~vcam.media.paths.link_no_replace` (fails if the name is taken, even by a dangling
    symlink: no check-then-replace race) or, with ``force``, renamed over the old one. Signals are held for the few
    milliseconds this takes, so the folder holds the old unit or the complete new one and no
    temporary file, whenever a Ctrl-C, SIGTERM or SIGHUP arrives.
    """
    if not (platform or sys.platform).startswith("linux"):
        raise OutputError(
            "install-service is Linux only (a systemd user unit); on Windows put 'vcam run' in the Startup "
            "folder (shell:startup), on macOS add it to Login Items"
        )
    path = unit_path(env)
    exists = f"{path} already exists; pass --force to replace it"
    if not force and (path.is_symlink() or path.exists()):
        raise OutputError(exists)  # early and clear; link_no_replace below is what guarantees it
    with hold_stop_signals():  # a signal stops the command before or after the write, never inside it
        write_new_file(path, render_unit(command).encode("utf-8"), force=force, exists=exists)
    return path
