"""The one exception tree of vcam.

Every failure a user can cause or meet (bad config, missing camera, corrupt model, unwritable
output) is raised as a subclass of :class:`VcamError` whose message is one complete line
saying what went wrong and what to do. The CLI prints that line and exits 1; anything else
is a bug. A stop signal is not an error: :class:`Interrupted` (a ``KeyboardInterrupt``) says
which one arrived, and the CLI exits 128 + its number.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ControlError",
    "DeviceError",
    "InputError",
    "Interrupted",
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


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C so that everything stops the
    same way (temporary files deleted, nothing half-written). ``signum`` is the signal's
    number; the command exits with 128 + ``signum`` (143 for SIGTERM, 129 for SIGHUP)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
