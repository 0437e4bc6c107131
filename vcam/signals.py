"""The one home of SIGINT / SIGTERM / SIGHUP handling.

Python runs signal handlers on the main thread only (and only in the main interpreter), so
every helper here installs its handlers for the length of a ``with`` block on the main thread,
restores the previous ones afterwards (or, with ``final``, ignores the signals from then on:
the process is leaving), and does nothing anywhere else.

* :func:`stop_signals_as_interrupt`: SIGTERM and SIGHUP raise :class:`~vcam.errors.Interrupted`,
  as Ctrl-C does (every command but ``vcam run``; exit 128 + the signal's number).
  :func:`raise_if_stopped` raises that stop again where long work polls (every frame of a
  file, every wait for workers): a handler that ran inside a finaliser had its exception
  swallowed by Python, and the stop would otherwise be lost.
* :func:`hold_stop_signals`: SIGINT, SIGTERM and SIGHUP wait until a block that must not be
  cut short (finishing, deleting or placing files, writing the user unit) is done.
* :class:`DaemonSignals`: ``vcam run``'s handlers from its first moment to its last
  (SIGTERM stops, SIGHUP reloads, SIGINT stops once running and is deferred from then on).
* :func:`worker_process_signals`: a ``--jobs`` worker process leaves stopping to its parent.
* :func:`blocked`: signals blocked (not handled) around starting a helper process.
* :func:`keep_stop_handlers`: the stop signals' handlers put back after a library call that
  installs its own (``ray.init`` makes SIGTERM ``sys.exit``).

This module imports nothing heavy, so ``vcam run``'s handlers go in within the first half second.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import FrameType, TracebackType
from typing import Any

from vcam.errors import Interrupted

__all__ = [
    "DaemonSignals",
    "blocked",
    "handling",
    "hold_stop_signals",
    "keep_stop_handlers",
    "raise_if_stopped",
    "stop_signals_as_interrupt",
    "worker_process_signals",
]

Handler = Callable[[int, "FrameType | None"], Any]

#: The signals that stop a command: Ctrl-C, a service manager or ``kill``, the terminal closed.
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def handling(handlers: Mapping[int, Handler], *, final: bool = False) -> Iterator[bool]:
    """``handlers`` ({signal number: handler}) for the block; yields whether they were installed
    (False off the main thread or outside the main interpreter, where Python allows none).
    Afterwards the previous handlers are back, or with ``final`` these signals are ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    old: dict[int, Any] = {}
    try:
        for sig, handler in handlers.items():
            old[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main interpreter
        for sig, previous in old.items():
            signal.signal(sig, previous)
        yield False
        return
    except BaseException:
        # a signal whose handler was not swapped yet ran its old one (Ctrl-C, or SIGTERM
        # raising Interrupted) between two swaps: put back those swapped, so that none is
        # left with a handler of this block after it, then let the stop go on
        for sig, previous in old.items():
            signal.signal(sig, previous)
        raise
    try:
        yield True
    finally:
        for sig, previous in old.items():
            signal.signal(sig, signal.SIG_IGN if final else previous)


def _soon(call: Callable[[], object]) -> None:
    """Run ``call`` off the signal handler: the handler runs on the main thread between two
    bytecodes, maybe inside the very lock (an Event's, a logger's) that ``call`` takes."""
    threading.Thread(target=call, name="vcam-signal", daemon=True).start()


#: The stop signals :func:`stop_signals_as_interrupt`'s handlers have seen in its block, in order.
_stops: list[int] = []


@contextlib.contextmanager
def stop_signals_as_interrupt(final: bool = False) -> Iterator[None]:
    """SIGTERM (a service manager, ``kill``) and SIGHUP (the terminal closed) stop a command
    the way Ctrl-C does: raised as :class:`~vcam.errors.Interrupted` in the main thread, so
    temporary files are deleted on the way out; ``cli.main`` exits 128 + the signal's number.
    Ctrl-C raises ``KeyboardInterrupt`` as Python's own handler does. A signal the process
    was started ignoring (``nohup`` ignores SIGHUP; a shell's background job SIGINT) stays
    ignored. Every stop is also remembered for :func:`raise_if_stopped`.
    ``final``: the process ends after the block (the ``vcam`` command), so SIGINT, SIGTERM and
    SIGHUP are ignored from then on instead of restored: its last line and exit status stay
    as they are."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        _stops.append(signum)
        raise _stop_for(signum)

    handlers: dict[int, Handler] = {sig: interrupt for sig in STOP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN}
    _stops.clear()
    with handling(handlers, final=final) as installed:
        try:
            yield
        finally:
            if final and installed:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            _stops.clear()


def raise_if_stopped() -> None:
    """Raise the stop that a signal asked for in :func:`stop_signals_as_interrupt`'s block
    (``KeyboardInterrupt``, or :class:`~vcam.errors.Interrupted` for SIGTERM and SIGHUP),
    if one did; else nothing. Python runs a signal handler between any two bytecodes, also
    inside a finaliser (a generator closed by the garbage collector, a ``__del__``), and
    there the exception it raises is printed as "Exception ignored" and dropped: without
    this check the command would go on as if the signal had never come. Called where long
    work polls, so that such a stop is raised at most one poll later."""
    if _stops:
        raise _stop_for(_stops[0])


def _stop_for(signum: int) -> KeyboardInterrupt:
    """The exception a stop signal raises: ``KeyboardInterrupt`` for Ctrl-C, else
    :class:`~vcam.errors.Interrupted` carrying its number."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Interrupted(signum)


@contextlib.contextmanager
def hold_stop_signals() -> Iterator[None]:
    """Finishing or deleting files, which a stop signal (Ctrl-C, SIGTERM, SIGHUP) must not cut
    short: the signals are held until the block is done, then delivered to the handlers that
    were there before, each distinct one in the order it came (only where Python allows
    handlers: the main thread). Python runs a handler between any two bytecodes, so a
    ``finally`` alone cannot close every gap between creating a temporary file and renaming it."""
    pending: list[int] = []
    with handling({sig: lambda n, _frame: pending.append(n) for sig in STOP_SIGNALS}):
        yield
    for sig in dict.fromkeys(pending):  # now that the files are in order, the signal goes on
        signal.raise_signal(sig)


def worker_process_signals(stop: Any) -> None:
    """In a ``--jobs`` worker process, for its whole life: the parent decides when to stop (it
    sets the shared stop event), so a Ctrl-C that reaches the whole process group must not cut
    this process's clean-up short; SIGTERM (kill, the parent's clean-up) and SIGHUP (the
    terminal closed: it reaches the whole process group) call ``stop.set()``, which stops this
    worker's file cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: stop.set())


@contextlib.contextmanager
def keep_stop_handlers() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP handled after the block as before it, whatever the block
    installed (on the main thread; elsewhere nothing can have changed them)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, previous in old.items():
            if previous is not None:
                signal.signal(sig, previous)


@contextlib.contextmanager
def blocked(signals: Iterable[int]) -> Iterator[None]:
    """``signals`` blocked (held by the kernel, not handled) in this thread for the block. A
    blocked signal stays blocked across fork and exec, so a helper process started here
    begins with them blocked."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, set(signals))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class DaemonSignals:
    """SIGINT, SIGTERM and SIGHUP for one ``vcam run``, handled from its first moment to its
    last; a context manager (main thread only: elsewhere it installs nothing and every method
    still works).

    ``vcam run`` is a service (``systemctl --user reload`` sends SIGHUP, ``stop`` SIGTERM), so
    its handlers are installed before anything slow (the model load) and stay until everything
    is closed:

    - SIGTERM at any time sets the ``stop`` event: a clean stop, exit 0 (during start-up vcam
      finishes opening and stops at once; a first-use model download is not cut short).
    - SIGHUP while running reloads the config; during start-up it is remembered and the reload
      happens as soon as the daemon runs (the config may have been edited after it was read);
      during shutdown it is ignored.
    - SIGINT during start-up raises ``KeyboardInterrupt`` as usual (exit 130). Once the daemon
      runs, the first SIGINT sets ``stop`` and any further one is only counted: nothing may cut
      the closing short (finishing a recording, removing the control socket). When everything
      is closed, ``KeyboardInterrupt`` is raised (exit 130).

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
        self._handlers: contextlib.ExitStack | None = None

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def __enter__(self) -> DaemonSignals:
        handlers: dict[int, Handler] = {signal.SIGINT: self._on_int, signal.SIGTERM: self._on_term}
        if hasattr(signal, "SIGHUP"):
            handlers[signal.SIGHUP] = self._on_hup_signal
        stack = contextlib.ExitStack()
        stack.enter_context(handling(handlers, final=self._final))
        self._handlers = stack
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._handlers = self._handlers, None
        if stack is not None:
            stack.close()
        if exc_type is None and self._interrupted:
            raise KeyboardInterrupt

    @contextlib.contextmanager
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
