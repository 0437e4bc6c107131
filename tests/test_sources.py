"""Sources: webcam (with a fake OpenCV capture), video files (looping, pacing), test pattern."""

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.helpers.cli import run_cli
from tests.helpers.fakes import FakeClock
from tests.helpers.media import color_frames, probe, red_levels, write_clip, write_video
from vcam.errors import DeviceError, InputError, VcamError
from vcam.sources.file import FileSource
from vcam.sources.synthetic import TestPatternSource
from vcam.sources.webcam import CameraSource


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

    src = ResilientSource(reopen, (4, 4), 10.0, hold_s=0.35, backoff_s=(0.5, 4.0), clock=clock, sleep=clock.sleep, first=first)
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
    from tests.helpers.fakes import FakeEngine, MemorySink, live_runner
    from vcam.compositing import ColorCompositor
    from vcam.frames import Frame

    class Once:
        name, fps = "x", 30.0

        def __init__(self) -> None:
            self.frames = [Frame(np.full((36, 64, 3), 200, np.uint8), 0, 0.0, placeholder=True)]

        def read(self):  # type: ignore[no-untyped-def]
            return self.frames.pop() if self.frames else None

        def close(self) -> None:
            pass

    eng, sink = FakeEngine(), MemorySink()
    pipe = live_runner(Once(), eng, ColorCompositor((0, 255, 0)), sink, output_size=(64, 36), mirror=True)
    pipe.step()
    assert eng.calls == 0
    assert sink.images[0][0, 0].tolist() == [200, 200, 200]


# -- sources that hang (issue 17) -------------------------------------------------------------


def _jumping_clip(path: Path, jump_ms: int = 60_000) -> Path:
    """50 frames at 25 fps whose timestamps jump forward by ``jump_ms`` after frame 24, as two
    recordings joined into one file (or a damaged PTS) show."""
    pts = [i * 40 for i in range(25)] + [jump_ms + i * 40 for i in range(25)]
    return write_clip(path, color_frames(50), pts=pts, audio=None)


def test_file_source_bridges_a_forward_jump_in_timestamps(tmp_path: Path) -> None:
    clip = _jumping_clip(tmp_path / "jump.mp4")
    clock = FakeClock(start=0.0)
    src = FileSource(clip, loop=True, pace=True, clock=clock, sleep=clock.sleep)
    frames = [src.read() for _ in range(60)]
    assert all(f is not None for f in frames)
    # every frame 40 ms after the one before it: across the 60 s jump and across the loop
    assert [round(f.pts * 1000) for f in frames if f] == [i * 40 for i in range(60)]
    assert [round(f.timestamp * 1000) for f in frames if f] == [i * 40 for i in range(60)]
    assert red_levels([f.image for f in frames if f][22:26]) == [22, 23, 24, 25]  # none left out
    src.close()


def _joined_ts(path: Path, first: int, second: int, audio: str | None = None) -> Path:
    """Two MPEG-TS recordings (30 fps) joined byte by byte, as recorders and ``cat`` make
    them: the timestamps restart where the second one begins. Frames are ``color_frames``."""
    frames = color_frames(first + second)
    a = write_clip(path.with_suffix(".a.ts"), frames[:first], rate=30, audio=audio)
    b = write_clip(path.with_suffix(".b.ts"), frames[first:], rate=30, audio=audio)
    path.write_bytes(a.read_bytes() + b.read_bytes())
    return path


def test_file_source_bridges_timestamps_that_restart(tmp_path: Path) -> None:
    clip = _joined_ts(tmp_path / "joined.ts", 10, 10)
    clock = FakeClock(start=0.0)
    src = FileSource(clip, pace=True, clock=clock, sleep=clock.sleep)
    frames = list(iter(src.read, None))
    # the second recording is not handed out at once (as if late) but at the same pace
    assert [round(f.timestamp * 30) for f in frames] == list(range(20))
    assert red_levels([f.image for f in frames]) == list(range(20))
    src.close()


def _read_in_thread(read: Callable[[], object]) -> threading.Thread:
    t = threading.Thread(target=read, name="test-reader", daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("kind", ["testpattern", "file", "resilient"])
def test_a_pacing_wait_ends_when_the_stop_event_is_set(kind: str, tmp_path: Path) -> None:
    """A source that waits 100 s for its next frame returns at once when the stop it was
    bound to (``stop_on``) is set; the real clock, real threads."""
    from vcam.sources.resilient import ResilientSource

    src: TestPatternSource | FileSource | ResilientSource
    if kind == "testpattern":
        src = TestPatternSource((64, 48), 0.01)  # one frame per 100 s
    elif kind == "file":
        # a slide show: one frame per 10 s (a wait within the bound of a few frame periods)
        clip = write_clip(tmp_path / "slides.mp4", color_frames(3), pts=[0, 10_000, 20_000], rate=Fraction(1, 10), audio=None)
        src = FileSource(clip, pace=True)
    else:
        def broken() -> TestPatternSource:
            raise DeviceError("camera 0 (/dev/video0) cannot be opened")

        src = ResilientSource(broken, (4, 4), 0.01, backoff_s=(1000.0, 1000.0), first=TestPatternSource((4, 4), 0.01, frames=1))
    stop = threading.Event()
    src.stop_on(stop)
    src.read()  # the first frame comes at once
    if kind == "resilient":
        src.read()  # the source ended: the first stand-in comes at once too
    reader = _read_in_thread(src.read)
    time.sleep(0.2)
    assert reader.is_alive()  # waiting for the next frame
    stop.set()
    reader.join(10.0)
    assert not reader.is_alive()
    src.close()


def _wait_until(what: str, cond: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"vcam exited {proc.returncode} before {what}: {proc.communicate()[1][-2000:]}")
        try:
            if cond():
                return
        except (OSError, VcamError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout} s")


def _live(source: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vcam", "run", "--source", source, "--output", "null", "--no-tray",
         "--size", "320x180", "--model-input", "64x36", "--threads", "1", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _sigterm_and_wait(proc: subprocess.Popen[str], within: float) -> tuple[float, str]:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"vcam still running {within} s after SIGTERM: {err[-2000:]}") from None
    return time.monotonic() - t0, err


def test_live_file_with_a_60_s_jump_keeps_delivering_and_stops_on_sigterm(tmp_path: Path, isolated_home: Path) -> None:
    """D4: `vcam run --source jump.mp4 --output null` in a real process: frames flow past the
    jump (no freeze at 0 fps for its length) and SIGTERM stops it."""
    from vcam.live.control_socket import Request, send_request

    clip = _jumping_clip(tmp_path / "jump.mp4", jump_ms=600_000)
    proc = _live(str(clip))
    sock = Path(os.environ["XDG_RUNTIME_DIR"]) / "vcam" / "control.sock"
    try:
        _wait_until("control socket", sock.exists, proc)
        # 60 frames: past the jump at frame 25 (reached after 1 s of 25 fps) and past the end
        # (2.4 s of video; it used to freeze for the 600 s of the jump)
        _wait_until("60 frames", lambda: send_request(Request("status"), sock, timeout=10)["frames_in"] >= 60, proc, 60.0)
        status = send_request(Request("status"), sock, timeout=10)
        assert status["camera"] == "open"
        _, err = _sigterm_and_wait(proc, 20.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "did not stop" not in err
    assert "vcam: stopped (stopped)" in err


def test_live_test_pattern_at_a_low_rate_stops_on_sigterm_without_waiting_a_frame(isolated_home: Path) -> None:
    """D5: at --fps 0.01 the next frame is 100 s away; SIGTERM must not wait for it (systemd
    gives 90 s before SIGKILL)."""
    proc = _live("testpattern", "--fps", "0.01")
    assert proc.stderr is not None
    try:
        line = ""
        while "running:" not in line and proc.poll() is None:
            line = proc.stderr.readline()
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(1.0)  # the first frame went out; the capture thread waits for the second
        _, err = _sigterm_and_wait(proc, 15.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "did not stop" not in err


def test_reader_re_times_timestamps_that_restart_and_keeps_every_frame(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """B1/B2: two TS recordings joined; the second one's clock restarts. Every frame comes out
    once, none is taken for a lost one, and the times go on from the first recording."""
    from vcam.media.reader import VideoReader

    clip = _joined_ts(tmp_path / "joined.ts", 60, 60)
    reader = VideoReader(clip, "input video", on_corrupt="fail")
    frames = list(iter(reader.read_frame, None))
    reader.close()
    assert red_levels([f.image for f in frames][:26]) == list(range(26))
    assert len(frames) == 120 and not any(f.repeated for f in frames)
    start = frames[0].time
    assert [round((f.time - start) * 30) for f in frames] == list(range(120))
    assert reader.corrupt_times == []
    assert [(round(at - start, 3), round(shift, 3)) for at, shift in reader.retimed] == [(1.933, 2.0)]
    assert [r.getMessage() for r in caplog.records] == [
        f"input video {clip}: timestamps go back after 00:00:01.900 (to 00:00:00.000: recordings joined?); "
        "the frames from there on are re-timed to follow on"
    ]


def test_process_writes_every_frame_of_joined_ts_recordings(tmp_path: Path, isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """B1/B2 end to end: `vcam process` of a joined TS file (``--on-corrupt repeat``) writes
    as many frames as it decoded (it wrote 244 from 240, then failed), at increasing times."""
    clip = _joined_ts(tmp_path / "joined.ts", 60, 60)
    out = tmp_path / "out.mp4"
    code, stdout, err = run_cli(capsys, "process", str(clip), "-o", str(out), "--mode", "off", "--on-corrupt", "repeat")
    assert code == 0, err
    assert stdout.strip().splitlines()[-1] == f"wrote {out} (120 frames)"
    assert "timestamps go back after 00:00:01.900" in err
    p = probe(out)
    assert len(p.video_pts) == 120
    assert [round(float(t * p.time_base) * 30) for t in p.video_pts] == list(range(120))


def test_process_copies_the_audio_of_joined_ts_recordings_in_order(
    tmp_path: Path, isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """B1/B2 with sound: the second recording's audio clock restarts too. Every audio packet is
    copied (bytes untouched), re-timed to follow on like the video, so the output is written
    (the muxer refused the backward timestamps: 'returned 22')."""
    clip = _joined_ts(tmp_path / "joined.ts", 60, 60, audio="aac")
    out = tmp_path / "out.mp4"
    code, stdout, err = run_cli(capsys, "process", str(clip), "-o", str(out), "--mode", "off")
    assert code == 0, err
    assert stdout.strip().splitlines()[-1] == f"wrote {out} (120 frames)"
    with av.open(str(clip)) as c:
        src = [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]
    got = probe(out).audio[0]
    # MP4 keeps raw AAC: the muxer drops each packet's 7-byte ADTS header (0xFFF1: no CRC)
    assert len(src) > 150 and all(s[:2] == b"\xff\xf1" for s in src)
    assert [b for _, _, b in got] == [s[7:] for s in src]
    dts = [d for _, d, _ in got]
    assert all(b > a for a, b in itertools.pairwise(dts))
    assert "audio timestamps go back" in err
