"""The control channel where there are no Unix sockets (Windows): a named pipe through
:mod:`multiprocessing.connection`, speaking the same one-request protocol as
:mod:`vcam.live.control_socket`.

Access is the current user's only, as on Unix: the pipe ``\\\\.\\pipe\\vcam-<user>`` answers
only a client that proves it knows a random key kept in the user's private folder
(``%LOCALAPPDATA%\\vcam\\control.key``; ``multiprocessing``'s HMAC challenge, so the key never
crosses the pipe). Other users cannot read that file, so they cannot talk to the daemon.

The code is the same on every platform but for the address family (``AF_PIPE`` on
Windows); the tests run it with ``AF_UNIX`` under a simulated ``sys.platform = "win32"``.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import secrets
import sys
import threading
from collections.abc import Callable, Mapping
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from vcam.errors import ControlError

if TYPE_CHECKING:
    from vcam.live.control import Controller
    from vcam.live.control_socket import Request

__all__ = ["PipeServer", "control_folder", "pipe_address", "send_pipe_request", "uses_pipe"]

log = logging.getLogger(__name__)

_KEY_BYTES = 32
_MAX_REQUEST = 64 * 1024
_KNOCK_WAIT_S = 1.0  # how long close() waits for its wake-up connection to be taken
_T = TypeVar("_T")


def uses_pipe(platform: str | None = None) -> bool:
    """Whether this platform's control channel is the named pipe (no ``AF_UNIX`` / no uid)."""
    return (platform or sys.platform) == "win32"


def _family() -> str:
    return "AF_PIPE" if sys.platform == "win32" and os.name == "nt" else "AF_UNIX"


def control_folder(env: Mapping[str, str] | None = None) -> Path:
    """The user's private vcam folder for the key: ``%LOCALAPPDATA%\\vcam`` (else ``~/.vcam``)."""
    env = os.environ if env is None else env
    base = env.get("LOCALAPPDATA") or env.get("XDG_RUNTIME_DIR")
    return (Path(base) if base else Path.home()) / "vcam"


def pipe_address(env: Mapping[str, str] | None = None) -> str:
    """``\\\\.\\pipe\\vcam-<user>`` on Windows; a socket file in :func:`control_folder` elsewhere."""
    if _family() == "AF_PIPE":
        return rf"\\.\pipe\vcam-{getpass.getuser()}"
    return str(control_folder(env) / "control.pipe")


def _key(folder: Path, *, create: bool) -> bytes:
    path = folder / "control.key"
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".control.key.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(_KEY_BYTES))
            os.replace(tmp, path)
        except OSError as exc:
            raise ControlError(f"cannot create the control key {path} ({exc.strerror or exc})") from exc
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ControlError("no vcam daemon is running (no control key); start one with 'vcam run'") from None
    except OSError as exc:
        raise ControlError(f"control key {path}: cannot read it ({exc.strerror or exc})") from exc
    if len(data) != _KEY_BYTES:
        raise ControlError(f"control key {path} is damaged; restart the vcam daemon")
    return data


class PipeServer:
    """Serves control requests for ``controller`` on the named pipe (same faces as
    :class:`~vcam.live.control_socket.ControlServer`: ``start``, ``serve_once``, ``run``, ``close``)."""

    def __init__(self, controller: Controller, env: Mapping[str, str] | None = None) -> None:
        from vcam.live.control_socket import ControlServer

        self.controller = controller
        self._protocol = ControlServer(controller, Path(os.devnull))  # only its handle(): the protocol
        self._env = env
        self.address = pipe_address(env)
        self._listener: Listener | None = None
        self._closing = threading.Event()

    def start(self) -> None:
        folder = control_folder(self._env)
        key = _key(folder, create=True)
        if _family() == "AF_UNIX":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.address)
        try:
            self._listener = Listener(self.address, family=_family(), authkey=key)
        except OSError as exc:
            raise ControlError(f"cannot create the control pipe {self.address} ({exc.strerror or exc})") from exc
        log.info("control pipe: %s", self.address)

    def serve_once(self, timeout: float | None = None) -> bool:
        """Answer one client (waits for it; ``timeout`` is not used: ``close`` wakes it)."""
        if self._listener is None:
            raise ControlError("the control server is not started")
        try:
            conn = self._listener.accept()
        except OSError as exc:  # closed under it, or a client without the key
            if not self._closing.is_set():
                log.warning("control pipe: refused a connection (%s)", exc)
            return False
        except Exception as exc:  # noqa: BLE001 - AuthenticationError and friends: not our user
            log.warning("control pipe: refused a connection (%s)", type(exc).__name__)
            return False
        with conn:
            if self._closing.is_set():
                return False
            try:
                data = conn.recv_bytes(_MAX_REQUEST)
                reply = self._protocol.handle(data)
            except (OSError, EOFError) as exc:
                reply = {"ok": False, "error": f"bad request: {exc}"}
            with contextlib.suppress(OSError):
                conn.send_bytes(json.dumps(reply).encode("utf-8") + b"\n")
        return True

    def run(self, stop: threading.Event, poll: float = 0.2) -> None:
        def wake_on_stop() -> None:
            stop.wait()
            self._wake()

        threading.Thread(target=wake_on_stop, name="vcam-control-wake", daemon=True).start()
        while not stop.is_set() and not self._closing.is_set():
            self.serve_once()

    def _wake(self) -> None:
        """Unblock ``accept`` with a connection of our own (a pipe listener has no timeout).

        The connection is made on a thread of its own and waited for at most
        ``_KNOCK_WAIT_S``: when the serving loop has already ended (``stop`` was set while
        it answered a client), nobody accepts it and ``Client`` would wait for the
        handshake forever (a daemon that never exits). Closing the listener afterwards ends
        that connection, and the thread with it."""
        self._closing.set()

        def knock() -> None:
            key = _key(control_folder(self._env), create=False)
            Client(self.address, family=_family(), authkey=key).close()

        _within(knock, _KNOCK_WAIT_S, "vcam-control-knock")  # refused or not taken: nothing to do

    def close(self) -> None:
        if self._listener is not None and not self._closing.is_set():
            self._wake()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None


def send_pipe_request(request: Request, env: Mapping[str, str] | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """``request`` to the daemon over the pipe; returns its raw reply object. ``timeout``
    bounds the whole exchange (``multiprocessing.connection`` has none of its own: a daemon
    that holds the pipe but no longer answers would keep ``vcam ctl`` waiting forever)."""
    address = pipe_address(env)
    key = _key(control_folder(env), create=False)
    result = _within(lambda: _exchange(request, address, key), timeout, "vcam-ctl-pipe")
    if not result:
        raise ControlError(f"the vcam daemon did not answer within {timeout:g} s")
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def _within(call: Callable[[], _T], timeout: float, name: str) -> list[_T | BaseException]:
    """``call()`` on a daemon thread named ``name``, waited for at most ``timeout`` seconds:
    ``[its result]`` or ``[the exception it raised]``, or ``[]`` while it still runs (a
    ``multiprocessing.connection`` handshake nobody answers; the thread ends when the pipe
    is closed, or with the process)."""
    result: list[_T | BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            result.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join(timeout)
    return result


def _exchange(request: Request, address: str, key: bytes) -> dict[str, Any]:
    try:
        conn: Connection = Client(address, family=_family(), authkey=key)
    except (FileNotFoundError, ConnectionRefusedError):
        raise ControlError(f"no vcam daemon is running (nothing answers at {address}); start one with 'vcam run'") from None
    except OSError as exc:
        raise ControlError(f"control pipe {address}: cannot connect ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - AuthenticationError: another user's daemon, or a stale key
        raise ControlError(f"control pipe {address}: the daemon refused this user ({type(exc).__name__})") from None
    with conn:
        try:
            conn.send_bytes(request.encode())
            raw = conn.recv_bytes(_MAX_REQUEST)
        except (OSError, EOFError) as exc:
            raise ControlError(f"control pipe {address}: {exc}") from None
    try:
        reply = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ControlError("the vcam daemon sent an unreadable reply") from None
    if not isinstance(reply, dict):
        raise ControlError("the vcam daemon sent an unreadable reply")
    return reply
