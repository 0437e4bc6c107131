"""``vcam process --executor ray`` on a real local Ray (``ray.init(num_cpus=2)``, started
once for this module) with the real model: the same files as the local executor, a failing file
reported while the others are written, a killed worker's task run again with nothing left
behind, and a chunked run equal to the unchunked one with invisible seams."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers.media import probe, write_clip
from vcam.config import Config, validate_config
from vcam.files.chunks import DEFAULT_LEAD_IN, ChunkSpec, plan_chunks
from vcam.files.plan import plan_jobs
from vcam.files.process import FileOptions
from vcam.files.ray_executor import RaySettings, run_ray_batch
from vcam.files.workers import run_batch, run_jobs
from vcam.signals import keep_stop_handlers
from vcam.tools.evaluation.metrics import seam_scores

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

# the bound on the seams: MAD and dtSSD (README units) of a chunked run's mattes against the
# unchunked run's over +-5 frames around each cut, with the default lead-in (docs/files.md,
# "Seams"). Measured in this test: 0.22 / 0.12; without a lead-in 3.63 / 1.91
SEAM_MAD_BOUND = 0.5
SEAM_DTSSD_BOUND = 0.3


@pytest.fixture(scope="module")  # the only module that uses it: started once, and stopped before the others run
def local_ray() -> Iterator[None]:
    import logging

    with keep_stop_handlers():  # ray.init makes SIGTERM sys.exit; the other tests expect the default
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


def _cfg(model_dir: Path, **model: object) -> Config:
    return validate_config({
        "model": {"dir": str(model_dir), "preset": "realtime", "input_size": [128, 72], **model},
        "effect": {"mode": "color", "color": [0, 177, 64]},
    })


def _moving(n: int, seed: int) -> list[np.ndarray]:
    """A bright figure moving over a textured background (something for the model to matte)."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 120, (96, 160, 3), dtype=np.uint8)
    out = []
    for t in range(n):
        img = bg.copy()
        x = 40 + (t * 3) % 60
        cv2.ellipse(img, (x, 60), (18, 34), 0, 0, 360, (230, 190, 160), -1)
        cv2.circle(img, (x, 20), 12, (220, 180, 150), -1)
        out.append(img)
    return out


def _clips(folder: Path, lengths: list[int]) -> list[Path]:
    folder.mkdir()
    return [
        write_clip(folder / f"clip{i}.mp4", _moving(n, i), rate=25, options={"g": "10", "keyint_min": "10", "sc_threshold": "0"})
        for i, n in enumerate(lengths)
    ]


def _mattes(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(folder.glob("*.png"))]


def _leftovers(*folders: Path) -> list[str]:
    return sorted(p.name for f in folders if f.is_dir() for p in f.rglob(".*"))


@pytest.mark.usefixtures("local_ray")
def test_a_batch_on_ray_writes_what_the_local_executor_writes(tmp_path: Path, model_dir: Path) -> None:
    inputs = _clips(tmp_path / "in", [12, 17, 22])
    cfg = _cfg(model_dir)
    results = {}
    for name, settings in (("local", None), ("ray", RaySettings(cpus=1))):
        options = FileOptions(overwrite=False)
        jobs, _ = plan_jobs(inputs, str(tmp_path / name) + "/", None, options, matte_out=str(tmp_path / f"{name}-m"))
        if settings is None:
            results[name] = run_batch(cfg, jobs, options)
        else:
            results[name] = run_ray_batch(cfg, jobs, options, settings)
    assert [r.status for r in results["ray"]] == ["written"] * 3
    for clip, local, remote in zip(inputs, results["local"], results["ray"], strict=True):
        a, b = probe(local.job.output), probe(remote.job.output)
        assert len(b.video_pts) == len(a.video_pts) == len(probe(clip).video_pts)
        assert b.video_pts == a.video_pts and b.video_durations == a.video_durations
        assert b.audio == a.audio and len(b.audio[0]) > 10  # the same audio packets, bit for bit
        assert remote.summary is not None and remote.summary["audio_packets"] == len(a.audio[0])
        assert remote.summary["threads"] == 1  # what the task was given, not all cores
        ma = _mattes(tmp_path / "local-m" / clip.stem)
        mb = _mattes(tmp_path / "ray-m" / clip.stem)
        assert len(mb) == len(ma) == len(a.video_pts)
        assert max(int(np.abs(x.astype(int) - y.astype(int)).max()) for x, y in zip(ma, mb, strict=True)) <= 1
    assert _leftovers(tmp_path / "ray", tmp_path / "ray-m") == []


@pytest.mark.usefixtures("local_ray")
def test_a_file_that_fails_on_ray_is_reported_and_the_others_are_written(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _clips(tmp_path / "in", [10, 12])
    bad = tmp_path / "in" / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    inputs = [good[0], bad, good[1]]
    options = FileOptions()
    jobs, skipped = plan_jobs(inputs, str(tmp_path / "out") + "/", None, options)
    code = run_jobs(_cfg(model_dir), options, inputs, jobs, skipped, quiet=True, ray=RaySettings(cpus=1))
    out, err = capsys.readouterr()
    assert code == 1
    assert "2 of 3 files written" in out
    assert f"vcam: error: input video {bad}: " in err
    assert err.strip().endswith(f"1 of 3 files failed: {bad}")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip0.mp4", "clip1.mp4"]
    assert [len(probe(tmp_path / "out" / f"clip{i}.mp4").video_pts) for i in (0, 1)] == [10, 12]


def _task_pids() -> list[int]:
    done = subprocess.run(["pgrep", "-f", "ray::_run_task"], capture_output=True, text=True)
    return [int(p) for p in done.stdout.split()]


@pytest.mark.usefixtures("local_ray")
def test_a_killed_worker_is_retried_and_leaves_nothing_behind(tmp_path: Path, model_dir: Path) -> None:
    (clip,) = _clips(tmp_path / "in", [150])
    options = FileOptions()
    jobs, _ = plan_jobs([clip], str(tmp_path / "out") + "/", None, options)
    box: dict[str, object] = {}

    def run() -> None:
        box["results"] = run_ray_batch(_cfg(model_dir), jobs, options, RaySettings(cpus=1, max_retries=1))

    runner = threading.Thread(target=run, name="ray-driver")
    runner.start()
    deadline = time.monotonic() + 120
    killed = None
    while time.monotonic() < deadline and killed is None:  # while its temporary file is being written
        if list((tmp_path / "out").glob(".clip0.*.part.mp4")) and (pids := _task_pids()):
            killed = pids[0]
            subprocess.run(["kill", "-9", str(killed)], check=True)
        time.sleep(0.05)
    runner.join(300)
    assert killed is not None, "the task never started writing"
    results = box["results"]
    assert isinstance(results, list) and results[0].status == "written", results
    assert len(probe(tmp_path / "out" / "clip0.mp4").video_pts) == 150
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip0.mp4"]


@pytest.mark.usefixtures("local_ray")
def test_a_dead_worker_without_retries_fails_its_file_and_removes_its_temporary_files(tmp_path: Path, model_dir: Path) -> None:
    clip, other = _clips(tmp_path / "in", [150, 10])
    options = FileOptions()
    jobs, _ = plan_jobs([clip, other], str(tmp_path / "out") + "/", None, options)
    box: dict[str, object] = {}
    runner = threading.Thread(
        target=lambda: box.update(results=run_ray_batch(_cfg(model_dir), jobs, options, RaySettings(cpus=1, max_retries=0))),
    )
    runner.start()
    deadline = time.monotonic() + 120
    killed = False
    while time.monotonic() < deadline and not killed:
        if list((tmp_path / "out").glob(".clip0.*.part.mp4")) and (pids := _task_pids()):
            for pid in pids:  # clip0's worker, and the other file's if it still runs
                subprocess.run(["kill", "-9", str(pid)])
            killed = True
        time.sleep(0.05)
    runner.join(300)
    assert killed
    results = box["results"]
    assert isinstance(results, list)
    assert results[0].status == "failed"
    assert results[0].message.startswith(f"{clip}: its Ray task failed (")
    assert results[1].status in ("written", "failed")
    left = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert left == (["clip1.mp4"] if results[1].status == "written" else [])  # no partial output


def _real_clip(path: Path, frames: int) -> Path:
    """Real footage (the evaluation data's seated person, 640x360), played forward and back to
    ``frames`` frames, a keyframe every 40 (skips the test without the evaluation data)."""
    from tests.helpers import evaldata
    from vcam.media.reader import VideoReader

    src = evaldata() / "sources" / "clips" / "thoughtful.mp4"
    if not src.is_file():
        pytest.skip(f"no {src}")
    reader = VideoReader(src, "clip", on_corrupt="fail")
    pics = []
    while (d := reader.read_frame()) is not None:
        pics.append(d.image)
    reader.close()
    seq = (pics + pics[::-1]) * (frames // (2 * len(pics)) + 1)
    return write_clip(path, seq[:frames], rate=25, options={"g": "40", "keyint_min": "40", "sc_threshold": "0"})


@pytest.mark.usefixtures("local_ray")
def test_a_chunked_run_on_ray_writes_the_unchunked_frames_timestamps_and_audio(tmp_path: Path, model_dir: Path) -> None:
    (clip,) = _clips(tmp_path / "in", [40])
    cfg = _cfg(model_dir)
    options = FileOptions()
    whole, _ = plan_jobs([clip], str(tmp_path / "whole.mp4"), None, options)
    chunked, _ = plan_jobs([clip], str(tmp_path / "chunked.mp4"), None, options)
    run_batch(cfg, whole, options)
    (result,) = run_ray_batch(cfg, chunked, options, RaySettings(cpus=1), chunks=ChunkSpec(count=4, lead_in=5))
    assert result.status == "written" and result.message == f"wrote {tmp_path / 'chunked.mp4'} (40 frames, 4 chunks)"
    a, b = probe(tmp_path / "whole.mp4"), probe(tmp_path / "chunked.mp4")
    assert len(b.video_pts) == 40
    assert b.video_pts == a.video_pts and b.video_durations == a.video_durations
    assert b.video_duration == a.video_duration and b.duration == a.duration
    assert b.audio == a.audio and result.summary is not None and result.summary["audio_packets"] == len(a.audio[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked.mp4", "in", "whole.mp4"]


@pytest.mark.slow  # 2-3 minutes on the 2-core machine: 3 runs of 320 frames of real footage
@pytest.mark.usefixtures("local_ray")
def test_a_chunked_run_on_ray_equals_the_unchunked_run_with_invisible_seams(tmp_path: Path, model_dir: Path) -> None:
    clip = _real_clip(tmp_path / "talk.mp4", 320)
    cfg = _cfg(model_dir, input_size=[256, 144])
    options = FileOptions()
    whole, _ = plan_jobs([clip], str(tmp_path / "whole.mp4"), None, options, matte_out=str(tmp_path / "mw"))
    (local,) = run_batch(cfg, whole, options)
    chunked, _ = plan_jobs([clip], str(tmp_path / "chunked.mp4"), None, options, matte_out=str(tmp_path / "mc"))
    spec = ChunkSpec(count=2)  # the default lead-in
    (remote,) = run_ray_batch(cfg, chunked, options, RaySettings(cpus=1), chunks=spec)
    assert (local.status, remote.status) == ("written", "written")
    a, b = probe(tmp_path / "whole.mp4"), probe(tmp_path / "chunked.mp4")
    assert len(b.video_pts) == len(a.video_pts) == 320
    assert b.video_pts == a.video_pts and b.video_durations == a.video_durations
    assert b.video_duration == a.video_duration and b.duration == a.duration
    assert b.audio == a.audio
    chunks = plan_chunks(clip, spec)
    assert [(c.start, c.lead_in) for c in chunks] == [(0, 0), (160, DEFAULT_LEAD_IN)]  # warmed from frame 32
    cuts = [c.start for c in chunks[1:]]
    ref = [m / 255.0 for m in _mattes(tmp_path / "mw")]
    got = [m / 255.0 for m in _mattes(tmp_path / "mc")]
    scores = seam_scores(ref, got, cuts)
    print("seams with the default lead-in:", scores)
    assert scores["MAD"] is not None and scores["MAD"] <= SEAM_MAD_BOUND, scores
    assert scores["dtSSD"] is not None and scores["dtSSD"] <= SEAM_DTSSD_BOUND, scores
    # without a lead-in the seams are visible: the bound means something
    cold, _ = plan_jobs([clip], str(tmp_path / "cold.mp4"), None, options, matte_out=str(tmp_path / "m0"))
    run_ray_batch(cfg, cold, options, RaySettings(cpus=1), chunks=ChunkSpec(count=2, lead_in=0))
    cold_scores = seam_scores(ref, [m / 255.0 for m in _mattes(tmp_path / "m0")], cuts)
    print("seams without a lead-in:", cold_scores)
    assert cold_scores["MAD"] is not None and cold_scores["MAD"] > SEAM_MAD_BOUND, cold_scores
    assert _leftovers(tmp_path) == []
