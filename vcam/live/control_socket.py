"""The control channel: a Unix domain socket for ``vcam ctl`` (hotkeys, scripts).

The socket lives in the user's runtime folder (``$XDG_RUNTIME_DIR/vcam/control.sock``, a
private ``vcam-UID`` folder in the temp dir when that is not set), is created with
permissions 0600 inside a 0700 folder, and only answers processes of the same user (checked
with ``SO_PEERCRED`` where the OS has it). There is no network listener.

Protocol: one request per connection, one JSON object on one line, UTF-8, at most
:data:`MAX_REQUEST` bytes::

    {"command": "mode", "value": "blur"}

and one JSON reply line: ``{"ok": true, "status": {...}}`` or ``{"ok": false, "error": "..."}``.
:func:`parse_request` is strict: anything but a well-formed request raises
:class:`~vcam.errors.ControlError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import socket
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vcam.commands import COMMANDS, SWITCH
from vcam.config import MODES, non_regular_kind
from vcam.errors import ControlError, VcamError

if TYPE_CHECKING:  # the client side (vcam ctl) does not need the controller's imports
    from vcam.live.control import Controller
    from vcam.live.control_pipe import PipeServer

__all__ = [
    "COMMANDS",
    "MAX_REQUEST",
    "REQUEST_DEADLINE_S",
    "ControlServer",
    "DaemonLock",
    "DaemonRunningError",
    "Request",
    "check_background_path",
    "default_socket_path",
    "lock_daemon",
    "parse_request",
    "send_request",
]

log = logging.getLogger(__name__)

MAX_REQUEST = 8192
MAX_PATH = 4096
_MAX_REPLY = 1 << 20
_SUN_PATH_MAX = 107
_IO_TIMEOUT_S = 2.0
# The daemon reads every connection at once (a selector), so a slow client delays no other;
# each still gets a total time to send its one line, and to close after its reply.
REQUEST_DEADLINE_S = 3.0
_LINGER_S = 1.0  # after a reply: wait this long for the client to close (see _finish)
_MAX_DRAIN = 1 << 20  # ... and discard at most this much of what it still sends
_MAX_PENDING = 64  # connections read at once; more wait in the listen queue
_BACKLOG = 128  # was 8: a burst of `vcam ctl` (hotkeys, scripts) failed with EAGAIN


@dataclass(frozen=True)
class Request:
    """A parsed control request; ``value`` is None for commands that take none."""

    command: str
    value: str | bool | None = None

    def encode(self) -> bytes:
        obj: dict[str, object] = {"command": self.command}
        if self.value is not None:
            obj["value"] = self.value
        return json.dumps(obj).encode("utf-8") + b"\n"


def parse_request(data: bytes) -> Request:
    """Parse one request line. Raises :class:`ControlError` on any malformed input."""
    if not isinstance(data, bytes | bytearray):
        raise ControlError(f"bad request: expected bytes, got {type(data).__name__}")
    if len(data) > MAX_REQUEST:
        raise ControlError(f"bad request: longer than {MAX_REQUEST} bytes")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise ControlError("bad request: not UTF-8") from None
    if text.endswith("\n"):
        text = text[:-1]
    if not text.strip():
        raise ControlError("bad request: empty")
    if "\n" in text:
        raise ControlError("bad request: more than one line")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise ControlError("bad request: not valid JSON") from None
    if not isinstance(obj, dict):
        raise ControlError(f"bad request: expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(str(k) for k in obj if k not in ("command", "value"))
    if unknown:
        raise ControlError(f"bad request: unknown key(s) {', '.join(repr(k) for k in unknown)}")
    command = obj.get("command")
    if not isinstance(command, str):
        raise ControlError(f"bad request: 'command' must be a string, got {command!r:.60}")
    if command not in COMMANDS:
        raise ControlError(f"bad request: unknown command {command!r:.60}; known: {', '.join(COMMANDS)}")
    kind = COMMANDS[command].value
    if kind is None:
        if "value" in obj:
            raise ControlError(f"bad request: {command} takes no value")
        return Request(command)
    if "value" not in obj:
        raise ControlError(f"bad request: {command} needs a value")
    value = obj["value"]
    if kind == "bool":
        if not isinstance(value, bool):
            raise ControlError(f"bad request: {command} needs true or false, got {value!r:.60}")
        return Request(command, value)
    if not isinstance(value, str):
        raise ControlError(f"bad request: {command} needs a string, got {value!r:.60}")
    if kind == "mode" and value not in MODES:
        raise ControlError(f"bad request: unknown mode {value!r:.60}; use one of: {', '.join(MODES)}")
    if kind == "switch" and value not in SWITCH:
        raise ControlError(f"bad request: {command} needs one of {', '.join(SWITCH)}, got {value!r:.60}")
    if kind == "path":
        if not value or len(value) > MAX_PATH or "\x00" in value:
            raise ControlError(f"bad request: {command} needs a file path (1..{MAX_PATH} characters, no NUL)")
        if not os.path.isabs(value):
            raise ControlError(f"bad request: {command} needs an absolute path, got {value!r:.60}")
    return Request(command, value)


def default_socket_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_RUNTIME_DIR/vcam/control.sock``, else ``TMPDIR/vcam-UID/control.sock``."""
    env = os.environ if env is None else env
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return Path(runtime) / "vcam" / "control.sock"
    return Path(tempfile.gettempdir()) / f"vcam-{_user_tag()}" / "control.sock"


def _user_tag() -> str:
    """The uid where the OS has one, else the user name (Windows)."""
    getuid = getattr(os, "getuid", None)
    if getuid is not None:
        return str(getuid())
    import getpass

    return getpass.getuser()


def open_control_server(controller: Controller) -> ControlServer | PipeServer:
    """The control server of this platform: the Unix socket, or the named pipe on Windows
    (:mod:`vcam.live.control_pipe`), both answering the current user only."""
    from vcam.live.control_pipe import PipeServer, uses_pipe

    return PipeServer(controller) if uses_pipe() else ControlServer(controller)


def check_background_path(path: str) -> None:
    """Raise :class:`ControlError` when ``path`` exists but is not a regular file.

    Checked before anything opens it (by the client and again by the daemon): a FIFO would
    block the control thread in ``open`` and a device would be read for ever. A missing or
    unreadable file is left to the background loader, whose error says which.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    kind = non_regular_kind(mode)
    if kind is not None:
        raise ControlError(f"background {path}: is not a regular file ({kind}); give an image or video file")


def _check_path(path: Path) -> None:
    if len(os.fsencode(str(path))) > _SUN_PATH_MAX:
        raise ControlError(f"control socket path {path} is too long for a Unix socket (at most {_SUN_PATH_MAX} bytes)")


def _peer_uid(conn: socket.socket) -> int | None:
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None  # not Linux: the 0600 socket in a 0700 folder is the protection
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i")))
    return int(uid)


def _read_line(conn: socket.socket, limit: int, deadline: float) -> bytes:
    """Bytes up to and including the first newline (or EOF, or ``limit``), all before
    ``deadline`` (``time.monotonic``); raises TimeoutError after it."""
    buf = bytearray()
    while b"\n" not in buf and len(buf) <= limit:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        conn.settimeout(left)
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


@dataclass(eq=False)
class _Conn:
    """One accepted connection: what it sent so far and until when it may take."""

    sock: socket.socket
    deadline: float
    buf: bytearray = field(default_factory=bytearray)
    replied: bool = False  # the reply is sent; now only waiting for the client to close
    drained: int = 0


class ControlServer:
    """Serves control requests for ``controller`` on the Unix socket at ``path``.

    :meth:`start` creates the socket (raising :class:`ControlError` when another daemon
    answers there); ``serve_once()`` waits for activity once and answers every request that
    became complete (the thread-free twin of ``run(stop)``); :meth:`close` removes the socket.

    Connections are read side by side, requests handled one at a time in arrival order. A
    client has :data:`REQUEST_DEADLINE_S` seconds in all to send its line (one that sends
    nothing, or a byte now and then, is answered with an error and cut off), so no client can
    hold the channel. Every reply is followed by a shutdown of the write side, and what the
    client still sends is read and discarded until it closes, so the reply is never lost
    to a reset (an over-long request used to get ECONNRESET instead of its error).
    """

    def __init__(
        self, controller: Controller, path: Path | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.controller = controller
        self.path = path or default_socket_path()
        self.request_deadline = REQUEST_DEADLINE_S
        self._clock = clock
        self._sock: socket.socket | None = None
        self._ino: int | None = None
        self._selector: selectors.BaseSelector | None = None
        self._listening: socket.socket | None = None  # the socket the selector watches for accept
        self._conns: dict[socket.socket, _Conn] = {}

    def start(self) -> None:
        path = self.path
        _check_path(path)
        _private_folder(path.parent)
        try:
            existing = path.lstat()
        except FileNotFoundError:
            existing = None
        if existing is not None:
            if not stat.S_ISSOCK(existing.st_mode):
                raise ControlError(f"{path} exists and is not a socket; remove it")
            if _answers(path):
                raise ControlError(f"another vcam daemon is already running (control socket {path})")
            path.unlink()  # left behind by a daemon that did not exit cleanly
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
            os.chmod(path, 0o600)
            sock.listen(_BACKLOG)
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot create the control socket {path} ({exc.strerror or exc})") from exc
        self._sock = sock
        self._ino = path.lstat().st_ino
        log.info("control socket: %s", path)

    def serve_once(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s for activity, then answer every request that is complete
        and every client past its deadline; True when at least one was answered."""
        if self._sock is None:
            raise ControlError("the control server is not started")
        sel = self._watch(self._sock)
        wait = timeout
        if self._conns:
            nearest = max(0.0, min(c.deadline for c in self._conns.values()) - self._clock())
            wait = nearest if wait is None else min(wait, nearest)
        answered = 0
        for key, _events in sel.select(wait):
            if key.fileobj is self._sock:
                self._accept()
            else:
                answered += self._read(key.data)
        now = self._clock()
        for conn in [c for c in self._conns.values() if now >= c.deadline]:
            if conn.replied:
                self._drop(conn)  # it did not close in time: close it from this side
            elif self._read(conn):  # its line came while a request was being handled
                answered += 1
            elif conn.sock in self._conns:
                secs = f"{self.request_deadline:g}"
                self._finish(conn, {"ok": False, "error": f"bad request: no complete request line within {secs} s"})
                answered += 1
        self._sync_accepting()
        return answered > 0

    def _watch(self, listener: socket.socket) -> selectors.BaseSelector:
        if self._selector is None or self._listening is not listener:
            self._drop_connections()
            self._selector = selectors.DefaultSelector()
            listener.setblocking(False)
            self._selector.register(listener, selectors.EVENT_READ)
            self._listening = listener
        return self._selector

    def _sync_accepting(self) -> None:
        # With _MAX_PENDING connections open, stop watching the listener (it would stay
        # readable and spin the loop); the kernel queue holds the rest until one ends.
        sel, listener = self._selector, self._listening
        if sel is None or listener is None:
            return
        watched = listener in sel.get_map()
        if watched and len(self._conns) >= _MAX_PENDING:
            sel.unregister(listener)
        elif not watched and len(self._conns) < _MAX_PENDING:
            sel.register(listener, selectors.EVENT_READ)

    def _accept(self) -> None:
        assert self._sock is not None and self._selector is not None
        while len(self._conns) < _MAX_PENDING:
            try:
                sock, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("control socket: accept failed (%s)", exc)
                return
            sock.setblocking(False)
            conn = _Conn(sock, self._clock() + self.request_deadline)
            self._conns[sock] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)
            try:
                uid = _peer_uid(sock)
            except OSError:
                uid = None
            own = getattr(os, "getuid", None)  # SO_PEERCRED implies uids; checked all the same
            if uid is not None and own is not None and uid != own():
                log.warning("control socket: refused a connection from uid %d", uid)
                self._finish(conn, {"ok": False, "error": "permission denied"})

    def _read(self, conn: _Conn) -> int:
        """Read all that ``conn`` sent so far; 1 when that completed its request and it was answered."""
        while conn.sock in self._conns:
            try:
                chunk = conn.sock.recv(16384)
            except (BlockingIOError, InterruptedError):
                return 0
            except OSError as exc:
                log.warning("control socket: connection failed (%s)", exc)
                self._drop(conn)
                return 0
            if conn.replied:  # discard: the client may still be sending an over-long request
                conn.drained += len(chunk)
                if not chunk or conn.drained > _MAX_DRAIN:
                    self._drop(conn)
                continue
            conn.buf += chunk
            if not chunk or b"\n" in conn.buf or len(conn.buf) > MAX_REQUEST:
                self._finish(conn, self.handle(bytes(conn.buf)))
                return 1
        return 0

    def _finish(self, conn: _Conn, reply: dict[str, Any]) -> None:
        """Send ``reply``, end the write side, and wait (in the loop) for the client to close.

        Closing a Unix socket with unread input resets the connection, and the client then
        loses the reply it had not read yet; so what still comes is read and discarded, for
        at most _LINGER_S and _MAX_DRAIN bytes."""
        conn.replied = True
        conn.deadline = self._clock() + _LINGER_S
        try:
            conn.sock.settimeout(_IO_TIMEOUT_S)  # replies are small: this never waits in practice
            conn.sock.sendall(json.dumps(reply).encode("utf-8") + b"\n")
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
        except OSError as exc:
            log.warning("control socket: connection failed (%s)", exc)
            self._drop(conn)

    def _drop(self, conn: _Conn) -> None:
        if self._conns.pop(conn.sock, None) is not None and self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn.sock)
        conn.sock.close()

    def _drop_connections(self) -> None:
        """Close every open connection and the selector (at close, or a new listener)."""
        for conn in list(self._conns.values()):
            self._drop(conn)
        if self._selector is not None:
            self._selector.close()
        self._selector = None
        self._listening = None

    def handle(self, data: bytes) -> dict[str, Any]:
        """The reply object for one request line."""
        from vcam.live.control import run_command  # the server side only (see TYPE_CHECKING above)

        c = self.controller
        try:
            req = parse_request(data)
            if req.command == "background":  # before anything opens it: a FIFO would block this thread
                check_background_path(str(req.value))
            run_command(c, req.command, req.value)
            return {"ok": True, "status": c.status()}
        except VcamError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a bug: answer, log, keep serving
            log.error("control request failed: %s: %s", type(exc).__name__, exc)
            log.debug("control request failed", exc_info=True)
            return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}

    def run(self, stop: threading.Event, poll: float = 0.2) -> None:
        """Serve until ``stop`` is set."""
        while not stop.is_set():
            self.serve_once(poll)

    def close(self) -> None:
        self._drop_connections()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with contextlib.suppress(OSError):
            if self._ino is not None and self.path.lstat().st_ino == self._ino:
                self.path.unlink()


def _private_folder(folder: Path) -> None:
    """Create ``folder`` (0700) or check that it is the user's own and closed to others."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
    except OSError as exc:
        raise ControlError(f"cannot create the control socket folder {folder} ({exc.strerror})") from exc
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return  # no uids (Windows): the folder is in the user's own profile
    if st.st_uid != getuid() or st.st_mode & 0o077:
        raise ControlError(
            f"control socket folder {folder} is open to other users or not yours; "
            f"it must be owned by you with mode 0700 (chmod 700 {folder})"
        )


class DaemonRunningError(ControlError):
    """Another daemon holds the daemon lock: this one must not start."""


class DaemonLock:
    """The lock one desktop daemon holds for its whole life (see :func:`lock_daemon`)."""

    def __init__(self, fd: int | None, path: Path) -> None:
        self._fd, self.path = fd, path

    def close(self) -> None:
        """Release the lock (the file stays: removing a lock file races with the next taker)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DaemonLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def lock_daemon(socket_path: Path | None = None) -> DaemonLock:
    """Take ``daemon.lock`` beside the control socket (``flock``, released by the kernel when
    the process ends, however it ends), so that a second daemon is refused even when the
    socket file was deleted. Raises :class:`DaemonRunningError` when another process holds it and
    :class:`ControlError` when the folder is unusable."""
    path = socket_path or default_socket_path()
    _private_folder(path.parent)
    lock = path.with_name("daemon.lock")
    try:
        import fcntl
    except ImportError:  # not POSIX: the control socket is the only guard
        return DaemonLock(None, lock)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ControlError(f"cannot create the daemon lock {lock} ({exc.strerror})") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        finally:
            os.close(fd)
        who = f"pid {pid}, " if pid.isdigit() else ""
        raise DaemonRunningError(
            f"another vcam daemon is already running ({who}lock {lock}); "
            "stop it first ('vcam ctl quit' or 'systemctl --user stop vcam')"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return DaemonLock(fd, lock)


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(path))
        except OSError:
            return False
        return True


def send_request(request: Request, path: Path | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Send ``request`` to the running daemon; returns its status object.

    ``timeout`` bounds the whole exchange: a daemon whose listen queue is full (a burst of
    clients) is tried again until then. A ``background`` path that is not a regular file is
    refused here, before the daemon is asked. Raises :class:`ControlError` when no daemon
    runs, it does not answer, or it refuses the request (with the daemon's error message).
    """
    if request.command == "background" and isinstance(request.value, str):
        check_background_path(request.value)
    from vcam.live.control_pipe import send_pipe_request, uses_pipe

    if uses_pipe():
        return _status_of(send_pipe_request(request, timeout=timeout))
    path = path or default_socket_path()
    _check_path(path)
    deadline = time.monotonic() + timeout
    late = ControlError(f"the vcam daemon did not answer within {timeout:g} s")
    pause = 0.01
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(max(deadline - time.monotonic(), 0.001))
            s.connect(str(path))
            break
        except BlockingIOError:  # EAGAIN: the listen queue is full; the daemon is busy, not gone
            s.close()
            left = deadline - time.monotonic()
            if left <= 0:
                raise late from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.1)
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            raise ControlError(
                f"no vcam daemon is running (nothing answers at {path}); start one with 'vcam run'"
            ) from None
        except PermissionError:
            s.close()
            raise ControlError(f"control socket {path}: permission denied (is it another user's daemon?)") from None
        except TimeoutError:
            s.close()
            raise late from None
        except OSError as exc:
            s.close()
            raise ControlError(f"control socket {path}: cannot connect ({exc.strerror or exc})") from None
    with s:
        try:
            s.settimeout(max(deadline - time.monotonic(), 0.001))
            s.sendall(request.encode())
            raw = _read_line(s, _MAX_REPLY, deadline)
        except TimeoutError:
            raise late from None
        except OSError as exc:
            raise ControlError(f"control socket {path}: {exc.strerror or exc}") from None
    try:
        reply = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ControlError("the vcam daemon sent an unreadable reply") from None
    return _status_of(reply)


def _status_of(reply: object) -> dict[str, Any]:
    """The status object of a daemon's reply, or its error as a :class:`ControlError`."""
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise ControlError("the vcam daemon sent an unreadable reply")
    if not reply["ok"]:
        raise ControlError(str(reply.get("error", "request refused")))
    status = reply.get("status")
    if not isinstance(status, dict):
        raise ControlError("the vcam daemon sent an unreadable reply")
    return status
