"""The one table of control commands: what the control channel speaks. ``vcam ctl ACTION``
offers these, the control socket accepts them and the tray's menu sends them.

Pure data: each :class:`Command` names the :class:`~vcam.live.control.Controller` method it
calls (applied by :func:`vcam.live.control.run_command`), so this module imports nothing and
``vcam process`` (whose CLI builds the ``vcam ctl`` parser from it) loads nothing of live mode.
A new command is one row here (and, if it needs one, a Controller method).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["COMMANDS", "SWITCH", "Command", "ValueKind"]

ValueKind = Literal["mode", "path", "bool", "switch"] | None
"""What a command takes: nothing, a mode name, an absolute file path, true/false or one of
:data:`SWITCH`."""
SWITCH = ("auto", "off")
"""The values of a ``switch`` command (an effect that runs by itself or not at all)."""


@dataclass(frozen=True)
class Command:
    """One control command: its ``name``, ``help`` line and the kind of ``value`` it takes;
    ``method``, the Controller method it calls (None: nothing to change, e.g. ``status``),
    with the request's value or, for a command that takes none, with ``argument`` if set."""

    name: str
    help: str
    value: ValueKind
    method: str | None
    argument: bool | None = None


COMMANDS: Mapping[str, Command] = {
    c.name: c
    for c in (
        Command("status", "print the daemon's state as JSON", None, None),
        Command("mode", "switch the background effect", "mode", "set_mode"),
        Command("background", "replace the background with an image or video file", "path", "set_background"),
        Command("mirror", "flip the picture horizontally or not", "bool", "set_mirror"),
        Command("framing", "auto-framing: keep the person centred and sized (auto) or not (off)", "switch", "set_framing"),
        Command("light", "low-light correction: brighten a dark person (auto) or not (off)", "switch", "set_light"),
        Command("pause", "release the camera and send a 'paused' picture", None, "set_paused", True),
        Command("resume", "undo pause", None, "set_paused", False),
        Command("reload", "read the config file again now", None, "reload"),
        Command("quit", "stop the daemon", None, "quit"),
    )
}
