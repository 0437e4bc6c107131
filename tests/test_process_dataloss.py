"""File mode never loses a file it did not write (issue 17): matte and PNG-sequence folders,
outputs that appear while processing, renames that fail.

Library-level cases use the fake engine (fast, every pixel known); the command-line cases run
the real ``vcam`` in a child process and send it real signals.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from mediafiles import probe, write_clip

from vcam.config import Config, validate_config
from vcam.errors import OutputError
from vcam.fileproc import FileOptions, process_file

from conftest import color_frames, last_line, run_cli
from fakes import FakeEngine


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
    assert str(info.value) == f"output {out}: cannot put the finished file in place (folder {sub} no longer exists)"
    assert _names(tmp_path) == ["in.mp4"]


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
