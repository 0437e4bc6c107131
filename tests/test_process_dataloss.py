"""File mode never loses a file it did not write (issue 17): matte and PNG-sequence folders,
outputs that appear while processing, renames that fail, killed workers, SIGHUP, a closed pipe.

Library-level cases use the fake engine (fast, every pixel known); the command-line cases run
the real ``vcam`` in a child process and send it real signals.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import REPO
from tests.helpers.cli import last_line, run_cli
from tests.helpers.fakes import FakeEngine
from tests.helpers.media import color_frames, damage_packet, probe, write_clip
from vcam.config import Config, validate_config
from vcam.errors import OutputError
from vcam.files.process import FileOptions, process_file


def _cfg() -> Config:
    return validate_config({"effect": {"mode": "color", "color": [0, 0, 255]}})


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _once(action: Callable[[], None]) -> Callable[[int | None], Callable[[int], None]]:
    """A frame-progress hook that runs ``action`` once, while frames are being written (the
    first progress report comes before the output is finished)."""
    done: list[bool] = []

    def factory(total: int | None) -> Callable[[int], None]:
        def tick(n: int) -> None:
            if not done:
                done.append(True)
                action()

        return tick

    return factory


def _process(inp: Path, out: Path, during: Callable[[], None] | None = None, **opts: object) -> dict[str, object]:
    return process_file(
        _cfg(), inp, out, FileOptions(**opts), engine=FakeEngine(),  # type: ignore[arg-type]
        frame_progress=_once(during) if during else None,
    )


def _mattes(n: int) -> list[str]:
    return [f"{i:06d}.png" for i in range(n)]


# -- D1: a matte folder holding anything vcam did not write is never deleted -------------------


def test_matte_folder_holding_the_input_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    inp = write_clip(clips / "talk.mp4", color_frames(3))
    (clips / "notes.txt").write_text("n\n")
    out = tmp_path / "talk-blur.mp4"
    with pytest.raises(OutputError) as info:
        _process(inp, out, matte_out=str(clips), overwrite=True)
    assert str(info.value) == f"matte folder {clips} holds the input video {inp}; give an empty or new folder"
    assert _names(clips) == ["notes.txt", "talk.mp4"]
    assert (clips / "notes.txt").read_text() == "n\n"
    assert _names(tmp_path) == ["clips"]


def test_matte_folder_holding_other_files_is_refused_and_named(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(3))
    m = tmp_path / "m"
    m.mkdir()
    for name in ["000000.png", "notes.txt", "b.jpg", "c.mov", "d.wav"]:
        (m / name).write_bytes(b"keep")
    for overwrite in (False, True):
        with pytest.raises(OutputError) as info:
            _process(inp, tmp_path / "o.mp4", matte_out=str(m), overwrite=overwrite)
        assert str(info.value) == (
            f"matte folder {m} holds files vcam did not write (b.jpg, c.mov, d.wav and 1 more); "
            "vcam replaces only its own mattes (000000.png, ...): give an empty or new folder"
        )
        assert _names(m) == ["000000.png", "b.jpg", "c.mov", "d.wav", "notes.txt"]
    assert _names(tmp_path) == ["in.mp4", "m"]


def test_matte_folder_holding_the_output_is_refused(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(3))
    m = tmp_path / "m"
    m.mkdir()
    with pytest.raises(OutputError) as info:
        _process(inp, m / "o.mp4", matte_out=str(m), overwrite=True)
    assert str(info.value) == f"matte folder {m} would hold the output {m / 'o.mp4'}; give an empty or new folder"
    assert _names(m) == []


def test_overwrite_replaces_only_the_old_mattes(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(4))
    m = tmp_path / "m"
    m.mkdir()
    for name in _mattes(10):
        (m / name).write_bytes(b"old")
    with pytest.raises(OutputError) as info:
        _process(inp, tmp_path / "o.mp4", matte_out=str(m))
    assert str(info.value) == f"matte folder {m} already holds 10 matte files; pass --overwrite to replace them"
    assert _names(m) == _mattes(10)
    _process(inp, tmp_path / "o.mp4", matte_out=str(m), overwrite=True)
    assert _names(m) == _mattes(4)  # the six old ones past the new end are gone too
    assert all(cv2.imread(str(m / n), cv2.IMREAD_GRAYSCALE) is not None for n in _mattes(4))
    assert _names(tmp_path) == ["in.mp4", "m", "o.mp4"]


def test_an_existing_empty_matte_folder_is_kept_and_filled(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(3))
    m = tmp_path / "m"
    m.mkdir()
    inode = m.stat().st_ino
    _process(inp, tmp_path / "o.mp4", matte_out=str(m))
    assert _names(m) == _mattes(3)
    assert m.stat().st_ino == inode  # the user's own folder, not a replacement
    assert _names(tmp_path) == ["in.mp4", "m", "o.mp4"]


def test_png_sequence_folder_holding_other_files_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(3))
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "000000.png").write_bytes(b"old")
    (frames / "edit.kdenlive").write_bytes(b"keep")
    with pytest.raises(OutputError) as info:
        _process(inp, frames, codec="png", overwrite=True)
    assert str(info.value) == (
        f"output {frames} holds files vcam did not write (edit.kdenlive); vcam replaces only its own PNG sequence "
        "(000000.png, ..., audio.mka): give an empty or new folder"
    )
    assert _names(frames) == ["000000.png", "edit.kdenlive"]
    (frames / "edit.kdenlive").unlink()
    for name in ["000001.png", "000002.png", "000003.png", "audio.mka"]:
        (frames / name).write_bytes(b"old")
    _process(inp, frames, codec="png", overwrite=True)
    assert _names(frames) == [*_mattes(3), "audio.mka"]
    assert (frames / "000000.png").read_bytes() != b"old"
    assert _names(tmp_path) == ["frames", "in.mp4"]


def test_cli_matte_out_over_the_input_folder_or_the_current_folder_deletes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the issue's own steps
    monkeypatch.chdir(tmp_path)
    Path("clips").mkdir()
    write_clip(Path("clips/talk.mp4"), color_frames(3))
    Path("clips/notes.txt").write_text("n\n")
    code, _, err = run_cli(capsys, "process", "clips/talk.mp4", "-o", "talk-blur.mp4", "--matte-out", "clips", "--overwrite")
    assert code == 1
    assert last_line(err) == "vcam: error: matte folder clips holds the input video clips/talk.mp4; give an empty or new folder"
    assert _names(tmp_path / "clips") == ["notes.txt", "talk.mp4"]
    code, _, err = run_cli(capsys, "process", "clips/talk.mp4", "-o", "talk-blur.mp4", "--matte-out", ".", "--overwrite")
    assert code == 1
    assert last_line(err) == "vcam: error: matte folder . holds the input video clips/talk.mp4; give an empty or new folder"
    assert _names(tmp_path) == ["clips", "home"]
    assert _names(tmp_path / "clips") == ["notes.txt", "talk.mp4"]


# -- D2: files put into the matte folder during a run are kept ---------------------------------


@pytest.mark.parametrize("existing", [True, False], ids=["empty-folder", "new-folder"])
def test_files_put_into_the_matte_folder_while_processing_are_kept(tmp_path: Path, existing: bool) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(4))
    m = tmp_path / "m"
    if existing:
        m.mkdir()

    def put_notes() -> None:
        m.mkdir(exist_ok=True)
        (m / "notes.txt").write_text("mine\n")

    _process(inp, tmp_path / "o.mp4", during=put_notes, matte_out=str(m))
    assert _names(m) == [*_mattes(4), "notes.txt"]
    assert (m / "notes.txt").read_text() == "mine\n"
    assert _names(tmp_path) == ["in.mp4", "m", "o.mp4"]


def test_mattes_written_by_someone_else_while_processing_are_kept(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(4))
    m = tmp_path / "m"
    m.mkdir()

    def other_run() -> None:
        (m / "000000.png").write_bytes(b"theirs")

    with pytest.raises(OutputError) as info:
        _process(inp, tmp_path / "o.mp4", during=other_run, matte_out=str(m))
    alt = tmp_path / "m-1"
    assert str(info.value) == (
        f"matte folder {m}: 000000.png appeared in it while processing; kept it and wrote this run's files to {alt}; "
        "pass --overwrite to replace them"
    )
    assert (m / "000000.png").read_bytes() == b"theirs" and _names(m) == ["000000.png"]
    assert _names(alt) == _mattes(4)
    assert _names(tmp_path) == ["in.mp4", "m", "m-1", "o.mp4"]


# -- D13: an output that appears while processing is not replaced without --overwrite ----------


def test_an_output_that_appears_while_processing_is_kept(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(4))
    out = tmp_path / "o.mp4"
    with pytest.raises(OutputError) as info:
        _process(inp, out, during=lambda: out.write_bytes(b"theirs"))
    alt = tmp_path / "o-1.mp4"
    assert str(info.value) == (
        f"output {out} appeared while processing; kept it and wrote this run's result to {alt}; "
        "pass --overwrite to replace it"
    )
    assert out.read_bytes() == b"theirs"
    assert len(probe(alt).video_pts) == 4
    assert _names(tmp_path) == ["in.mp4", "o-1.mp4", "o.mp4"]
    # with --overwrite, replacing it is what was asked for
    _process(inp, out, during=lambda: out.write_bytes(b"theirs"), overwrite=True)
    assert len(probe(out).video_pts) == 4


def test_two_runs_to_the_same_output_keep_both_results(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(4))
    other = write_clip(tmp_path / "other.mp4", color_frames(6))
    out = tmp_path / "o.mp4"
    # the second run starts and finishes while the first is writing
    with pytest.raises(OutputError, match=r"appeared while processing; kept it and wrote this run's result to .*o-1\.mp4;"):
        _process(inp, out, during=lambda: _process(other, out))
    assert len(probe(out).video_pts) == 6  # the run that finished first
    assert len(probe(tmp_path / "o-1.mp4").video_pts) == 4
    assert _names(tmp_path) == ["in.mp4", "o-1.mp4", "o.mp4", "other.mp4"]


def test_a_png_sequence_that_appears_while_processing_is_kept(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(3), audio=None)
    frames = tmp_path / "frames"

    def other_run() -> None:
        frames.mkdir()
        (frames / "000000.png").write_bytes(b"theirs")

    with pytest.raises(OutputError) as info:
        _process(inp, frames, during=other_run, codec="png")
    alt = tmp_path / "frames-1"
    assert str(info.value) == (
        f"output {frames}: 000000.png appeared in it while processing; kept it and wrote this run's files to {alt}; "
        "pass --overwrite to replace them"
    )
    assert _names(frames) == ["000000.png"] and _names(alt) == _mattes(3)


# -- D12: the final rename failing is a clear error and leaves no temporary file ---------------


def test_output_folder_removed_while_processing(tmp_path: Path) -> None:
    # enough frames that the encoder has written packets (the file is open) before the end
    inp = write_clip(tmp_path / "in.mp4", color_frames(80), audio=None)
    sub = tmp_path / "sub"
    sub.mkdir()
    out = sub / "o.mkv"  # (an MP4 is opened again to move its index to the front: that fails first)
    with pytest.raises(OutputError) as info:
        _process(inp, out, during=lambda: shutil.rmtree(sub))
    # where it fails depends on when the folder went: while packets are written, when the
    # encoder is flushed, or when the finished file is moved into place; each names the folder
    assert str(info.value) in {
        f"output {out}: writing failed (folder {sub} no longer exists)",
        f"output {out}: finishing the file failed (folder {sub} no longer exists)",
        f"output {out}: cannot put the finished file in place (folder {sub} no longer exists)",
    }
    assert _names(tmp_path) == ["in.mp4"]


def test_output_folder_removed_before_the_first_packet_names_the_folder(tmp_path: Path) -> None:
    # the encoder holds its first frames back; the file is created at the first packet, which
    # then cannot be (FFmpeg says only "No such file or directory")
    from vcam.sinks.file import FileSink

    sub = tmp_path / "sub"
    sub.mkdir()
    sink = FileSink(sub / "o.mkv", (160, 96), 30)
    shutil.rmtree(sub)
    with pytest.raises(OutputError) as info:
        for frame in color_frames(80):
            sink.send(frame)
        sink.close()
    assert str(info.value) in {
        f"output {sub / 'o.mkv'}: writing failed (folder {sub} no longer exists)",
        f"output {sub / 'o.mkv'}: finishing the file failed (folder {sub} no longer exists)",
    }
    assert _names(tmp_path) == []


def test_a_folder_at_the_output_name_while_processing(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(4))
    out = tmp_path / "o.mp4"
    with pytest.raises(OutputError) as info:
        _process(inp, out, during=lambda: (out.mkdir(), (out / "x").write_text("x")), overwrite=True)
    alt = tmp_path / "o-1.mp4"
    assert str(info.value) == f"output {out} became a folder while processing; kept it and wrote this run's result to {alt}"
    assert _names(out) == ["x"] and len(probe(alt).video_pts) == 4
    assert _names(tmp_path) == ["in.mp4", "o-1.mp4", "o.mp4"]


def test_matte_folder_parent_removed_while_processing(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(4))
    sub = tmp_path / "sub"
    sub.mkdir()
    m = sub / "m"
    with pytest.raises(OutputError) as info:
        _process(inp, tmp_path / "o.mp4", during=lambda: shutil.rmtree(sub), matte_out=str(m))
    assert str(info.value) == f"matte folder {m}: cannot put the finished files in place (folder {sub} no longer exists)"
    # the video was finished before the mattes
    assert _names(tmp_path) == ["in.mp4", "o.mp4"]


# -- command line: B5, B6, B11, D11, D14 -------------------------------------------------------


def _spawn(args: list[str], **kw: object) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", "vcam", *args], stdout=kw.pop("stdout", subprocess.PIPE), stderr=subprocess.PIPE,
        env=env, cwd=kw.pop("cwd", REPO), **kw,
    )


@pytest.mark.usefixtures("isolated_home")
def test_an_unwritable_stats_file_is_refused_before_any_work(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(3))
    out = tmp_path / "o.mp4"
    for stats, message in [
        (tmp_path / "missing" / "s.json", f"--stats-json {tmp_path}/missing/s.json: folder {tmp_path}/missing does not exist"),
        (tmp_path, f"--stats-json {tmp_path}: is a folder; give a file name such as stats.json"),
    ]:
        proc = _spawn(["process", str(inp), "-o", str(out), "--stats-json", str(stats)])
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err.decode()
        assert last_line(err.decode()) == f"vcam: error: {message}"
        assert "matting engine" not in err.decode()  # the model was not even loaded
        assert not out.exists()


@pytest.mark.usefixtures("isolated_home")
@pytest.mark.parametrize("command", ["models", "process"])
def test_a_closed_pipe_ends_quietly_with_141(tmp_path: Path, command: str) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(3))
    argv = ["-q", "models", "list"] if command == "models" else ["-q", "process", str(inp), "-o", str(tmp_path / "o.mp4")]
    r, w = os.pipe()
    os.close(r)  # like `| head -0`: nobody reads what vcam prints
    proc = _spawn(argv, stdout=w)
    os.close(w)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err.decode()
    assert err.decode() == ""
    if command == "process":
        assert len(probe(tmp_path / "o.mp4").video_pts) == 3  # the work itself was done


@pytest.mark.usefixtures("isolated_home")
@pytest.mark.parametrize("argv", [["-o", "{tmp}/pngs/", "--codec", "png"], ["{tmp}/good.mp4", "-o", "{tmp}/out/", "--matte-out", "{tmp}/m"]],
                         ids=["png-sequence", "matte-folders"])
def test_no_empty_folder_vcam_created_is_left_after_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    bad = write_clip(tmp_path / "bad.mp4", color_frames(6), options={"g": "1"}, audio=None)
    damage_packet(bad, 3)
    write_clip(tmp_path / "good.mp4", color_frames(2), options={"g": "1"}, audio=None)
    damage_packet(tmp_path / "good.mp4", 1)  # fails too: nothing is written anywhere
    code, _, err = run_cli(capsys, "process", str(bad), *[a.format(tmp=tmp_path) for a in argv], "--mode", "off")
    assert code == 1, err
    assert _names(tmp_path) == ["bad.mp4", "good.mp4", "home"]


def _wait_writing(proc: subprocess.Popen[bytes], folder: Path, count: int, timeout: float = 180.0) -> None:
    """Wait until ``count`` hidden temporary files are being written in ``folder``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if folder.is_dir() and len([p for p in folder.iterdir() if p.name.startswith(".")]) >= count:
            return
        time.sleep(0.05)
    proc.kill()
    _, err = proc.communicate(timeout=30)
    raise AssertionError(f"vcam process did not start writing (exit {proc.returncode}): {err.decode()[-2000:]}")


def _long_inputs(tmp_path: Path, n: int = 2, frames: int = 150) -> list[Path]:
    pictures = [np.full((360, 640, 3), i % 256, np.uint8) for i in range(frames)]
    return [write_clip(tmp_path / f"long{i}.mp4", pictures, rate=30) for i in range(n)]


@pytest.mark.usefixtures("isolated_home")
@pytest.mark.parametrize(
    ("jobs", "sig", "group"),
    [("1", signal.SIGHUP, False), ("2", signal.SIGHUP, True), ("2", signal.SIGTERM, False), ("2", signal.SIGINT, True)],
    ids=["sighup", "terminal-closed-jobs-2", "sigterm-jobs-2", "ctrl-c-jobs-2"],
)
def test_stop_signals_leave_no_temporary_file_and_exit_128_plus_the_signal(
    tmp_path: Path, jobs: str, sig: signal.Signals, group: bool
) -> None:
    inputs = _long_inputs(tmp_path)
    out, m = tmp_path / "out", tmp_path / "m"
    # group: the signal reaches every process of the job, as when the terminal is closed
    proc = _spawn(["process", *map(str, inputs), "-o", f"{out}/", "--jobs", jobs, "--matte-out", str(m)], start_new_session=True)
    _wait_writing(proc, out, int(jobs))
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err.decode()
    assert last_line(err.decode()) == "vcam: interrupted"
    assert "Traceback" not in err.decode()
    assert _names(tmp_path) == ["home", "long0.mp4", "long1.mp4"]  # not even the folders vcam made


def _workers_of(pid: int) -> list[int]:
    """The --jobs worker processes of ``pid`` (not multiprocessing's resource tracker)."""
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(k) for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]


@pytest.mark.usefixtures("isolated_home")
def test_a_killed_worker_leaves_no_temporary_file_and_the_others_go_on(tmp_path: Path) -> None:
    inputs = _long_inputs(tmp_path)
    out, m = tmp_path / "out", tmp_path / "m"
    proc = _spawn(["process", *map(str, inputs), "-o", f"{out}/", "--jobs", "2", "--matte-out", str(m)])
    _wait_writing(proc, out, 2)
    workers = _workers_of(proc.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err.decode()
    written = _names(out)
    assert len(written) == 1, (written, err.decode())  # the other file, and no temporary file
    done = written[0]
    lost = inputs[0] if done == "long1.mp4" else inputs[1]
    assert f"vcam: error: {lost}: worker process exited unexpectedly (killed by SIGKILL); its temporary files were removed" in err.decode()
    assert last_line(err.decode()) == f"vcam: error: 1 of 2 files failed: {lost}", err.decode()
    assert stdout.decode().splitlines()[-1] == "1 of 2 files written"
    assert _names(m) == [Path(done).stem]  # the mattes of the file that was written, no temporary folder
    assert len(probe(out / done).video_pts) == 150


# -- a stop signal in the gaps around opening and deleting the output -------------------------


def test_a_stop_signal_while_the_output_opens_deletes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM arriving while the sink opens (its temporary file already made): it waits
    until the sink is open, then stops the run, and the temporary file is deleted."""
    import vcam.files.process as process
    from vcam.errors import Interrupted
    from vcam.signals import stop_signals_as_interrupt

    inp = write_clip(tmp_path / "in.mp4", color_frames(5))
    out = tmp_path / "out"
    out.mkdir()
    opened = process._open_sink

    def open_then_signal(*args: object) -> object:
        sink = opened(*args)  # type: ignore[arg-type]
        assert [p.name.startswith(".") for p in out.iterdir()] == [True]  # its temporary file
        signal.raise_signal(signal.SIGTERM)  # held: the sink is not handed back yet
        return sink

    monkeypatch.setattr(process, "_open_sink", open_then_signal)
    with stop_signals_as_interrupt(), pytest.raises(Interrupted):
        _process(inp, out / "o.mp4")
    assert _names(out) == []


def test_the_temporary_file_goes_even_when_closing_the_container_fails(tmp_path: Path) -> None:
    from vcam.sinks.file import FileSink

    sink = FileSink(tmp_path / "o.mp4", (160, 96), 30)
    sink.send(color_frames(1)[0])
    real = sink._container

    class Breaks:
        def close(self) -> None:
            real.close()
            raise RuntimeError("close failed")  # not one of the errors it expects

    sink._container = Breaks()
    with pytest.raises(RuntimeError, match="close failed"):
        sink.abort()
    assert _names(tmp_path) == []


def test_a_signal_between_two_handler_swaps_leaves_no_handler_of_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """hold_stop_signals swaps three handlers; a SIGTERM whose (old) handler runs after the
    first swap must not leave SIGINT with the block's handler (Ctrl-C would be lost)."""
    from vcam import signals
    from vcam.errors import Interrupted

    before = signal.getsignal(signal.SIGINT)
    real = signal.signal
    calls: list[int] = []

    def swap(sig: int, handler: object) -> object:
        calls.append(sig)
        if len(calls) == 2:  # SIGTERM came after the first swap: signal.signal runs its old
            raise Interrupted(signal.SIGTERM)  # handler before it swaps (CPython checks first)
        return real(sig, handler)  # type: ignore[arg-type]

    monkeypatch.setattr(signals.signal, "signal", swap)
    with pytest.raises(Interrupted), signals.hold_stop_signals():
        pytest.fail("the block must not run")
    monkeypatch.setattr(signals.signal, "signal", real)
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("vcams", [True, False], ids=["vcam's tracker", "plain tracker"])
def test_the_resource_tracker_says_nothing_after_vcams_last_line(vcams: bool) -> None:
    """A semaphore left by a killed worker is removed by multiprocessing's resource tracker
    when vcam ends; the tracker vcam starts does it without printing warnings after vcam's
    last line (the plain one, started as multiprocessing does, prints two)."""
    start = "from vcam.files.workers import _start_resource_tracker as s; s()" if vcams else (
        "from multiprocessing import resource_tracker; resource_tracker.ensure_running()")
    code = f"{start}\nfrom multiprocessing import resource_tracker\nresource_tracker.register('/mp-vcam-test-gone', 'semaphore')\nprint('done')"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert res.returncode == 0 and res.stdout == "done\n", res.stderr
    if vcams:
        assert res.stderr == ""
    else:
        assert "leaked semaphore objects" in res.stderr and "No such file or directory" in res.stderr


class _SwallowsASignal:
    """An object whose finaliser receives a signal: Python runs the handler there and drops
    the exception it raises ("Exception ignored in ..."), as in a generator closed by the
    garbage collector."""

    def __init__(self, sig: int) -> None:
        self.sig = sig

    def __del__(self) -> None:
        signal.raise_signal(self.sig)
        sum(range(10))  # a few bytecodes: the handler runs here, inside the finaliser


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_stop_whose_exception_a_finaliser_swallowed_still_stops_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals
) -> None:
    """The stop handler's exception, dropped by Python inside a finaliser, is raised again at
    the next poll of the frame loop: the file stops and its temporary output is deleted,
    instead of being written in full as if no signal had come."""
    from vcam.signals import stop_signals_as_interrupt

    inp = write_clip(tmp_path / "in.mp4", color_frames(40))
    out = tmp_path / "out"
    out.mkdir()
    dropped: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_value))

    def make_and_drop() -> None:
        _SwallowsASignal(sig)  # on the main thread (where Python runs handlers): its finaliser runs now

    with stop_signals_as_interrupt(), pytest.raises(KeyboardInterrupt) as caught:
        _process(inp, out / "o.mp4", make_and_drop)  # while the file is being written
    assert len(dropped) == 1 and isinstance(dropped[0], KeyboardInterrupt)  # Python did drop it
    assert getattr(caught.value, "signum", signal.SIGINT) == sig
    assert _names(out) == []


@pytest.mark.usefixtures("isolated_home")
def test_a_signal_the_command_was_started_ignoring_stays_ignored(tmp_path: Path) -> None:
    """``nohup vcam process ...`` (SIGHUP ignored from the start): closing the terminal does not
    stop the command, which writes its file; SIGTERM still stops it."""
    inputs = _long_inputs(tmp_path, n=1)
    out = tmp_path / "out"

    def nohup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    for sig, code in [(signal.SIGHUP, 0), (signal.SIGTERM, 128 + signal.SIGTERM)]:
        shutil.rmtree(out, ignore_errors=True)
        proc = _spawn(["process", str(inputs[0]), "-o", f"{out}/", "--mode", "color"], preexec_fn=nohup)
        _wait_writing(proc, out, 1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == code, err.decode()
        if code == 0:
            assert _names(out) == ["long0.mp4"], err.decode()
        else:
            assert not out.exists(), err.decode()  # not even the folder vcam made
