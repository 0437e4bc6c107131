"""The one exception tree of vcam.

Every failure a user can cause or meet (bad config, missing camera, corrupt model, unwritable
output) is raised as a subclass of :class:`VcamError` whose message is one complete line
saying what went wrong and what to do. The CLI prints that line and exits 1; anything else
is a bug.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ControlError",
    "DeviceError",
    "InputError",
    "ModelError",
    "OutputError",
    "VcamError",
]


class VcamError(Exception):
    """Base of every user-facing error. ``str(err)`` is the message shown to the user."""


class ConfigError(VcamError):
    """The configuration is invalid. ``problems`` holds one line per error, each with its key path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        if len(self.problems) == 1:
            text = f"{source}: {self.problems[0]}"
        else:
            text = f"{source}: {len(self.problems)} errors:\n" + "\n".join(
                f"  {p}" for p in self.problems
            )
        super().__init__(text)


class ControlError(VcamError):
    """A control request (tray, ``vcam ctl``) is malformed or cannot be carried out now."""


class ModelError(VcamError):
    """The model file is missing, unreadable, corrupt, or cannot be fetched."""


class DeviceError(VcamError):
    """A camera or virtual-camera device cannot be opened or used."""


class InputError(VcamError):
    """An input file (video, background image or video) cannot be read."""


class OutputError(VcamError):
    """An output path cannot be written."""
