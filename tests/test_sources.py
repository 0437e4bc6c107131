"""Sources: webcam (with a fake OpenCV capture), video files (looping, pacing), test pattern."""

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from vcam.errors import DeviceError, InputError
from vcam.sources.file import FileSource
from vcam.sources.synthetic import TestPatternSource
from vcam.sources.webcam import CameraSource

from conftest import color_frames, write_video
from fakes import FakeClock


class FakeCapture:
    def __init__(self, opened: bool = True, frames: list[np.ndarray] | None = None) -> None:
        self.opened = opened
        self.frames = list(frames or [])
        self.props: dict[int, float] = {}
        self.released = False

    def isOpened(self) -> bool:
        return self.opened

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        return self.props.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        if not self.frames:
            return False, None
        return True, self.frames.pop(0)

    def release(self) -> None:
        self.released = True


def _bgr(b: int, g: int, r: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    img = np.zeros((size[1], size[0], 3), np.uint8)
    img[:] = (b, g, r)
    return img


def test_camera_frames_come_out_rgb_with_the_requested_settings() -> None:
    cap = FakeCapture(frames=[_bgr(1, 2, 3), _bgr(4, 5, 6)])
    cam = CameraSource(2, (64, 48), 30.0, "MJPG", clock=FakeClock(), capture_factory=lambda d: cap)
    assert cap.props[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter.fourcc(*"MJPG")
    assert (cap.props[cv2.CAP_PROP_FRAME_WIDTH], cap.props[cv2.CAP_PROP_FRAME_HEIGHT]) == (64, 48)
    f0, f1 = cam.read(), cam.read()
    assert f0 is not None and f1 is not None
    assert f0.image[0, 0].tolist() == [3, 2, 1] and f1.image[0, 0].tolist() == [6, 5, 4]
    assert (f0.index, f1.index) == (0, 1)
    cam.close()
    assert cap.released


def test_missing_camera() -> None:
    cap = FakeCapture(opened=False)
    with pytest.raises(DeviceError) as info:
        CameraSource(3, capture_factory=lambda d: cap)
    assert str(info.value).startswith("camera 3")
    assert str(info.value).endswith(
        "cannot be opened: it does not exist or another application holds it; "
        "run 'vcam devices' to list cameras, then set camera.device or --source"
    )
    assert cap.released


def test_busy_camera_that_opens_but_delivers_nothing() -> None:
    cap = FakeCapture(frames=[])
    with pytest.raises(DeviceError, match=r"opened but delivered no frame: it is probably busy in another application"):
        CameraSource("/dev/video5", capture_factory=lambda d: cap)
    assert cap.released


def test_camera_that_stops_delivering_is_an_error() -> None:
    cam = CameraSource("/dev/video5", capture_factory=lambda d: FakeCapture(frames=[_bgr(0, 0, 0)]))
    assert cam.read() is not None
    with pytest.raises(DeviceError, match=r"^camera /dev/video5 stopped delivering frames"):
        cam.read()


def test_file_source_loops_and_paces_at_its_own_rate(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", color_frames(3), Fraction(10))
    clock = FakeClock(start=50.0)
    src = FileSource(video, loop=True, pace=True, clock=clock, sleep=clock.sleep)
    got = [src.read() for _ in range(7)]
    assert [round(float(f.image[0, 0, 0]) / 10) for f in got if f] == [0, 1, 2, 0, 1, 2, 0]
    assert [round(f.pts, 3) for f in got if f] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    # paced: the clock advanced by the video's own frame interval between frames
    assert [round(f.timestamp - 50.0, 3) for f in got if f] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    src.close()


def test_file_source_ends_without_loop_and_reports_its_format(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", color_frames(4), Fraction(24))
    src = FileSource(video)
    assert src.size == (160, 96) and src.fps == 24.0
    assert sum(1 for _ in iter(src.read, None)) == 4
    src.close()


def test_unreadable_file_sources(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^input video .*none.mp4: file not found$"):
        FileSource(tmp_path / "none.mp4")
    audio_only = tmp_path / "a.txt"
    audio_only.write_text("hello")
    with pytest.raises(InputError, match=r"^input video .*a.txt: cannot read it as a video \("):
        FileSource(audio_only)


def test_test_pattern_is_deterministic_and_finite_when_asked() -> None:
    a = TestPatternSource((64, 48), 30.0, frames=3, pace=False)
    b = TestPatternSource((64, 48), 30.0, frames=3, pace=False)
    fa, fb = list(iter(a.read, None)), list(iter(b.read, None))
    assert len(fa) == 3 and all(np.array_equal(x.image, y.image) for x, y in zip(fa, fb, strict=True))
    assert fa[0].image.shape == (48, 64, 3)


class _FlakySource:
    """Delivers ``good`` frames of one colour, then raises like an unplugged camera."""

    def __init__(self, good: int, value: int, clock: FakeClock) -> None:
        self.good, self.value, self.clock, self.n, self.closed = good, value, clock, 0, False
        self.name, self.fps = f"camera {value}", 10.0

    def read(self):  # type: ignore[no-untyped-def]
        from vcam.frames import Frame

        if self.n >= self.good:
            raise DeviceError(f"camera {self.value} stopped delivering frames")
        self.n += 1
        self.clock.sleep(0.1)
        return Frame(np.full((4, 4, 3), self.value, np.uint8), self.n, self.clock())

    def close(self) -> None:
        self.closed = True


def test_resilient_source_holds_then_shows_placeholder_and_reopens_with_backoff() -> None:
    from vcam.frames import placeholder_image
    from vcam.sources.resilient import ResilientSource

    clock = FakeClock(start=0.0)
    first = _FlakySource(2, 10, clock)
    attempts: list[float] = []

    def reopen() -> _FlakySource:
        attempts.append(round(clock(), 2))
        if len(attempts) < 3:
            raise DeviceError("camera 0 (/dev/video0) cannot be opened")
        return _FlakySource(100, 20, clock)

    src = ResilientSource(reopen, (4, 4), 10.0, hold_s=0.35, backoff_s=(0.5, 4.0), clock=clock, sleep=clock.sleep, first=first)  # type: ignore[arg-type]
    frames = [src.read() for _ in range(45)]
    kinds = ["real" if not f.placeholder else ("held" if f.image[0, 0, 0] == 10 else "placeholder") for f in frames]
    assert kinds[:2] == ["real", "real"]
    assert kinds[2:6] == ["held", "held", "held", "held"]  # the last good frame, for hold_s
    assert set(kinds[6:kinds.index("real", 2)]) == {"placeholder"}
    assert np.array_equal(frames[7].image, placeholder_image((4, 4), "camera unavailable - reconnecting"))
    assert first.closed
    # failed at 0.2 s; tries again 0.5 s later, then after 1 s and 2 s more (exponential backoff)
    assert attempts == [0.7, 1.7, 3.7]
    back = kinds.index("real", 2)
    assert frames[back].restart is True and frames[back].image[0, 0, 0] == 20
    assert frames[back + 1].restart is False
    assert [f.index for f in frames] == list(range(45))
    assert (src.failures, src.reopens) == (1, 1)


def test_placeholder_frames_are_passed_through_unprocessed() -> None:
    from vcam.compositing import ColorCompositor
    from vcam.frames import Frame
    from vcam.pipeline import Pipeline

    from fakes import FakeEngine, MemorySink

    class Once:
        name, fps = "x", 30.0

        def __init__(self) -> None:
            self.frames = [Frame(np.full((36, 64, 3), 200, np.uint8), 0, 0.0, placeholder=True)]

        def read(self):  # type: ignore[no-untyped-def]
            return self.frames.pop() if self.frames else None

        def close(self) -> None:
            pass

    eng, sink = FakeEngine(), MemorySink()
    pipe = Pipeline(Once(), eng, ColorCompositor((0, 255, 0)), sink, output_size=(64, 36), mirror=True)  # type: ignore[arg-type]
    pipe.step()
    assert eng.calls == 0
    assert sink.images[0][0, 0].tolist() == [200, 200, 200]
