"""Sinks: the real pyvirtualcam Camera with an in-memory backend, and the atomic file sink."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.fakes import MemoryCameraBackend, register_memory_backend
from tests.helpers.media import color_frames, count_frames
from vcam.errors import DeviceError, OutputError
from vcam.sinks.file import FileSink
from vcam.sinks.virtualcam import SETUP_HINT, VirtualCamSink


@pytest.fixture(autouse=True)
def _memory_backend() -> None:
    register_memory_backend()
    MemoryCameraBackend.instances.clear()
    MemoryCameraBackend.fail_open = None


def test_virtual_camera_receives_rgb_frames_through_pyvirtualcam() -> None:
    sink = VirtualCamSink((32, 16), 30.0, backend="memory")
    img = np.zeros((16, 32, 3), np.uint8)
    img[..., 0] = 255
    img[0, 0] = (1, 2, 3)
    sink.send(img)
    sink.close()
    [cam] = MemoryCameraBackend.instances
    assert (cam.width, cam.height, cam.fps) == (32, 16, 30.0)
    assert len(cam.frames) == 1 and cam.frames[0] == img.tobytes()
    assert cam.closed
    assert sink.name == "virtual camera /dev/video-memory (memory)"


def test_virtual_camera_open_failure_explains_the_setup() -> None:
    MemoryCameraBackend.fail_open = "device busy"
    with pytest.raises(DeviceError) as info:
        VirtualCamSink((32, 16), 30.0, device="/dev/video10", backend="memory")
    assert str(info.value) == f"virtual camera /dev/video10 cannot be opened ('memory' backend: device busy); {SETUP_HINT}"
    assert "exclusive_caps=1" in SETUP_HINT


def test_no_loopback_device_on_this_machine_gives_the_setup_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    if list(Path("/dev").glob("video*")):
        pytest.skip("this machine has video devices")
    import pyvirtualcam.camera

    monkeypatch.delitem(pyvirtualcam.camera.BACKENDS, "memory")
    with pytest.raises(DeviceError) as info:
        VirtualCamSink((64, 48), 30.0)
    assert str(info.value).startswith("virtual camera cannot be opened (")
    assert str(info.value).endswith(SETUP_HINT)


def test_file_sink_writes_every_frame_at_the_rate(tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    sink = FileSink(out, (160, 96), Fraction(25))
    for img in color_frames(7):
        sink.send(img)
    assert not out.exists()  # only the hidden temporary file exists until close
    sink.close()
    assert count_frames(out) == (7, Fraction(25), (160, 96))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]


def test_file_sink_abort_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    sink = FileSink(out, (160, 96), 30)
    sink.send(color_frames(1)[0])
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_file_sink_refuses_bad_outputs(tmp_path: Path) -> None:
    existing = tmp_path / "e.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputError, match=r"^output .*e.mp4 already exists; pass --overwrite to replace it$"):
        FileSink(existing, (32, 32), 30, overwrite=False)
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(OutputError, match=r"^output .*nodir/o.mp4: folder .*nodir does not exist$"):
        FileSink(tmp_path / "nodir" / "o.mp4", (32, 32), 30)
    with pytest.raises(OutputError, match=r"is a folder; give a file name such as out.mp4$"):
        FileSink(tmp_path, (32, 32), 30)


def test_resilient_sink_reopens_a_failed_device_with_backoff() -> None:
    from tests.helpers.fakes import FakeClock, MemorySink
    from vcam.sinks.resilient import ResilientSink

    class Failing(MemorySink):
        def send(self, image, pts=None):  # type: ignore[no-untyped-def]
            if len(self.images) >= 2:
                raise DeviceError("virtual camera /dev/video10: writing a frame failed (No such device)")
            super().send(image, pts)

    clock = FakeClock(start=0.0)
    opened: list[float] = []
    first = Failing()

    def reopen() -> MemorySink:
        opened.append(clock())
        if len(opened) < 2:
            raise DeviceError("virtual camera /dev/video10 cannot be opened (busy)")
        return MemorySink()

    sink = ResilientSink(reopen, first, backoff_s=(0.5, 4.0), clock=clock)
    img = np.zeros((2, 2, 3), np.uint8)
    for _ in range(30):
        sink.send(img)
        clock.now += 0.1
    assert len(first.images) == 2 and first.closed
    # failed at 0.2 s; first retry 0.5 s later fails, the next 1 s after that works
    assert [round(t, 1) for t in opened] == [0.7, 1.7]
    assert (sink.failures, sink.reopens) == (1, 1)
    # 2 sent; the failing frame and the 14 offered while closed dropped; the 13 after reopening sent
    assert sink.dropped == 15
    assert len(sink._inner.images) == 13  # type: ignore[union-attr]


def test_resilient_sink_reports_whether_the_device_is_open() -> None:
    from tests.helpers.fakes import MemorySink
    from vcam.sinks.resilient import ResilientSink

    class Broken(MemorySink):
        def send(self, image, pts=None):  # type: ignore[no-untyped-def]
            raise DeviceError("gone")

    sink = ResilientSink(lambda: (_ for _ in ()).throw(DeviceError("still gone")), Broken())
    assert sink.available is True
    sink.send(np.zeros((2, 2, 3), np.uint8))
    assert sink.available is False
