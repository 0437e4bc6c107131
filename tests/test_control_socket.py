"""The control channel: strict request parser, the socket (0600, same user), the client's
errors, and `vcam ctl` end to end against running daemons."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.cli import wait_for
from tests.helpers.desktop import BACKGROUND, COLOR, PERSON, make_rig, split_frame
from tests.helpers.fakes import FakeEngine, MemoryCameraBackend, register_memory_backend
from tests.helpers.media import write_video
from vcam.cli import main
from vcam.config import validate_config
from vcam.live.control import STATUS_FIELDS, ControlError
from vcam.live.control_socket import ControlServer, Request, default_socket_path, parse_request, send_request


@pytest.mark.parametrize(
    ("line", "request_"),
    [
        (b'{"command": "status"}\n', Request("status")),
        (b'{"command": "mode", "value": "color"}', Request("mode", "color")),
        (b'{"command": "background", "value": "/tmp/a b.png"}\n', Request("background", "/tmp/a b.png")),
        (b'{"command": "mirror", "value": true}', Request("mirror", True)),
        (b'{"command": "quit"}', Request("quit")),
    ],
)
def test_parser_accepts_well_formed_requests(line: bytes, request_: Request) -> None:
    assert parse_request(line) == request_
    assert parse_request(request_.encode()) == request_


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"", "bad request: empty"),
        (b"\xff\xfe", "bad request: not UTF-8"),
        (b"status", "bad request: not valid JSON"),
        (b'{"command": "status"}\n{"command": "quit"}', "bad request: more than one line"),
        (b'["status"]', "bad request: expected a JSON object, got list"),
        (b'{"command": "status", "as_root": true}', "bad request: unknown key(s) 'as_root'"),
        (b'{"command": 7}', "bad request: 'command' must be a string, got 7"),
        (b'{"command": "rm"}', "bad request: unknown command 'rm'; known: status, mode, background, "
                               "mirror, framing, light, pause, resume, reload, quit"),
        (b'{"command": "pause", "value": 1}', "bad request: pause takes no value"),
        (b'{"command": "mode"}', "bad request: mode needs a value"),
        (b'{"command": "mode", "value": "sparkle"}',
         "bad request: unknown mode 'sparkle'; use one of: blur, replace, color, off"),
        (b'{"command": "mode", "value": ["blur"]}', "bad request: mode needs a string, got ['blur']"),
        (b'{"command": "mirror", "value": "yes"}', "bad request: mirror needs true or false, got 'yes'"),
        (b'{"command": "background", "value": "bg.png"}',
         "bad request: background needs an absolute path, got 'bg.png'"),
        (b'{"command": "background", "value": ""}',
         "bad request: background needs a file path (1..4096 characters, no NUL)"),
        (b" " * 8193, "bad request: longer than 8192 bytes"),
    ],
)
def test_parser_rejects_bad_input_with_its_own_error(line: bytes, message: str) -> None:
    with pytest.raises(ControlError) as exc:
        parse_request(line)
    assert str(exc.value) == message


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["command", "value", "x"]), inner),
        max_leaves=8,
    ).map(lambda obj: json.dumps(obj).encode()),
))
def test_parser_never_raises_anything_else(data: bytes) -> None:
    try:
        req = parse_request(data)
    except ControlError:
        return
    assert isinstance(req, Request)


def test_socket_path_is_in_the_runtime_dir(tmp_path: Path) -> None:
    assert default_socket_path({"XDG_RUNTIME_DIR": str(tmp_path)}) == tmp_path / "vcam" / "control.sock"


@pytest.fixture
def served(tmp_path: Path):
    rig = make_rig({"mode": "blur"})
    server = ControlServer(rig.controller, tmp_path / "run" / "vcam" / "control.sock")
    server.start()
    stop = threading.Event()
    t = threading.Thread(target=server.run, args=(stop, 0.05), name="vcam-control-test", daemon=True)
    t.start()
    yield rig, server
    stop.set()
    t.join(5)
    server.close()


def test_socket_is_private_and_answers_requests(served) -> None:
    rig, server = served
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.path.parent.stat().st_mode) == 0o700
    status = send_request(Request("mode", "color"), server.path)
    assert tuple(status) == STATUS_FIELDS
    assert status["mode"] == "color"
    assert (rig.frame()[BACKGROUND] == COLOR).all()
    with pytest.raises(ControlError) as exc:
        send_request(Request("mode", "replace"), server.path)
    assert str(exc.value).startswith("mode replace needs a background")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:  # a malformed request gets an error reply
        s.settimeout(5)
        s.connect(str(server.path))
        s.sendall(b"hello\n")
        assert json.loads(s.makefile().readline()) == {"ok": False, "error": "bad request: not valid JSON"}


def test_a_second_daemon_does_not_take_over_the_socket(served) -> None:
    rig, server = served
    with pytest.raises(ControlError) as exc:
        ControlServer(rig.controller, server.path).start()
    assert str(exc.value) == f"another vcam daemon is already running (control socket {server.path})"


def test_clear_error_when_no_daemon_runs(tmp_path: Path) -> None:
    path = tmp_path / "vcam" / "control.sock"
    expected = f"no vcam daemon is running (nothing answers at {path}); start one with 'vcam run'"
    with pytest.raises(ControlError) as exc:
        send_request(Request("status"), path)
    assert str(exc.value) == expected
    path.parent.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # a socket file left behind by a daemon that was killed
    with pytest.raises(ControlError) as exc:
        send_request(Request("status"), path)
    assert str(exc.value) == expected
    server = ControlServer(make_rig().controller, path)
    server.start()  # replaces the stale file
    server.close()
    assert not path.exists()


def test_ctl_without_daemon_exits_1_with_one_line(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ctl", "status"]) == 1
    path = Path(os.environ["XDG_RUNTIME_DIR"]) / "vcam" / "control.sock"
    assert capsys.readouterr().err == (
        f"vcam: error: no vcam daemon is running (nothing answers at {path}); start one with 'vcam run'\n"
    )


# -- end to end --------------------------------------------------------------------------


def _ctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vcam", "ctl", *args], capture_output=True, text=True, timeout=60)


def test_ctl_against_a_running_daemon_process(isolated_home: Path, tmp_path: Path) -> None:
    """The real daemon (real model, file source, null sink) in a subprocess, driven by `vcam ctl`."""
    clip = write_video(tmp_path / "clip.mp4", [split_frame(i) for i in range(30)], fps=Fraction(15))
    daemon = subprocess.Popen(
        [sys.executable, "-m", "vcam", "run", "--source", str(clip), "--output", "null", "--no-tray",
         "--model-input", "64x36", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    sock = Path(os.environ["XDG_RUNTIME_DIR"]) / "vcam" / "control.sock"
    try:
        wait_for(lambda: sock.exists() or daemon.poll() is not None, timeout=60, what="the control socket")
        assert daemon.poll() is None
        wait_for(lambda: send_request(Request("status"))["frames_out"] > 0, timeout=30, what="frames")
        # Checked once it answers: the file exists from bind() on, a moment before its chmod.
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        res = _ctl("status")
        assert res.returncode == 0
        status = json.loads(res.stdout)
        assert tuple(status) == STATUS_FIELDS
        cfg_path = isolated_home / ".config" / "vcam" / "config.yaml"
        assert {k: status[k] for k in ("mode", "background", "mirror", "paused", "provider", "config_path",
                                       "config_error", "camera", "pid")} == {
            "mode": "blur", "background": None, "mirror": False, "paused": False,
            "provider": {"onnxruntime": "cpu", "openvino": "openvino-cpu"}[status["runtime"]],
            "config_path": str(cfg_path), "config_error": None, "camera": "open", "pid": daemon.pid,
        }
        res = _ctl("mode", "off")
        assert (res.returncode, res.stdout) == (0, "ok: mode off, background -, mirror off, running\n")
        assert json.loads(_ctl("status").stdout)["mode"] == "off"
        res = _ctl("quit")
        assert (res.returncode, res.stdout) == (0, "ok: mode off, background -, mirror off, quitting\n")
        _out, err = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, err
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert not sock.exists()
    res = _ctl("status")
    assert (res.returncode, res.stdout) == (1, "")
    assert res.stderr == f"vcam: error: no vcam daemon is running (nothing answers at {sock}); start one with 'vcam run'\n"


def test_mode_change_is_visible_in_the_next_frames(
    isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon in a thread (file source, in-memory virtual camera, fake engine so the output
    is exact): frames before `mode off` are composited, frames after it are the input as is."""
    import vcam.build
    import vcam.live.run
    from vcam.live.daemon import DesktopOptions

    register_memory_backend()
    frames = [split_frame(i) for i in range(20)]
    clip = write_video(tmp_path / "clip.mp4", frames, fps=Fraction(30))
    from vcam.media.reader import VideoReader

    reader = VideoReader(clip)
    decoded = []
    while (item := reader.read_frame()) is not None:
        decoded.append(item.image)
    reader.close()
    monkeypatch.setattr(vcam.build, "build_engine", lambda cfg, progress=None, live=False: FakeEngine((16, 9)))
    cfg = validate_config({
        "camera": {"device": str(clip), "size": [64, 36], "fps": 30},
        "effect": {"mode": "color", "color": list(COLOR)},
        "output": {"backend": "memory"},
        "tray": {"enabled": False},
    })
    stop = threading.Event()
    errors: list[BaseException] = []
    before = len(MemoryCameraBackend.instances)

    def daemon() -> None:
        try:
            vcam.live.run.run_live(cfg, target="virtualcam", stop=stop, desktop=DesktopOptions())
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=daemon, name="vcam-daemon-test", daemon=True)
    t.start()
    try:
        cam = wait_for(lambda: len(MemoryCameraBackend.instances) > before and MemoryCameraBackend.instances[-1],
                       what="the virtual camera")
        wait_for(lambda: len(cam.frames) >= 3, what="composited frames")
        h, w = decoded[0].shape[:2]

        def image(i: int) -> np.ndarray:
            return np.frombuffer(cam.frames[i], np.uint8).reshape(h, w, 3)

        assert (image(0)[BACKGROUND] == COLOR).all()
        assert any(np.array_equal(image(0)[PERSON], d[PERSON]) for d in decoded)
        send_request(Request("mode", "off"))
        n = len(cam.frames)
        wait_for(lambda: len(cam.frames) >= n + 5, what="frames after the change")
        # At most one frame was already composited when the request arrived; the rest pass through.
        after = [image(i) for i in range(n + 1, n + 5)]
        assert all(any(np.array_equal(img, d) for d in decoded) for img in after)
        assert send_request(Request("status"))["mode"] == "off"
        send_request(Request("quit"))
        t.join(10)
        assert not t.is_alive()
    finally:
        stop.set()
        t.join(10)
    assert errors == []


# -- inputs that hang or mislead (issue 17) ------------------------------------------------


def _raw(path: Path, timeout: float = 30.0) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(path))
    return s


def _reply_and_eof(s: socket.socket) -> tuple[dict, bytes]:
    """The one reply line of the server, then what follows it up to the server's close."""
    f = s.makefile("rb")
    line = f.readline()
    rest = f.read()
    return json.loads(line), rest


def test_twenty_clients_at_once_are_all_answered(tmp_path: Path) -> None:
    rig = make_rig({"mode": "blur"})
    server = ControlServer(rig.controller, tmp_path / "run" / "vcam" / "control.sock")
    server.start()
    stop = threading.Event()
    results: list[object] = []
    trying = threading.Semaphore(0)

    def client() -> None:
        trying.release()
        try:
            results.append(send_request(Request("status"), server.path, timeout=60)["mode"])
        except Exception as exc:
            results.append(exc)

    clients = [threading.Thread(target=client, name=f"ctl-{i}", daemon=True) for i in range(20)]
    for c in clients:
        c.start()
    for _ in clients:
        assert trying.acquire(timeout=30)
    # All 20 connect before the daemon accepts any (more than a small listen backlog holds);
    # the assertion does not depend on this delay, it only gives the clients time to pile up.
    time.sleep(0.5)
    t = threading.Thread(target=server.run, args=(stop, 0.05), name="vcam-control-test", daemon=True)
    t.start()
    try:
        for c in clients:
            c.join(60)
        assert results == ["blur"] * 20
    finally:
        stop.set()
        t.join(10)
        server.close()


def test_the_client_waits_while_the_backlog_is_full_but_not_for_ever(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(0)
    fillers = []
    while True:  # fill the listen queue until a connect would fail with EAGAIN
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(str(path))
        except BlockingIOError:
            s.close()
            break
        fillers.append(s)
    try:
        with pytest.raises(ControlError) as exc:
            send_request(Request("status"), path, timeout=0.5)
        assert str(exc.value) == "the vcam daemon did not answer within 0.5 s"
        out: list[object] = []
        t = threading.Thread(target=lambda: out.append(send_request(Request("status"), path, timeout=60)), daemon=True)
        t.start()
        served = 0
        while served < len(fillers) + 1:  # the daemon gets round to the queue: the client is answered
            conn, _ = listener.accept()
            with conn:
                served += 1
                conn.settimeout(0.2)
                try:
                    line = conn.recv(4096)
                except TimeoutError:
                    continue  # a filler: it sends nothing
                assert line == b'{"command": "status"}\n'
                conn.sendall(b'{"ok": true, "status": {"mode": "blur"}}\n')
                break
        t.join(30)
        assert out == [{"mode": "blur"}]
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_a_silent_client_does_not_hold_up_the_others(served) -> None:
    _rig, server = served
    silent = _raw(server.path)
    try:
        assert send_request(Request("status"), server.path, timeout=30)["mode"] == "blur"
        silent.setblocking(False)
        with pytest.raises(BlockingIOError):  # answered while the silent one is still waited for
            silent.recv(1)
        silent.settimeout(30)
        assert _reply_and_eof(silent) == (
            {"ok": False, "error": "bad request: no complete request line within 3 s"}, b""
        )
    finally:
        silent.close()


def test_a_dripping_client_is_cut_off_and_others_are_served(served) -> None:
    _rig, server = served
    drip = _raw(server.path)
    done = threading.Event()

    def dripping() -> None:  # a byte every 0.3 s: never idle long enough for a per-read time-out
        drip.sendall(b'{"command": ')
        while not done.wait(0.3):
            try:
                drip.sendall(b" ")
            except OSError:
                return

    t = threading.Thread(target=dripping, name="drip", daemon=True)
    t.start()
    try:
        time.sleep(0.5)  # let it drip a little first; nothing below depends on this delay
        assert send_request(Request("status"), server.path, timeout=15)["mode"] == "blur"
        reply, _rest = _reply_and_eof(drip)
        assert reply == {"ok": False, "error": "bad request: no complete request line within 3 s"}
    finally:
        done.set()
        t.join(10)
        drip.close()


@pytest.mark.parametrize("size", [20_000, 200_000])
def test_an_oversize_request_gets_the_error_reply(served, size: int) -> None:
    _rig, server = served
    with _raw(server.path) as s:
        s.sendall(b"x" * size + b"\n")  # 200 kB fills the socket buffer: the server must drain it
        s.shutdown(socket.SHUT_WR)
        assert _reply_and_eof(s) == ({"ok": False, "error": "bad request: longer than 8192 bytes"}, b"")
    assert send_request(Request("status"), server.path, timeout=30)["mode"] == "blur"


def test_ctl_background_fifo_is_answered_and_the_daemon_stays_controllable(served, tmp_path: Path) -> None:
    _rig, server = served
    fifo = tmp_path / "bg.png"
    os.mkfifo(fifo)
    try:
        with pytest.raises(ControlError) as exc:
            send_request(Request("background", str(fifo)), server.path, timeout=10)
        assert str(exc.value) == f"background {fifo}: is not a regular file (a named pipe); give an image or video file"
        status = send_request(Request("status"), server.path, timeout=10)
        assert (status["mode"], status["background"]) == ("blur", None)
    finally:  # before the fix the control thread sits in open(fifo): give it a writer so it ends
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def test_ctl_background_fifo_is_refused_by_the_client(
    isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "bg.png"
    os.mkfifo(fifo)
    assert main(["ctl", "background", str(fifo)]) == 1  # no daemon runs: the client did not ask one
    assert capsys.readouterr().err == (
        f"vcam: error: background {fifo}: is not a regular file (a named pipe); give an image or video file\n"
    )


def test_ctl_reload_of_a_fifo_config_is_answered_and_the_daemon_stays_controllable(tmp_path: Path) -> None:
    from vcam.live.reload import config_loader

    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    rig = make_rig({"mode": "blur"}, config_path=fifo, load_config=config_loader(fifo, required=True))
    server = ControlServer(rig.controller, tmp_path / "run" / "vcam" / "control.sock")
    server.start()
    stop = threading.Event()
    t = threading.Thread(target=server.run, args=(stop, 0.05), name="vcam-control-test", daemon=True)
    t.start()
    try:
        with pytest.raises(ControlError) as exc:
            send_request(Request("reload"), server.path, timeout=10)
        assert str(exc.value) == f"{fifo}: is not a regular file (a named pipe), expected a YAML file"
        assert send_request(Request("status"), server.path, timeout=10)["config_error"] == str(exc.value)
    finally:
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        stop.set()
        t.join(10)
        server.close()


def test_serve_once_cuts_off_a_client_at_its_deadline_on_the_given_clock(tmp_path: Path) -> None:
    """The thread-free twin: the deadline is read from the clock passed in, not the wall."""
    now = [100.0]
    server = ControlServer(make_rig({"mode": "blur"}).controller, tmp_path / "run" / "vcam" / "control.sock",
                           clock=lambda: now[0])
    server.start()
    try:
        with _raw(server.path) as silent, _raw(server.path) as prompt:
            prompt.sendall(b'{"command": "status"}\n')
            while not server.serve_once(5):  # accepts both, answers the prompt one
                pass
            assert json.loads(prompt.makefile("rb").readline())["status"]["mode"] == "blur"
            now[0] += 2.9
            assert server.serve_once(0) is False  # 2.9 s on its clock: still waited for
            now[0] += 0.1
            assert server.serve_once(0) is True
            assert _reply_and_eof(silent) == (
                {"ok": False, "error": "bad request: no complete request line within 3 s"}, b""
            )
    finally:
        server.close()

def test_a_second_daemon_refuses_to_start_even_without_the_socket(isolated_home: Path, tmp_path: Path) -> None:
    """B7 (issue 17): the socket file deleted (tmp cleaners, a user), a second `vcam run` must
    not open the camera and the virtual camera beside the first: the daemon lock says no."""
    args = [sys.executable, "-m", "vcam", "run", "--source", "testpattern", "--size", "160x90", "--fps", "10",
            "--output", "null", "--no-tray", "--model-input", "64x36", "--threads", "1"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sock = Path(os.environ["XDG_RUNTIME_DIR"]) / "vcam" / "control.sock"
    try:
        wait_for(lambda: sock.exists() or first.poll() is not None, timeout=90, what="the control socket")
        assert first.poll() is None
        sock.unlink()
        second = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1, second.stderr
        lock = sock.with_name("daemon.lock")
        assert second.stderr.strip().splitlines()[-1] == (
            f"vcam: error: another vcam daemon is already running (pid {first.pid}, lock {lock}); "
            "stop it first ('vcam ctl quit' or 'systemctl --user stop vcam')"
        )
        assert "matting engine" not in second.stderr  # refused before loading anything
        assert first.poll() is None
        first.terminate()
        _out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    # the lock goes with its daemon: the next one starts
    third = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: sock.exists() or third.poll() is not None, timeout=90, what="the third daemon")
        assert third.poll() is None
    finally:
        third.terminate()
        third.communicate(timeout=60)


def test_ctl_parser_socket_and_tray_read_one_command_table() -> None:
    import argparse

    from vcam.cli import build_parser
    from vcam.commands import COMMANDS
    from vcam.config import MODES

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    ctl = sub.choices["ctl"]
    acts = next(a for a in ctl._actions if isinstance(a, argparse._SubParsersAction))
    assert list(acts.choices) == list(COMMANDS) == ["status", "mode", "background", "mirror", "framing", "light", "pause", "resume", "reload", "quit"]
    mode_value = next(a for a in acts.choices["mode"]._actions if a.dest == "value")
    assert list(mode_value.choices or []) == list(MODES)
    run_mode = next(a for a in sub.choices["run"]._actions if a.dest == "mode")
    assert list(run_mode.choices or []) == list(MODES)
    for name, command in COMMANDS.items():
        value = {"mode": "blur", "path": "/tmp/x.png", "bool": True, "switch": "auto", None: None}[command.value]
        assert parse_request(Request(name, value).encode()) == Request(name, value)
