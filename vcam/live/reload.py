"""Config hot reload: notice edits of the config file and hand them to the controller.

The file is polled (``os.stat``: modification time, size, inode) every ``interval`` seconds,
which also sees editors that save by writing a new file and renaming it. A change is acted
on once the file has looked the same for one more poll, so a save caught half-written is
not reported as an error: an edit applies within about two intervals (0.5 s by default).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vcam.config import Config, read_yaml, validate_config
from vcam.live.sizes import follow_file_source

__all__ = ["ConfigWatcher", "config_loader"]

log = logging.getLogger(__name__)

Signature = tuple[int, int, int, int]


def config_loader(
    path: Path, *, required: bool, overrides: Mapping[str, Any] | None = None
) -> Callable[[], Config]:
    """A function that reads and validates ``path`` with the command-line ``overrides``.

    When the file is not ``required`` (the default user config) and does not exist, the
    defaults are used, as at start-up. Raises :class:`~vcam.errors.ConfigError`.
    """

    def load() -> Config:
        if not required and not path.exists():
            cfg = validate_config({}, "config", overrides)
        else:
            cfg = validate_config(read_yaml(path), str(path), overrides)
        return follow_file_source(cfg, announce=False)[0]  # as at start-up: a file keeps its own size

    return load


def _signature(path: Path) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns


class ConfigWatcher:
    """Calls ``on_change()`` after ``path`` changed (created, edited, replaced or deleted).

    ``check()`` is the thread-free twin of ``run(stop)``: it polls once and returns True when
    it called ``on_change``. The file as it is at construction counts as already applied.
    ``request()`` (e.g. from a SIGHUP handler) makes the next poll reload unconditionally.
    """

    def __init__(self, path: Path, on_change: Callable[[], object], *, interval: float = 0.25) -> None:
        self.path = path
        self._on_change = on_change
        self.interval = interval
        self._applied = _signature(path)
        self._seen = self._applied
        self._requested = threading.Event()

    def request(self) -> None:
        """Reload at the next poll even if the file looks unchanged (safe from signal handlers)."""
        self._requested.set()

    def check(self) -> bool:
        sig = _signature(self.path)
        if self._requested.is_set():
            self._requested.clear()
            self._applied = self._seen = sig
            log.info("reloading config file %s on request", self.path)
            self._on_change()
            return True
        if sig == self._applied:
            self._seen = sig
            return False
        if sig != self._seen:  # changed since the last poll: let it settle
            self._seen = sig
            return False
        self._applied = sig
        log.info("config file %s changed; reloading", self.path)
        self._on_change()
        return True

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set."""
        while not stop.wait(self.interval):
            self.check()
