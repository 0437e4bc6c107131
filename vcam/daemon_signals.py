"""The signals of ``vcam run``, handled from its first moment to its last.

``vcam run`` is a service (``systemctl --user reload`` sends SIGHUP, ``stop`` SIGTERM), so its
handlers are installed before anything slow (the model load) and stay until everything is
closed:

- SIGTERM at any time sets the ``stop`` event: a clean stop, exit 0 (during start-up vcam
  finishes opening and stops at once; a first-use model download is not cut short).
- SIGHUP while running reloads the config; during start-up it is remembered and the reload
  happens as soon as the daemon runs (the config may have been edited after it was read);
  during shutdown it is ignored.
- SIGINT during start-up raises ``KeyboardInterrupt`` as usual (exit 130). Once the daemon
  runs, the first SIGINT sets ``stop`` and any further one is only counted: nothing may cut
  the closing short (finishing a recording, removing the control socket). When everything is
  closed, ``KeyboardInterrupt`` is raised (exit 130).

This module imports nothing heavy, so the handlers go in within the first half second.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

__all__ = ["DaemonSignals"]

_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def _soon(call: Callable[[], object]) -> None:
    """Run ``call`` off the signal handler: the handler runs on the main thread between two
    bytecodes, maybe inside the very lock (an Event's, a logger's) that ``call`` takes."""
    threading.Thread(target=call, name="vcam-signal", daemon=True).start()


class DaemonSignals:
    """SIGINT, SIGTERM and SIGHUP for one ``vcam run``; a context manager (main thread only:
    elsewhere it installs nothing and every method still works).

    ``serving(on_hup)`` marks the time the daemon runs: SIGHUP calls ``on_hup()`` (at once if
    one came during start-up) and SIGINT stops instead of raising, from then until the
    context exits. ``interrupted`` says whether a SIGINT asked for the stop. ``final``: the
    process ends when the context exits (the ``vcam`` command), so the three signals are then
    ignored instead of restored: a Ctrl-C pressed again while vcam prints its last line and
    exits must not turn exit 130 into a traceback.
    """

    def __init__(self, stop: threading.Event, *, final: bool = False) -> None:
        self.stop = stop
        self._final = final
        self._on_hup: Callable[[], object] | None = None
        self._hup_pending = False
        self._defer_int = False
        self._interrupted = False
        self._installed = False
        self._previous: dict[int, Any] = {}

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def __enter__(self) -> DaemonSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        handlers = {"SIGINT": self._on_int, "SIGTERM": self._on_term, "SIGHUP": self._on_hup_signal}
        try:
            for name in _SIGNALS:
                sig = getattr(signal, name, None)
                if sig is not None:
                    self._previous[sig] = signal.signal(sig, handlers[name])
        except ValueError:  # not the main interpreter
            self._restore()
            return self
        self._installed = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._restore()
        if exc_type is None and self._interrupted:
            raise KeyboardInterrupt

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_IGN if self._final else handler)
        self._previous.clear()
        self._installed = False

    @contextmanager
    def serving(self, on_hup: Callable[[], object]) -> Iterator[None]:
        """The daemon runs: SIGHUP reloads, SIGINT stops (and is deferred from now on)."""
        self._defer_int = True
        self._on_hup = on_hup
        if self._hup_pending:
            self._hup_pending = False
            on_hup()
        try:
            yield
        finally:
            self._on_hup = None

    def _on_int(self, signum: int, frame: FrameType | None) -> None:
        if not self._defer_int:
            raise KeyboardInterrupt
        if not self._interrupted:
            self._interrupted = True
            _soon(self.stop.set)

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        _soon(self.stop.set)

    def _on_hup_signal(self, signum: int, frame: FrameType | None) -> None:
        target = self._on_hup
        if target is not None:
            _soon(target)
        elif not self._defer_int:
            self._hup_pending = True  # start-up: reload once running
