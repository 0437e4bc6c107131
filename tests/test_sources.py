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
