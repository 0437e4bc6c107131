"""``vcam process --executor ray --ray-address A`` where no Ray head answers: one clear error
line, exit 1, nothing left in the output folder, well before Ray's own minute-long retries;
Ctrl-C while it waits still exits 130. Real ``vcam`` processes against a real closed port and
a real listening socket that is not Ray (docs/files.md, "On a Ray cluster")."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO
from tests.helpers.cli import last_line
from tests.helpers.media import write_clip
from vcam.errors import VcamError
from vcam.files.ray_executor import _endpoint, check_ray_address

pytest.importorskip("ray")  # vcam checks that Ray is installed before it looks at the address
pytestmark = pytest.mark.ray

CHECK = "check that 'ray status' on the head shows it running and that port {port} is open between this machine and the head (firewall)"


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(
        tmp_path / "in.mp4", [np.full((72, 128, 3), 40 * i, np.uint8) for i in range(3)], rate=25
    )


def _vcam(tmp_path: Path, clip: Path, address: str) -> subprocess.Popen[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), PYTHONUNBUFFERED="1")
    argv = [
        sys.executable,
        "-m",
        "vcam",
        "process",
        str(clip),
        "-o",
        str(tmp_path / "out") + "/",
        "--executor",
        "ray",
        "--ray-address",
        address,
    ]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )


def _left(tmp_path: Path) -> list[str]:
    """What is in the test's folder besides the input and the HOME the test made."""
    return sorted(p.name for p in tmp_path.iterdir() if p.name not in ("in.mp4", "home"))


@pytest.fixture
def silent_port() -> Iterator[tuple[int, threading.Event]]:
    """A port whose listener accepts connections and never says anything; the event is set
    once it has accepted one."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        with server:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                conns.append(conn)
                accepted.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(5)
    for conn in conns:
        conn.close()


def test_a_closed_port_is_one_clear_error_and_leaves_nothing(tmp_path: Path, clip: Path) -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    proc = _vcam(tmp_path, clip, f"127.0.0.1:{port}")
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert last_line(err) == (
        f"vcam: error: --ray-address 127.0.0.1:{port}: no Ray head answers there (Connection refused); "
        + CHECK.format(port=port)
    )
    assert "Traceback" not in err
    assert _left(tmp_path) == []


def test_a_listener_that_is_not_ray_is_one_clear_error_and_leaves_nothing(
    tmp_path: Path, clip: Path, silent_port: tuple[int, threading.Event]
) -> None:
    port, accepted = silent_port
    proc = _vcam(tmp_path, clip, f"127.0.0.1:{port}")
    _out, err = proc.communicate(timeout=120)
    assert accepted.is_set()
    assert proc.returncode == 1, err
    assert last_line(err) == (
        f"vcam: error: --ray-address 127.0.0.1:{port}: something accepts connections there but does not"
        " answer as a Ray head (no reply within 10 s); check the address and port: 'ray status' on the"
        " head prints the address to use"
    )
    assert "Traceback" not in err
    assert _left(tmp_path) == []


def test_ctrl_c_while_waiting_for_the_head_exits_130_and_leaves_nothing(
    tmp_path: Path, clip: Path, silent_port: tuple[int, threading.Event]
) -> None:
    port, accepted = silent_port
    proc = _vcam(tmp_path, clip, f"127.0.0.1:{port}")
    try:
        assert accepted.wait(60), "vcam never connected to the listener"
        proc.send_signal(signal.SIGINT)  # vcam is now waiting for the head's answer
        _out, err = proc.communicate(timeout=8)  # within the 10 s that the wait would take
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert last_line(err) == "vcam: interrupted"
    assert _left(tmp_path) == []


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (
            "headnode",
            "--ray-address headnode: expected HOST:PORT (the head's GCS port, 6379 unless 'ray start --head --port' said otherwise), ray://HOST[:PORT] or auto",
        ),
        (
            "headnode:63x9",
            "--ray-address headnode:63x9: expected HOST:PORT (the head's GCS port, 6379 unless 'ray start --head --port' said otherwise), ray://HOST[:PORT] or auto",
        ),
        (
            "http://headnode:8265",
            "--ray-address http://headnode:8265: expected HOST:PORT, ray://HOST[:PORT] or auto",
        ),
        (
            "headnode.invalid:6379",
            "--ray-address headnode.invalid:6379: cannot resolve the host headnode.invalid",
        ),
    ],
)
def test_a_malformed_or_unknown_address_says_what_is_expected(address: str, message: str) -> None:
    with pytest.raises(VcamError) as exc:
        check_ray_address(address)
    assert str(exc.value).startswith(message)


def test_the_address_from_ray_address_is_named_so_and_ray_urls_default_to_the_client_port() -> None:
    with pytest.raises(VcamError) as exc:
        check_ray_address("headnode", "RAY_ADDRESS")
    assert str(exc.value).startswith("RAY_ADDRESS=headnode: expected HOST:PORT")
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(
        VcamError,
        match=rf"^--ray-address ray://127\.0\.0\.1:{port}: no Ray head answers there \(Connection refused\)",
    ):
        check_ray_address(f"ray://127.0.0.1:{port}")
    assert _endpoint("ray://headnode", "--ray-address") == ("headnode", 10001)  # Ray Client's default port
    assert _endpoint("[::1]:6379", "--ray-address") == ("::1", 6379)
    check_ray_address("auto")  # Ray resolves these itself: nothing to check
    check_ray_address("local")


def test_the_workers_get_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray's workers run in another folder (on a cluster, on another machine): relative paths
    given to vcam process reach them made absolute against the driver's folder."""
    from vcam.config import validate_config
    from vcam.files.plan import Job
    from vcam.files.ray_executor import _absolute_job, _absolute_paths

    monkeypatch.chdir(tmp_path)
    job = _absolute_job(Job(1, Path("in/a.mp4"), Path("out/a.mp4"), Path("mattes")))
    assert (job.input, job.output, job.matte_out) == (tmp_path / "in/a.mp4", tmp_path / "out/a.mp4", tmp_path / "mattes")
    assert _absolute_job(Job(2, Path("/x/b.mp4"), Path("/y/b.mp4"))).matte_out is None
    cfg = validate_config({"effect": {"mode": "replace", "background": "bg.png"}, "model": {"dir": "models"}})
    done = _absolute_paths(cfg)
    assert (done.effect.background, done.model.dir, done.model.path) == (str(tmp_path / "bg.png"), str(tmp_path / "models"), None)
    assert done.effect.mode == "replace" and cfg.effect.background == "bg.png"  # a copy; the rest as it was
