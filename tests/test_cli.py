"""The vcam command end to end: real model, real video files, real pyvirtualcam Camera."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import REPO
from tests.helpers.cli import last_line, run_cli, spawn_vcam, wait_for
from tests.helpers.fakes import MemoryCameraBackend, register_memory_backend
from tests.helpers.media import color_frames, count_frames, portrait_frames, write_video
from vcam.errors import Interrupted
from vcam.presets import LIVE_LADDER
from vcam.sinks.virtualcam import SETUP_HINT

pytestmark = pytest.mark.usefixtures("isolated_home")


@pytest.fixture(scope="module")
def portrait_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    frames, truth = portrait_frames(12, size=(320, 180))
    path = write_video(tmp_path_factory.mktemp("media") / "portrait.mp4", frames, Fraction(25))
    return path, truth


@pytest.fixture(scope="module")
def plain_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated clip, for the cases whose picture does not matter (no evaluation data needed)."""
    return write_video(tmp_path_factory.mktemp("media") / "plain.mp4", color_frames(12, (320, 180)), Fraction(25))




def test_process_keeps_every_frame_and_the_rate_and_writes_mattes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], portrait_video: tuple[Path, list[np.ndarray]]
) -> None:
    video, truth = portrait_video
    out, mattes = tmp_path / "out.mp4", tmp_path / "mattes"
    code, stdout, _ = run_cli(
        capsys, "process", str(video), "-o", str(out), "--matte-out", str(mattes),
        "--model-input", "384x216", "--downsample-ratio", "0.5", "--mode", "color",
    )
    assert code == 0
    assert stdout == f"wrote {out} (12 frames)\n"
    assert count_frames(out) == (12, Fraction(25), (320, 180))
    names = sorted(p.name for p in mattes.iterdir())
    assert names == [f"{i:06d}.png" for i in range(12)]
    m = Image.open(mattes / "000011.png")
    assert m.mode == "L" and m.size == (320, 180)
    a = np.asarray(m).astype(np.float32) / 255
    assert np.abs(a - truth[11]).mean() < 0.05  # close to the true alpha, 255 = person
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "mattes", "out.mp4"]


def test_process_refuses_to_overwrite_and_then_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], portrait_video: tuple[Path, list[np.ndarray]]
) -> None:
    video, _ = portrait_video
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    code, _, err = run_cli(capsys, "process", str(video), "-o", str(out), "--mode", "off")
    assert code == 1
    assert last_line(err) == f"vcam: error: output {out} already exists; pass --overwrite to replace it"
    assert out.read_bytes() == b"precious"
    code, _, _ = run_cli(capsys, "process", str(video), "-o", str(out), "--mode", "off", "--overwrite")
    assert code == 0 and count_frames(out)[0] == 12


def test_run_with_a_file_source_writes_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str], portrait_video: tuple[Path, list[np.ndarray]]) -> None:
    video, _ = portrait_video
    stats = tmp_path / "s.json"
    code, _, _ = run_cli(capsys, "run", "--source", str(video), "--output", "null", "--duration", "1.5", "--stats-json", str(stats),
                      "--size", "320x180")
    assert code == 0
    s = json.loads(stats.read_text())
    for key in ("frames_in", "frames_out", "frames_dropped", "fps", "latency_ms", "stage_ms", "provider", "runtime",
                "precision", "model_input", "downsample_ratio"):
        assert key in s
    # realtime preset, model.runtime auto: a rung of the ladder, on the runtime measured cheapest here
    assert s["model_input"] in [list(x) for x in LIVE_LADDER] and s["downsample_ratio"] == 0.5
    assert (s["runtime"], s["provider"]) in {("onnxruntime", "cpu"), ("openvino", "openvino-cpu")}
    assert s["precision"] in ("f32", "bf16")
    assert set(s["latency_ms"]) == {"p50", "p95", "p99"}
    assert s["frames_out"] >= 10 and s["frames_in"] >= s["frames_out"]
    assert {"capture", "inference", "composite", "sink"} <= set(s["stage_ms"])


def test_run_publishes_to_the_virtual_camera(tmp_path: Path, capsys: pytest.CaptureFixture[str], portrait_video: tuple[Path, list[np.ndarray]]) -> None:
    register_memory_backend()
    MemoryCameraBackend.instances.clear()
    video, _ = portrait_video
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"camera:\n  device: {video}\n  size: [320, 180]\noutput:\n  backend: memory\n  size: [160, 90]\neffect:\n  mode: color\n  color: '#ff0000'\n")
    code, _, _ = run_cli(capsys, "run", "--config", str(cfg), "--duration", "1")
    assert code == 0
    [cam] = MemoryCameraBackend.instances
    assert (cam.width, cam.height) == (160, 90) and cam.closed
    assert len(cam.frames) >= 5
    img = np.frombuffer(cam.frames[-1], np.uint8).reshape(90, 160, 3)
    assert img[2, 2].tolist() == [255, 0, 0]  # the top-left corner is background: red


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--source", "7", "--output", "null"],
         "vcam: error: camera 7 (/dev/video7) cannot be opened: it does not exist or another application holds it; run 'vcam devices' to list cameras, then set camera.device or --source"),
        (["run", "--source", "/nonexistent.mp4", "--output", "null"],
         "vcam: error: source /nonexistent.mp4: no such camera or video file; give a camera index (0), a device path (/dev/video0), a video file or 'testpattern'"),
        (["run", "--source", "testpattern", "--mode", "replace", "--output", "null"],
         "vcam: error: config: effect.background: mode 'replace' needs a background image or video path"),
        (["run", "--source", "testpattern", "--mode", "replace", "-b", "/nope.png", "--output", "null"],
         "vcam: error: background image /nope.png: file not found"),
        (["process", "/nope.mp4", "-o", "{tmp}/o.mp4"], "vcam: error: input video /nope.mp4: file not found"),
        (["process", "{video}", "-o", "{tmp}/missing/o.mp4"], "vcam: error: output {tmp}/missing/o.mp4: folder {tmp}/missing does not exist"),
        (["process", "{video}", "-o", "{video}"], "vcam: error: output {video} is the input file; choose another output name"),
        (["run", "--model-input", "8x8"], "vcam: error: --model-input: width and height must be in 16..1920, got 8x8"),
    ],
)
def test_bad_input_gives_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], plain_video: Path, argv: list[str], message: str
) -> None:
    video = str(plain_video)
    argv = [a.format(tmp=tmp_path, video=video) for a in argv]
    code, _, err = run_cli(capsys, *argv)
    assert code == 1
    assert last_line(err) == message.format(tmp=tmp_path, video=video)
    assert "Traceback" not in err


def test_no_virtual_camera_device_explains_v4l2loopback(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    if list(Path("/dev").glob("video*")):
        pytest.skip("this machine has video devices")
    import pyvirtualcam.camera

    monkeypatch.delitem(pyvirtualcam.camera.BACKENDS, "memory", raising=False)
    code, _, err = run_cli(capsys, "run", "--source", "testpattern", "--duration", "1")
    assert code == 1
    assert last_line(err).startswith("vcam: error: virtual camera cannot be opened ('v4l2loopback' backend: No v4l2 loopback device found")
    assert last_line(err).endswith(SETUP_HINT)


def test_corrupt_input_video_and_corrupt_model(tmp_path: Path, capsys: pytest.CaptureFixture[str], plain_video: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(random.Random(0).randbytes(2000))  # fixed: some random bytes probe as a stream
    code, _, err = run_cli(capsys, "process", str(junk), "-o", str(tmp_path / "o.mp4"))
    assert code == 1
    assert last_line(err).startswith(f"vcam: error: input video {junk}: cannot read it as a video (")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\x08\x01" * 100)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model:\n  path: {model}\n")
    code, _, err = run_cli(capsys, "process", str(plain_video), "-o", str(tmp_path / "o.mp4"), "--config", str(cfg))
    assert code == 1
    assert last_line(err) == (
        f"vcam: error: model.path {model}: sha256 does not match rvm_mobilenetv3_fp32 (corrupt or partial?); "
        "run 'vcam models fetch' and remove model.path, or point it at a good copy"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "home", "junk.mp4", "m.onnx"]


def test_check_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text((REPO / "configs" / "default.yaml").read_text())
    assert run_cli(capsys, "check-config", str(good)) == (0, "ok\n", "")
    bad = tmp_path / "bad.yaml"
    bad.write_text("camera:\n  fps: fast\neffect:\n  mode: sepia\n  strength: 3\n")
    code, out, _ = run_cli(capsys, "check-config", str(bad))
    assert code == 1
    assert out == (
        f"{bad}: 3 error(s)\n"
        "  camera.fps: must be a valid number, got 'fast'\n"
        "  effect.mode: must be 'blur', 'replace', 'color' or 'off', got 'sepia'\n"
        "  effect.strength: unknown key (known keys here: mode, blur_strength, background, color, mirror, backgrounds_dir, framing, light)\n"
    )


def test_models_list_and_devices(capsys: pytest.CaptureFixture[str], model_path: Path) -> None:
    code, out, _ = run_cli(capsys, "models", "list")
    assert code == 0
    assert out == f"rvm_mobilenetv3_fp32  {model_path}  14975696 bytes  verified\n"
    code, out, _ = run_cli(capsys, "devices")
    assert code == 0
    assert out.splitlines()[-1].startswith("pyvirtualcam backends: ")


def test_ctrl_c_in_process_leaves_no_output(tmp_path: Path, isolated_home: Path) -> None:
    frames = [np.full((360, 640, 3), i % 256, np.uint8) for i in range(300)]
    video = write_video(tmp_path / "long.mp4", frames, 30)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = spawn_vcam(["process", str(video), "-o", str(out_dir / "o.mp4"), "--matte-out", str(out_dir / "m")])
    # wait until it is writing (the hidden temporary files exist), then interrupt
    try:
        wait_for(lambda: len(list(out_dir.iterdir())) >= 2, 60.0, "the temporary outputs", proc=proc)
    except AssertionError:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"vcam process did not start writing (exit {proc.returncode}): {err.decode()[-2000:]}") from None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.decode().strip().splitlines()[-1] == "vcam: interrupted"
    assert list(out_dir.iterdir()) == []


def _frames_out() -> int:
    """The running daemon's output frame count, from its control socket (0 while it has none)."""
    from vcam.errors import ControlError
    from vcam.live.control_socket import Request, send_request

    try:
        return int(send_request(Request("status"), timeout=5.0)["frames_out"])
    except ControlError:
        return 0


def test_ctrl_c_in_run_exits_130_and_writes_stats(tmp_path: Path, isolated_home: Path) -> None:
    stats = tmp_path / "s.json"
    proc = spawn_vcam(["run", "--source", "testpattern", "--size", "320x180", "--output", "null", "--stats-json", str(stats)])
    assert proc.stderr is not None
    line = b""
    while b"running:" not in line and proc.poll() is None:
        line = proc.stderr.readline()
    wait_for(lambda: _frames_out() > 0, 60.0, "frames to reach the sink", proc=proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    assert err.decode().strip().splitlines()[-1] == "vcam: interrupted"
    assert json.loads(stats.read_text())["frames_out"] > 0


# -- a bad flag is blamed on the flag, not on the config file (issue 17, D18) ---------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--size", "1x1", "--output", "null"], "--size: width and height must be in 16..8192, got 1x1"),
        (["run", "--fps", "0", "--output", "null"], "--fps: must be greater than 0, got 0.0"),
        (["run", "--output-size", "9000x100", "--output", "null"],
         "--output-size: width and height must be in 16..8192, got 9000x100"),
        (["process", "in.mp4", "-o", "out.mp4", "--downsample-ratio", "2"],
         "--downsample-ratio: must be less than or equal to 1, got 2.0"),
        (["process", "in.mp4", "-o", "out.mp4", "--providers", "gpu"],
         "--providers: must be 'tensorrt', 'cuda' or 'cpu', got 'gpu'"),
        (["process", "in.mp4", "-o", "out.mp4", "--blur-strength", "0"],
         "--blur-strength: must be greater than or equal to 1, got 0"),
    ],
)
def test_a_bad_flag_names_the_flag_not_the_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("camera:\n  fps: 30\n")
    assert run_cli(capsys, *argv, "--config", str(good)) == (1, "", f"vcam: error: {message}\n")
    assert run_cli(capsys, *argv) == (1, "", f"vcam: error: {message}\n")  # and without a file


def test_errors_in_the_file_and_in_flags_are_each_blamed_on_their_own_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("camera:\n  fps: fast\n")
    assert run_cli(capsys, "run", "--config", str(bad), "--size", "1x1", "--threads", "999", "--output", "null") == (
        1, "",
        f"vcam: error: {bad} and the command line: 3 errors:\n"
        "  --size: width and height must be in 16..8192, got 1x1\n"
        "  camera.fps: must be a valid number, got 'fast'\n"
        "  --threads: must be less than or equal to 256, got 999\n",
    )
    assert run_cli(capsys, "run", "--size", "1x1", "--threads", "999", "--output", "null") == (
        1, "",
        "vcam: error: command line: 2 errors:\n"
        "  --size: width and height must be in 16..8192, got 1x1\n"
        "  --threads: must be less than or equal to 256, got 999\n",
    )
    # The file's own error is still the file's, with its key path.
    assert run_cli(capsys, "run", "--config", str(bad), "--size", "64x36", "--output", "null") == (
        1, "", f"vcam: error: {bad}: camera.fps: must be a valid number, got 'fast'\n"
    )

# -- the daemon stays up (issue 17) ------------------------------------------------------------


class _Daemon:
    """``vcam run`` in a child process (no display: headless), its stderr collected by a thread."""

    def __init__(self, args: list[str]) -> None:
        import threading

        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vcam", "run", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=env, cwd=REPO, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def err(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in the log (exit {self.proc.poll()}):\n{self.err[-3000:]}")
            time.sleep(0.005)

    def finish(self, timeout: float = 60.0) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(10)
        return code


def _status() -> dict[str, object]:
    from vcam.errors import ControlError
    from vcam.live.control_socket import Request, send_request

    try:
        return send_request(Request("status"), timeout=10)
    except ControlError:
        return {}


SMALL_RUN = ["--source", "testpattern", "--size", "160x90", "--fps", "10", "--output", "null", "--no-tray",
             "--model-input", "64x36", "--threads", "1"]


def test_sighup_during_start_up_does_not_kill_the_daemon(isolated_home: Path) -> None:
    """systemctl --user reload while the model loads: the daemon comes up, serves, and does
    the reload once it runs (the config may have changed after it was read)."""
    d = _Daemon(SMALL_RUN)
    try:
        d.wait_for_line("vcam: quality preset")  # building the engine: before "running"
        assert not any("running:" in line for line in d.lines)
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 90
        while not _status() and d.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert d.proc.poll() is None, f"died with {d.proc.returncode}:\n{d.err[-3000:]}"
        st = _status()
        assert st["mode"] == "blur"
        frames = int(st["frames_out"])  # type: ignore[call-overload]
        deadline = time.monotonic() + 60
        while int(_status().get("frames_out", 0)) <= frames and time.monotonic() < deadline:  # type: ignore[call-overload]
            time.sleep(0.05)
        assert int(_status()["frames_out"]) > frames  # type: ignore[call-overload]
        config = isolated_home / ".config" / "vcam" / "config.yaml"
        d.wait_for_line(f"vcam: reloading config file {config} on request")
        d.proc.send_signal(signal.SIGTERM)
        code = d.finish()
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
    assert code == 0, d.err
    assert "vcam: stopped (stopped)" in d.lines


def test_sigterm_during_start_up_is_a_clean_stop(isolated_home: Path, tmp_path: Path) -> None:
    rec = tmp_path / "rec.mp4"
    d = _Daemon(["--source", "testpattern", "--size", "160x90", "--fps", "10", "--output", str(rec), "--no-tray",
                 "--model-input", "64x36", "--threads", "1"])
    d.wait_for_line("vcam: quality preset")
    d.proc.send_signal(signal.SIGTERM)
    code = d.finish()
    assert code == 0, d.err
    assert "vcam: stopped (stopped)" in d.lines
    assert not (isolated_home.parent / "run" / "vcam" / "control.sock").exists()


@pytest.mark.parametrize("size", ["640x360", "320x180"])
def test_repeated_ctrl_c_while_recording_keeps_the_recording(isolated_home: Path, tmp_path: Path, size: str) -> None:
    """Ten SIGINTs 20 ms apart: the first stops, the rest must not cut the finishing short."""
    sock = isolated_home.parent / "run" / "vcam" / "control.sock"
    for run in range(3):
        rec = tmp_path / f"rec{run}.mp4"
        d = _Daemon(["--source", "testpattern", "--output", str(rec), "--size", size])
        try:
            d.wait_for_line("vcam: running:")
            deadline = time.monotonic() + 60
            while int(_status().get("frames_out", 0)) < 5 and time.monotonic() < deadline:  # type: ignore[call-overload]
                time.sleep(0.05)
            for _ in range(10):
                d.proc.send_signal(signal.SIGINT)
                time.sleep(0.02)
            code = d.finish()
        finally:
            if d.proc.poll() is None:
                d.proc.kill()
        assert code == 130, f"run {run}: {d.err[-3000:]}"
        assert d.lines[-1] == "vcam: interrupted"
        assert rec.exists(), f"run {run}: the recording was deleted:\n{d.err[-3000:]}"
        n, _rate, (w, h) = count_frames(rec)
        assert n >= 5 and f"{w}x{h}" == size
        assert not sock.exists(), f"run {run}: stale control socket"


def test_a_full_disk_while_recording_keeps_the_recording(isolated_home: Path, tmp_path: Path) -> None:
    """Disk full, made real with RLIMIT_FSIZE in the child (every write past the limit fails
    with EFBIG, as ENOSPC on a full disk): the recording so far stays, playable, and vcam
    stops with one clear line (exit 1)."""
    import re
    import resource

    limit = 100_000
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rec = out_dir / "rec.mp4"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("DISPLAY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vcam", "run", "--source", "testpattern", "--size", "640x360", "--output", str(rec),
         "--no-tray", "--model-input", "64x36", "--threads", "1", "--duration", "120"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=REPO, text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY)),
    )
    try:
        _, err = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    assert re.fullmatch(
        rf"vcam: error: output {re.escape(str(rec))}: writing failed after \d+ frames \(\[Errno 27\] File too large: "
        r"'.*'\); the recording up to there was kept; free some space and start again",
        last_line(err),
    ), err
    assert [p.name for p in out_dir.iterdir()] == ["rec.mp4"]  # no temporary file left
    assert rec.stat().st_size <= limit
    n, _rate, size = count_frames(rec)
    assert n >= 10 and size == (640, 360)


def test_a_background_pillow_cannot_decode_is_one_clear_line_at_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A picture whose decoder is missing from Pillow (it raises NotImplementedError, not an
    OSError) is a known bad input at start-up too: exit 1 with its line, not an internal error."""
    from tests.helpers.media import DDS_HEADER

    bad = tmp_path / "bad.png"
    bad.write_bytes(DDS_HEADER)
    code, _, err = run_cli(capsys, "run", "--source", "testpattern", "--output", "null", "--mode", "replace",
                           "-b", str(bad), "--duration", "1", "--no-tray")
    assert (code, last_line(err)) == (
        1, f"vcam: error: background image {bad}: cannot read it (NotImplementedError: Unimplemented pixel format 810899781)"
    )


@pytest.mark.parametrize("argv", [["models", "list", "-q"], ["-q", "models", "list"], ["check-config", "-q"],
                                  ["ctl", "status", "--quiet"]])
def test_global_flags_are_taken_after_the_command_too(argv: list[str]) -> None:
    """`vcam process ... -q` was 'unrecognized arguments': -q / -v go before or after the verb."""
    from vcam.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (args.quiet, args.verbose) == (True, 0)
    assert build_parser().parse_args(["-v", "models", "list"]).verbose == 1
    assert build_parser().parse_args(["models", "list", "-vv"]).verbose == 2
    assert build_parser().parse_args(["models", "list"]).quiet is False


def _define_a_class_whose_attribute_is_interrupted(stop: KeyboardInterrupt) -> None:
    class Attribute:
        def __set_name__(self, owner: type, name: str) -> None:
            raise stop  # as a Ctrl-C that lands while numba's classes are created on import

    type("Graph", (), {"_exit_points": Attribute()})


@pytest.mark.parametrize(
    ("raised", "code", "line"),
    [
        (lambda: _define_a_class_whose_attribute_is_interrupted(KeyboardInterrupt()), 130, "vcam: interrupted"),
        (lambda: _define_a_class_whose_attribute_is_interrupted(Interrupted(signal.SIGTERM)), 143, "vcam: interrupted"),
        (lambda: int("x"), 2,
         "vcam: internal error: ValueError: invalid literal for int() with base 10: 'x' (run with -v for details and please report it)"),
    ],
    ids=["ctrl-c-wrapped", "sigterm-wrapped", "a-real-bug"],
)
def test_a_stop_that_python_wrapped_in_another_error_is_still_an_interruption(
    raised: Callable[[], object], code: int, line: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen in the plain-clone check (2026-12-03): Ctrl-C while numba was being imported
    reached the user as "internal error: RuntimeError: Error calling __set_name__ ...", exit 2
    (Python 3.11 wraps an exception raised in ``__set_name__``). It is the user's stop."""
    import vcam.cli

    def command(args: object) -> int:
        raised()
        return 0

    monkeypatch.setattr(vcam.cli, "_cmd_doctor", command)
    rc, _, err = run_cli(capsys, "doctor")
    assert (rc, last_line(err)) == (code, line)
