"""On-demand webcam: opened only while the virtual camera has readers (fake counter), with a
placeholder meanwhile; the /proc consumer scan on a fake /proc tree."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.desktop import BACKGROUND, COLOR, SIZE, CameraFactory, FakeCounter, make_rig, split_frame
from tests.helpers.fakes import FakeClock
from vcam.errors import DeviceError
from vcam.frames import placeholder_image
from vcam.live.consumers import ConsumerMonitor
from vcam.live.control import IDLE_REASON
from vcam.media.devices import count_consumers, device_holders
from vcam.sources.gated import GatedSource


def on_demand_rig(counter: FakeCounter):
    rig = make_rig({"mode": "color"}, camera={"on_demand": True}, watch_consumers=True)
    monitor = ConsumerMonitor(counter, rig.controller.set_consumers, enabled=lambda: rig.controller.on_demand)
    return rig, monitor


def test_camera_follows_the_consumers_of_the_virtual_camera() -> None:
    counter = FakeCounter(0)
    rig, monitor = on_demand_rig(counter)
    assert monitor.poll() == 0
    out = rig.frame()
    assert np.array_equal(out, placeholder_image(SIZE, IDLE_REASON))
    assert rig.cameras.log == ["open 0", "close 0"]  # opened once at start-up (checked), then released
    assert rig.engine.calls == 0  # nothing is matted while nobody watches
    assert rig.controller.status()["camera"] == f"released ({IDLE_REASON})"

    counter.n = 2
    monitor.poll()
    out = rig.frame()
    assert rig.cameras.log == ["open 0", "close 0", "open 0"]
    assert (out[BACKGROUND] == COLOR).all()
    assert rig.engine.calls == 1
    st = rig.controller.status()
    assert (st["camera"], st["on_demand"], st["consumers"]) == ("open", True, 2)

    counter.n = 0
    monitor.poll()
    assert np.array_equal(rig.frame(), placeholder_image(SIZE, IDLE_REASON))
    assert rig.cameras.log == ["open 0", "close 0", "open 0", "close 0"]


def test_on_demand_off_keeps_the_camera_and_does_not_scan() -> None:
    counter = FakeCounter(0)
    rig = make_rig({"mode": "color"}, watch_consumers=True)
    monitor = ConsumerMonitor(counter, rig.controller.set_consumers, enabled=lambda: rig.controller.on_demand)
    monitor.poll()
    assert counter.calls == 0
    assert (rig.frame()[BACKGROUND] == COLOR).all()
    assert rig.cameras.log == ["open 0"]


def test_monitor_reports_only_changes() -> None:
    counter = FakeCounter(1)
    seen: list[int] = []
    m = ConsumerMonitor(counter, seen.append)
    m.poll()
    m.poll()
    counter.n = 3
    m.poll()
    assert seen == [1, 3]


def test_placeholders_are_paced_and_a_failing_camera_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(start=100.0)
    cameras = CameraFactory()
    src = GatedSource(cameras, SIZE, placeholder_fps=10.0, retry_s=2.0, clock=clock, sleep=clock.sleep)
    cameras.fail = "camera 0 (/dev/video0) cannot be opened: it does not exist"
    src.set_gate(lambda: "paused")
    a, b = src.read(), src.read()
    assert a is not None and b is not None
    assert (a.timestamp, b.timestamp) == (100.0, 100.1)  # the second waited one placeholder period
    src.set_gate(lambda: None)
    with caplog.at_level(logging.ERROR, logger="vcam.sources.gated"):
        f1 = src.read()
        f2 = src.read()
    assert f1 is not None and f2 is not None
    assert np.array_equal(f1.image, placeholder_image(SIZE, "camera unavailable"))
    assert cameras.log == ["open 0", "close 0", "fail 0"]  # no second try before retry_s
    assert [r.getMessage() for r in caplog.records] == [
        "camera 0 (/dev/video0) cannot be opened: it does not exist; retrying every 2 s"
    ]
    assert src.state == "unavailable (camera 0 (/dev/video0) cannot be opened: it does not exist)"
    cameras.fail = None
    clock.now += 2.0
    f3 = src.read()
    assert f3 is not None and np.array_equal(f3.image, split_frame(0))
    assert src.state == "open"
    src.close()
    assert cameras.log[-1] == "close 0"


def test_replace_keeps_the_old_camera_when_the_new_one_fails() -> None:
    cameras = CameraFactory(failing={5: "camera 5 is busy"})
    src = GatedSource(cameras, SIZE)
    from vcam.config import validate_config

    with pytest.raises(DeviceError):
        src.replace(lambda: cameras(validate_config({"camera": {"device": 5}})))
    assert cameras.log == ["open 0", "close 0", "fail 5", "open 0"]
    frame = src.read()
    assert frame is not None and np.array_equal(frame.image, split_frame(0))


def fake_proc(root: Path, procs: dict[int, tuple[str, list[str]]]) -> Path:
    """/proc with one folder per pid: comm and fd/N symlinks to the given targets."""
    for pid, (comm, targets) in procs.items():
        fd = root / str(pid) / "fd"
        fd.mkdir(parents=True)
        (root / str(pid) / "comm").write_text(comm + "\n")
        for i, target in enumerate(targets):
            os.symlink(target, fd / str(i))
    (root / "self").mkdir()
    (root / "meminfo").write_text("")
    return root


def test_proc_scan_counts_other_processes_holding_the_device(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path / "proc", {
        10: ("chrome", ["/dev/null", "/dev/video10", "/dev/video10"]),
        11: ("zoom", ["socket:[123]", "/dev/video10"]),
        12: ("cheese", ["/dev/video0"]),
        99: ("vcam", ["/dev/video10"]),  # the daemon itself, writing
    })
    assert device_holders("/dev/video10", proc, exclude_pid=99) == {10: "chrome", 11: "zoom"}
    assert count_consumers("/dev/video10", proc, own_pid=99) == 2
    assert count_consumers("/dev/video11", proc, own_pid=99) == 0
    assert count_consumers("/dev/video10", tmp_path / "no-proc") == 0


def test_on_demand_flag_overrides_the_config() -> None:
    from vcam.cli import _overrides, build_parser

    assert _overrides(build_parser().parse_args(["run", "--on-demand"])) == {"camera": {"on_demand": True}}
    assert _overrides(build_parser().parse_args(["run", "--no-on-demand"])) == {"camera": {"on_demand": False}}


def test_daemon_follows_the_consumers_of_its_virtual_camera(
    isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_live with on_demand, the in-memory virtual camera and a fake consumer counter: the
    virtual camera gets the placeholder until a consumer appears, then composited frames."""
    import threading
    from fractions import Fraction

    import vcam.build
    import vcam.live.run
    from tests.helpers.cli import wait_for
    from tests.helpers.fakes import FakeEngine, MemoryCameraBackend, register_memory_backend
    from tests.helpers.media import write_video
    from vcam.config import validate_config
    from vcam.live.control_socket import Request, send_request
    from vcam.live.daemon import DesktopOptions

    register_memory_backend()
    clip = write_video(tmp_path / "clip.mp4", [split_frame(i) for i in range(10)], fps=Fraction(30))
    monkeypatch.setattr(vcam.build, "build_engine", lambda cfg, progress=None, live=False: FakeEngine((16, 9)))
    cfg = validate_config({
        "camera": {"device": str(clip), "size": list(SIZE), "fps": 30, "on_demand": True},
        "effect": {"mode": "color", "color": list(COLOR)},
        "output": {"backend": "memory"},
        "tray": {"enabled": False},
    })
    counter = FakeCounter(0)
    devices: list[str] = []

    def counter_for(device: str) -> FakeCounter:
        devices.append(device)
        return counter

    stop = threading.Event()
    before = len(MemoryCameraBackend.instances)
    t = threading.Thread(
        target=vcam.live.run.run_live, args=(cfg,),
        kwargs={"target": "virtualcam", "stop": stop, "desktop": DesktopOptions(consumer_counter=counter_for)},
        name="vcam-daemon-test", daemon=True,
    )
    t.start()
    try:
        cam = wait_for(lambda: len(MemoryCameraBackend.instances) > before and MemoryCameraBackend.instances[-1],
                       what="the virtual camera")
        wait_for(lambda: len(cam.frames) >= 2, what="placeholder frames")
        idle = placeholder_image(SIZE, IDLE_REASON).tobytes()
        assert cam.frames[0] == idle and cam.frames[1] == idle
        assert devices == ["/dev/video-memory"]
        st = send_request(Request("status"))
        assert (st["on_demand"], st["consumers"], st["camera"]) == (True, 0, f"released ({IDLE_REASON})")

        counter.n = 1
        wait_for(lambda: send_request(Request("status"))["camera"] == "open", what="the camera to open")
        n = len(cam.frames)
        wait_for(lambda: len(cam.frames) >= n + 3, what="camera frames")
        last = np.frombuffer(cam.frames[-1], np.uint8).reshape(SIZE[1], SIZE[0], 3)
        assert (last[BACKGROUND] == COLOR).all()
        assert send_request(Request("status"))["consumers"] == 1
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
