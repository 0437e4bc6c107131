"""``vcam process`` end to end with the real model: audio kept, transparency, batch naming,
parallel jobs, damaged input, and Ctrl-C (a real SIGINT to a real process)."""

from __future__ import annotations

import signal
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.cli import last_line, run_cli, spawn_vcam
from tests.helpers.media import color_frames, damage_packet, decode_rgba, portrait_frames, probe, write_clip

pytestmark = pytest.mark.usefixtures("isolated_home")


@pytest.fixture(scope="module")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """A person over a garden (with sound), and the true alpha of each frame."""
    frames, truth = portrait_frames(8, size=(320, 180))
    return write_clip(tmp_path_factory.mktemp("media") / "portrait.mp4", frames, rate=25), truth


@pytest.fixture(scope="module")
def portrait_clip(portrait: tuple[Path, list[np.ndarray]]) -> Path:
    return portrait[0]




def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_process_keeps_audio_and_timing_with_the_real_model(tmp_path: Path, capsys: pytest.CaptureFixture[str], portrait_clip: Path) -> None:
    out = tmp_path / "out.mp4"
    code, stdout, _ = run_cli(capsys, "process", str(portrait_clip), "-o", str(out), "--mode", "color", "--crf", "23")
    assert code == 0
    assert stdout == f"wrote {out} (8 frames)\n"
    a, b = probe(portrait_clip), probe(out)
    assert (b.video_pts, b.rate, b.size) == (a.video_pts, Fraction(25), (320, 180))
    assert b.audio == a.audio and len(a.audio[0]) > 5


def test_remove_writes_alpha_an_editor_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], portrait: tuple[Path, list[np.ndarray]]
) -> None:
    portrait_clip, truth = portrait
    out = tmp_path / "cut.mov"
    code, _, _ = run_cli(
        capsys, "process", str(portrait_clip), "-o", str(out), "--mode", "remove",
        "--model-input", "384x216", "--downsample-ratio", "0.5",
    )
    assert code == 0
    frames = decode_rgba(out)
    assert len(frames) == 8
    alpha = frames[-1][..., 3].astype(np.float32) / 255
    assert np.abs(alpha - truth[-1]).mean() < 0.03  # the file's alpha is the person's
    assert alpha[:, :60].max() <= 0.04 and alpha[:, 290:].max() <= 0.04  # garden: transparent
    assert np.median(alpha[truth[-1] == 1.0]) == 1.0  # person: opaque
    assert probe(out).audio == probe(portrait_clip).audio


def test_batch_names_outputs_by_folder_and_by_pattern(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = write_clip(tmp_path / "a" / "one.mp4", color_frames(3), audio=None)
    two = write_clip(tmp_path / "b" / "two.mkv", color_frames(4), audio=None)
    code, stdout, _ = run_cli(capsys, "process", str(one), str(two), "-o", f"{tmp_path}/out/", "--mode", "off")
    assert code == 0
    assert _names(tmp_path / "out") == ["one.mp4", "two.mp4"]
    assert stdout.splitlines() == [
        f"wrote {tmp_path}/out/one.mp4 (3 frames)", f"wrote {tmp_path}/out/two.mp4 (4 frames)", "2 of 2 files written",
    ]
    # a quoted glob, and a pattern with the input's folder and position
    code, stdout, _ = run_cli(capsys, "process", f"{tmp_path}/*/*.m*", "--out-pattern", "{parent}/{index:02d}-{stem}.{ext}", "--mode", "off")
    assert code == 0
    assert _names(tmp_path / "a") == ["01-one.mp4", "one.mp4"]
    assert _names(tmp_path / "b") == ["02-two.mkv", "two.mkv"]
    assert len(probe(tmp_path / "b" / "02-two.mkv").video_pts) == 4
    # again: everything exists now
    code, _, err = run_cli(capsys, "process", str(one), str(two), "-o", f"{tmp_path}/out/", "--mode", "off")
    assert code == 1
    assert last_line(err) == (
        f"vcam: error: output {tmp_path}/out/one.mp4 already exists (and 1 more); pass --overwrite to replace, "
        "or --skip-existing to keep it"
    )
    (tmp_path / "out" / "two.mp4").unlink()
    code, stdout, _ = run_cli(capsys, "process", str(one), str(two), "-o", f"{tmp_path}/out/", "--mode", "off", "--skip-existing")
    assert code == 0
    assert stdout.splitlines() == [
        f"skipped {one}: {tmp_path}/out/one.mp4 exists", f"wrote {tmp_path}/out/two.mp4 (4 frames)", "1 of 1 files written, 1 skipped",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{tmp}/a/x.mp4", "{tmp}/b/x.mp4", "-o", "{tmp}/out/"],
         "inputs {tmp}/a/x.mp4 and {tmp}/b/x.mp4 would both be written to {tmp}/out/x.mp4; use --out-pattern with "
         "{{parent}} or {{index}} to tell them apart"),
        (["{tmp}/a/x.mp4", "{tmp}/b/x.mp4", "-o", "{tmp}/one.mp4"],
         "output {tmp}/one.mp4: with 2 inputs, -o must be a folder; end it with / to create one"),
        (["{tmp}/a/x.mp4"], "no output given: pass -o OUTPUT (a file, or a folder ending with /) or --out-pattern PATTERN"),
        (["{tmp}/a/*.mov", "-o", "{tmp}/out/"], "input {tmp}/a/*.mov: no file matches this pattern"),
        (["{tmp}/a/x.mp4", "--out-pattern", "{{stem}}_{{size}}.mp4"],
         "--out-pattern '{{stem}}_{{size}}.mp4': cannot fill it ('size'); it may use {{stem}}, {{name}}, {{ext}}, "
         "{{parent}}, {{folder}}, {{index}}"),
        (["{tmp}/a/x.mp4", "{tmp}/b/x.mp4", "--out-pattern", "{tmp}/a/x.mp4"],
         "output {tmp}/a/x.mp4 is the input file; choose another output name"),
        (["{tmp}/a/x.mp4", "{tmp}/b/x.mp4", "--out-pattern", "{{parent}}/out-{{stem}}.mp4", "--matte-out", "{tmp}/m"],
         "--matte-out: the mattes of {tmp}/a/x.mp4 and {tmp}/b/x.mp4 would both go to {tmp}/m/out-x; give the "
         "outputs different names"),
    ],
)
def test_batch_plan_errors_name_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        write_clip(tmp_path / d / "x.mp4", color_frames(2), audio=None)
    code, _, err = run_cli(capsys, "process", *[a.format(tmp=tmp_path) for a in argv])
    assert code == 1
    assert last_line(err) == "vcam: error: " + message.format(tmp=tmp_path)
    assert _names(tmp_path) == ["a", "b", "home"]


def test_a_failing_file_does_not_stop_the_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_clip(tmp_path / "good.mp4", color_frames(3), audio=None)
    bad = write_clip(tmp_path / "bad.mp4", color_frames(6), options={"g": "1"}, audio=None)
    damage_packet(bad, 3)
    code, stdout, err = run_cli(capsys, "process", str(bad), str(good), "-o", f"{tmp_path}/out/", "--mode", "off")
    assert code == 1
    assert f"vcam: error: input video {bad}: frame 3 at 00:00:00.120 is corrupt (" in err
    assert last_line(err) == f"vcam: error: 1 of 2 files failed: {bad}"
    assert stdout.splitlines()[-1] == "1 of 2 files written"
    assert _names(tmp_path / "out") == ["good.mp4"]
    # repeating the damaged frame instead completes it, every frame in place
    code, _, err = run_cli(capsys, "process", str(bad), "-o", f"{tmp_path}/out/", "--mode", "off", "--on-corrupt", "repeat")
    assert code == 0
    assert f"input video {bad}: frame 3 at 00:00:00.120 is corrupt (" in err
    assert probe(tmp_path / "out" / "bad.mp4").video_pts == probe(bad).video_pts


def test_parallel_jobs_write_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = [write_clip(tmp_path / f"c{i}.mp4", color_frames(3 + i)) for i in range(3)]
    code, stdout, _ = run_cli(capsys, "process", *map(str, inputs), "-o", f"{tmp_path}/out/", "--jobs", "2", "--mode", "blur")
    assert code == 0
    assert sorted(stdout.splitlines()[:-1]) == [f"wrote {tmp_path}/out/c{i}.mp4 ({3 + i} frames)" for i in range(3)]
    assert stdout.splitlines()[-1] == "3 of 3 files written"
    for i, inp in enumerate(inputs):
        b = probe(tmp_path / "out" / f"c{i}.mp4")
        assert len(b.video_pts) == 3 + i and b.audio == probe(inp).audio


@pytest.mark.parametrize(("jobs", "sig"), [("1", signal.SIGINT), ("2", signal.SIGINT), ("1", signal.SIGTERM)],
                         ids=["ctrl-c", "ctrl-c-jobs-2", "sigterm"])
def test_ctrl_c_during_a_batch_exits_128_plus_the_signal_and_leaves_no_partial_file(
    tmp_path: Path, jobs: str, sig: signal.Signals
) -> None:
    frames = [np.full((360, 640, 3), i % 256, np.uint8) for i in range(240)]
    inputs = [write_clip(tmp_path / f"long{i}.mp4", frames, rate=30) for i in range(2)]
    out = tmp_path / "out"
    proc = spawn_vcam(["process", *map(str, inputs), "-o", f"{out}/", "--jobs", jobs, "--matte-out", str(tmp_path / "m")])
    # wait until it writes (hidden temporary files exist), then interrupt it
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and any(p.name.startswith(".") for p in out.iterdir()):
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1].decode()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err.decode()  # 130 for Ctrl-C, 143 for SIGTERM
    assert last_line(err.decode()) == "vcam: interrupted"
    # no output, no matte folder (not even a temporary one), and not the folders vcam made
    left = {d.name: sorted(p.name for p in d.rglob("*")) for d in (out, tmp_path / "m") if d.exists()}
    assert not left, left  # (seen once in ~25 CI runs, 2026-12-02: out/ left; what was in it was not kept)


@pytest.mark.parametrize("shown", [True, False])
def test_overall_progress_leaves_out_what_a_failed_file_did_not_process(shown: bool) -> None:
    from vcam.files.progress import BatchDisplay

    display = BatchDisplay(100, 2, enabled=shown)
    display.start(1, "a.mp4", 60)
    display.tick(1, 25)
    display.finish(1)  # failed after 25 of its 60 frames
    display.start(2, "b.mp4", 40)
    display.tick(2, 40)
    display.finish(2)
    assert display._overall is not None
    assert display._overall.total == 65  # 100 expected, less the 35 frames a.mp4 never did
    display.close()


def test_workers_clean_up_when_the_main_process_is_killed(tmp_path: Path) -> None:
    frames = [np.full((360, 640, 3), i % 256, np.uint8) for i in range(240)]
    inputs = [write_clip(tmp_path / f"long{i}.mp4", frames, rate=30) for i in range(2)]
    out = tmp_path / "out"
    proc = spawn_vcam(["process", *map(str, inputs), "-o", f"{out}/", "--jobs", "2"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and len([p for p in out.iterdir() if p.name.startswith(".")]) == 2:
            break  # both workers are writing
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1].decode()
    proc.kill()  # no chance to tell the workers
    proc.communicate(timeout=30)
    # the orphaned workers notice and delete their temporary files
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and list(out.iterdir()):
        time.sleep(0.1)
    assert list(out.iterdir()) == []
