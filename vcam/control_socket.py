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
import socket
import stat
import struct
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vcam.config import MODES
from vcam.errors import ControlError, VcamError

if TYPE_CHECKING:  # the client side (vcam ctl) does not need the controller's imports
    from vcam.control import Controller

__all__ = [
    "COMMANDS",
    "MAX_REQUEST",
    "ControlServer",
    "DaemonLock",
    "DaemonRunningError",
    "Request",
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
# command -> kind of value it takes: None (no value), "mode", "path" or "bool"
COMMANDS: Mapping[str, str | None] = {
    "status": None,
    "mode": "mode",
    "background": "path",
    "mirror": "bool",
    "pause": None,
    "resume": None,
    "reload": None,
    "quit": None,
}


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
    kind = COMMANDS[command]
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
    return Path(tempfile.gettempdir()) / f"vcam-{os.getuid()}" / "control.sock"


def _check_path(path: Path) -> None:
    if len(os.fsencode(str(path))) > _SUN_PATH_MAX:
        raise ControlError(f"control socket path {path} is too long for a Unix socket (at most {_SUN_PATH_MAX} bytes)")


def _peer_uid(conn: socket.socket) -> int | None:
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None  # not Linux: the 0600 socket in a 0700 folder is the protection
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i")))
    return int(uid)


def _read_line(conn: socket.socket, limit: int) -> bytes:
    buf = bytearray()
    while b"\n" not in buf and len(buf) <= limit:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


class ControlServer:
    """Serves control requests for ``controller`` on the Unix socket at ``path``.

    :meth:`start` creates the socket (raising :class:`ControlError` when another daemon
    answers there); ``serve_once()`` answers at most one connection (the thread-free twin of
    ``run(stop)``); :meth:`close` removes the socket.
    """

    def __init__(self, controller: Controller, path: Path | None = None) -> None:
        self.controller = controller
        self.path = path or default_socket_path()
        self._sock: socket.socket | None = None
        self._ino: int | None = None

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
            sock.listen(8)
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot create the control socket {path} ({exc.strerror or exc})") from exc
        self._sock = sock
        self._ino = path.lstat().st_ino
        log.info("control socket: %s", path)

    def serve_once(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s for a connection and answer it; True when one was served."""
        if self._sock is None:
            raise ControlError("the control server is not started")
        self._sock.settimeout(timeout)
        try:
            conn, _ = self._sock.accept()
        except (TimeoutError, BlockingIOError):
            return False
        with conn:
            conn.settimeout(_IO_TIMEOUT_S)
            try:
                uid = _peer_uid(conn)
                if uid is not None and uid != os.getuid():
                    log.warning("control socket: refused a connection from uid %d", uid)
                    reply: dict[str, Any] = {"ok": False, "error": "permission denied"}
                else:
                    reply = self.handle(_read_line(conn, MAX_REQUEST))
                conn.sendall(json.dumps(reply).encode("utf-8") + b"\n")
            except OSError as exc:
                log.warning("control socket: connection failed (%s)", exc)
        return True

    def handle(self, data: bytes) -> dict[str, Any]:
        """The reply object for one request line."""
        c = self.controller
        try:
            req = parse_request(data)
            if req.command == "mode":
                c.set_mode(str(req.value))
            elif req.command == "background":
                c.set_background(str(req.value))
            elif req.command == "mirror":
                c.set_mirror(bool(req.value))
            elif req.command in ("pause", "resume"):
                c.set_paused(req.command == "pause")
            elif req.command == "reload":
                c.reload()
            elif req.command == "quit":
                c.quit()
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
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
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

    Raises :class:`ControlError` when no daemon runs, it does not answer, or it refuses the
    request (with the daemon's error message).
    """
    path = path or default_socket_path()
    _check_path(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(
                f"no vcam daemon is running (nothing answers at {path}); start one with 'vcam run'"
            ) from None
        except PermissionError:
            raise ControlError(f"control socket {path}: permission denied (is it another user's daemon?)") from None
        except OSError as exc:
            raise ControlError(f"control socket {path}: cannot connect ({exc.strerror or exc})") from None
        try:
            s.sendall(request.encode())
            raw = _read_line(s, _MAX_REPLY)
        except TimeoutError:
            raise ControlError(f"the vcam daemon did not answer within {timeout:g} s") from None
        except OSError as exc:
            raise ControlError(f"control socket {path}: {exc.strerror or exc}") from None
    try:
        reply = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ControlError("the vcam daemon sent an unreadable reply") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise ControlError("the vcam daemon sent an unreadable reply")
    if not reply["ok"]:
        raise ControlError(str(reply.get("error", "request refused")))
    status = reply.get("status")
    if not isinstance(status, dict):
        raise ControlError("the vcam daemon sent an unreadable reply")
    return status
