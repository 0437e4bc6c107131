"""The one table of control commands: what ``vcam ctl ACTION`` offers, what the control
socket accepts and how each is applied to the :class:`~vcam.live.control.Controller` (the
tray runs the same entries).

A new command is one :class:`Command` row here (and, if it needs one, a Controller method).
Importing this module loads nothing of the daemon: ``vcam ctl`` is a client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from vcam.live.control import Controller

__all__ = ["COMMANDS", "Command", "ValueKind", "run_command"]

ValueKind = Literal["mode", "path", "bool"] | None
"""What a command takes: nothing, a mode name, an absolute file path or true/false."""


@dataclass(frozen=True)
class Command:
    """One control command: its ``name``, ``help`` line, the kind of ``value`` it takes, and
    ``apply(controller, value)``."""

    name: str
    help: str
    value: ValueKind
    apply: Callable[[Controller, Any], object]


COMMANDS: Mapping[str, Command] = {
    c.name: c
    for c in (
        Command("status", "print the daemon's state as JSON", None, lambda c, v: None),
        Command("mode", "switch the background effect", "mode", lambda c, v: c.set_mode(str(v))),
        Command("background", "replace the background with an image or video file", "path",
                lambda c, v: c.set_background(str(v))),
        Command("mirror", "flip the picture horizontally or not", "bool", lambda c, v: c.set_mirror(bool(v))),
        Command("pause", "release the camera and send a 'paused' picture", None, lambda c, v: c.set_paused(True)),
        Command("resume", "undo pause", None, lambda c, v: c.set_paused(False)),
        Command("reload", "read the config file again now", None, lambda c, v: c.reload()),
        Command("quit", "stop the daemon", None, lambda c, v: c.quit()),
    )
}


def run_command(controller: Controller, name: str, value: Any = None) -> None:
    """Apply the command ``name`` (a key of :data:`COMMANDS`) with ``value``."""
    COMMANDS[name].apply(controller, value)
