"""Windows and macOS start-up, simulated on Linux (issue 13.6): ``sys.platform`` patched,
``os.getuid`` and ``fcntl`` taken away. ``vcam run`` starts and serves ``vcam ctl`` over the
named-pipe channel (multiprocessing.connection; AF_UNIX stands in for AF_PIPE here), only
for a client holding the user's key; doctor and install-service say "Linux only" instead of
crashing; no module needs a POSIX-only import to load."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.helpers.cli import run_cli, wait_for

pytestmark = pytest.mark.usefixtures("isolated_home")


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    # Loaded first, as the real platform: the standard library and third-party packages pick
    # their Windows-only parts (``_winapi``) by sys.platform when they are imported.
    import importlib.util
    import multiprocessing.connection  # noqa: F401

    # OpenVINO (the engine vcam may choose) calls os.add_dll_directory at import under
    # "win32"; a real Windows has it, the simulation does not (a run that imported it late
    # failed with AttributeError, 1 run in 10)
    if importlib.util.find_spec("openvino") is not None:
        import openvino  # noqa: F401

    import vcam.live.control_pipe
    import vcam.live.run
    import vcam.setup.doctor
    import vcam.setup.service  # noqa: F401

    local = tmp_path / "AppData" / "Local"
    monkeypatch.setenv("LOCALAPPDATA", str(local))
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.delattr(os, "getuid")
    monkeypatch.setitem(sys.modules, "fcntl", None)  # "import fcntl" raises ImportError
    return local / "vcam"


def test_no_module_needs_a_posix_only_import_to_load() -> None:
    code = (
        # (sys.platform stays: third-party packages pick Windows-only modules by it at import)
        "import sys, os, importlib, pkgutil; sys.modules['fcntl'] = None; del os.getuid; import vcam; "
        # every module of vcam (those of the optional extras import Ray / OpenVINO only when used)
        "names = [m.name for m in pkgutil.walk_packages(vcam.__path__, 'vcam.') if m.name != 'vcam.__main__']; "
        "[importlib.import_module(n) for n in names]; print(len(names) > 90, 'ok')"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "True ok\n"


def test_vcam_run_starts_and_answers_vcam_ctl_over_the_pipe(windows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    replies: list[tuple[int, str, str]] = []

    def client() -> None:
        wait_for(lambda: (windows / "control.key").exists() and (windows / "control.pipe").exists(), timeout=60,
                 what="the control pipe")
        from vcam.cli import main

        for argv in (["ctl", "mode", "color"], ["ctl", "quit"]):
            replies.append((main(argv), "", ""))

    t = threading.Thread(target=client, name="test-ctl")
    t.start()
    code, out, err = run_cli(capsys, "run", "--source", "testpattern", "--size", "160x90", "--fps", "10", "--output", "null",
                             "--mode", "off", "--no-tray", "--duration", "60")
    t.join(30)
    assert code == 0, err
    assert [r[0] for r in replies] == [0, 0]
    assert "ok: mode color" in out
    assert (windows / "control.key").stat().st_size == 32


def test_ctl_without_a_daemon_and_with_a_wrong_key(windows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "ctl", "status")
    assert code == 1
    assert err.splitlines()[-1] == "vcam: error: no vcam daemon is running (no control key); start one with 'vcam run'"

    from tests.helpers.desktop import make_rig
    from vcam.live.control_pipe import PipeServer

    server = PipeServer(make_rig().controller)
    server.start()
    stop = threading.Event()
    t = threading.Thread(target=server.run, args=(stop,), name="test-pipe")
    t.start()
    try:
        (windows / "control.key").write_bytes(b"x" * 32)  # another user's key, as far as the daemon knows
        code, _, err = run_cli(capsys, "ctl", "status")
        assert code == 1
        assert err.splitlines()[-1].startswith(f"vcam: error: control pipe {windows / 'control.pipe'}: the daemon refused this user")
    finally:
        stop.set()
        t.join(10)
        server.close()
    assert not t.is_alive()


def test_closing_a_pipe_server_nobody_serves_any_more_does_not_hang(windows: Path) -> None:
    """The serving loop can end (stop set while it answered a client) before close() knocks
    to wake it: nobody accepts that knock then. close() must still return, its knocking
    thread must end, and a client must get an answer in bounded time, not wait forever."""
    from tests.helpers.desktop import make_rig
    from vcam.errors import ControlError
    from vcam.live.control_pipe import PipeServer, send_pipe_request
    from vcam.live.control_socket import Request

    server = PipeServer(make_rig().controller)
    server.start()  # listening, but no loop accepts
    with pytest.raises(ControlError, match=r"^the vcam daemon did not answer within 0.5 s$"):
        send_pipe_request(Request("status"), timeout=0.5)
    done = threading.Event()
    closer = threading.Thread(target=lambda: (server.close(), done.set()), name="test-close")
    closer.start()
    assert done.wait(10), "PipeServer.close() hung"
    waiting = ("vcam-control-knock", "vcam-ctl-pipe")  # closing the listener ends both connections
    wait_for(lambda: not any(t.name in waiting for t in threading.enumerate()), timeout=10,
             what="the knocking and the client's threads to end")


def test_doctor_and_install_service_say_linux_only(windows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vcam.setup.doctor import System, run_checks

    checks = run_checks(system=System(platform="win32", providers=lambda: ["CPUExecutionProvider"]))
    by_name = {c.name: c for c in checks}
    assert by_name["virtual camera"].detail == "not on Linux: vcam writes to OBS Studio's virtual camera"
    assert by_name["daemon"].detail.startswith("not running")
    code, _, err = run_cli(capsys, "install-service")
    assert code == 1
    assert err.splitlines()[-1] == (
        "vcam: error: install-service is Linux only (a systemd user unit); on Windows put 'vcam run' in the "
        "Startup folder (shell:startup), on macOS add it to Login Items"
    )
