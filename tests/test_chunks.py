"""Chunked files (vcam/files/chunks.py) on one machine: cuts at keyframes, the warm-up
lead-in, and a joined output equal to an unchunked run in frames, timestamps and audio.
The engine is the fake one (alpha = red channel over 127); the real model and Ray are in
tests/test_ray_executor.py."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.helpers.fakes import FakeEngine
from tests.helpers.media import color_frames, decode_rgb, probe, red_levels, write_clip
from vcam.config import Config, validate_config
from vcam.errors import OutputError
from vcam.files.chunks import Chunk, ChunkSpec, plan_chunks, process_chunked, scan_keyframes
from vcam.files.process import FileOptions, process_file
from vcam.sinks.file import FileSink
from vcam.tools.evaluation.metrics import seam_scores


def _cfg() -> Config:
    return validate_config({"effect": {"mode": "color", "color": [0, 0, 255]}})


def _clip(path: Path, n: int = 40, gop: int = 10, frames: list[np.ndarray] | None = None) -> Path:
    # keyint = min-keyint and no scene-cut keyframes: keyframes exactly every gop frames
    opts = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
    return write_clip(path, frames or color_frames(n), rate=25, time_base=Fraction(1, 12800), options=opts)


def _ramp(n: int) -> list[np.ndarray]:
    """Frames of one colour each, red 8 i (no wrap-around for n <= 32)."""
    return [np.full((96, 160, 3), (8 * i, 0, 0), np.uint8) for i in range(n)]


class RecordingEngine(FakeEngine):
    """The fake engine, noting the red level of every frame it mattes since its last reset."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[list[int]] = []

    def reset(self) -> None:
        super().reset()
        self.runs.append([])

    def infer(self, rgb: np.ndarray) -> np.ndarray:
        self.runs[-1].append(int(rgb[..., 0].mean()))
        return super().infer(rgb)


def test_cuts_are_at_keyframes_and_the_chunks_cover_every_frame_once(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "in.mp4", 40, 10)
    n, keys, times = scan_keyframes(clip)
    assert (n, keys) == (40, [0, 10, 20, 30])
    assert times[:3] == [0.0, 0.04, 0.08]
    assert plan_chunks(clip, ChunkSpec(count=4, lead_in=3)) == [
        Chunk(0, 0, 10, 0), Chunk(1, 10, 20, 3), Chunk(2, 20, 30, 3), Chunk(3, 30, 40, 3),
    ]
    # 3 equal parts: 13.3 and 26.7 go to the nearest keyframes, 10 and 30
    assert [(c.start, c.end) for c in plan_chunks(clip, ChunkSpec(count=3))] == [(0, 10), (10, 30), (30, 40)]
    # by seconds: cuts wanted at 0.5, 1.0, 1.5 s (frames 13, 25, 38) → keyframes 10, 20 (25 is
    # as near 20 as 30: the earlier), 30
    assert [(c.start, c.end) for c in plan_chunks(clip, ChunkSpec(seconds=0.5))] == [(0, 10), (10, 20), (20, 30), (30, 40)]
    assert [(c.start, c.end) for c in plan_chunks(clip, ChunkSpec(seconds=0.9))] == [(0, 20), (20, 40)]
    # a lead-in longer than what is before the cut takes all there is
    assert plan_chunks(clip, ChunkSpec(count=4, lead_in=15))[1] == Chunk(1, 10, 20, 10)
    # more parts than keyframes: one chunk per keyframe
    assert len(plan_chunks(clip, ChunkSpec(count=10))) == 4


def test_a_chunked_run_writes_the_unchunked_frames_timestamps_and_audio(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "in.mp4", 40, 10)
    whole = process_file(_cfg(), clip, tmp_path / "whole.mp4", FileOptions(), engine=FakeEngine())
    summary = process_chunked(_cfg(), clip, tmp_path / "chunked.mp4", ChunkSpec(count=4, lead_in=3), engine=FakeEngine())
    a, b, src = probe(tmp_path / "whole.mp4"), probe(tmp_path / "chunked.mp4"), probe(clip)
    assert summary["frames_written"] == whole["frames_written"] == 40
    assert b.video_pts == a.video_pts == src.video_pts and b.time_base == a.time_base
    assert b.video_durations == a.video_durations
    assert b.video_duration == a.video_duration and b.duration == a.duration
    assert (b.codec, b.pix_fmt, b.size, b.rate) == (a.codec, a.pix_fmt, a.size, a.rate)
    assert b.audio == a.audio == src.audio and len(b.audio[0]) > 50  # copied once, packet for packet
    assert summary["audio_packets"] == len(src.audio[0])
    # every frame decodes, in order: the colour of frame i is red 10 i (within coding error)
    assert red_levels(decode_rgb(tmp_path / "chunked.mp4")) == red_levels(decode_rgb(tmp_path / "whole.mp4"))
    with av.open(str(tmp_path / "chunked.mp4")) as c:
        dts = [p.dts for p in c.demux(c.streams.video[0]) if p.size]
    assert dts == sorted(dts) and len(set(dts)) == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked.mp4", "in.mp4", "whole.mp4"]


def test_each_chunk_is_warmed_up_on_the_frames_before_its_cut(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "in.mp4", 30, 10, _ramp(30))
    engine = RecordingEngine()
    # still-frame reuse off: this ramp changes too little from frame to frame, and the point
    # here is which frames reach the model
    cfg = validate_config({"effect": {"mode": "color"}, "model": {"still_threshold": 0}})
    w = cfg.model.warmup
    assert w == 8
    process_chunked(cfg, clip, tmp_path / "out.mp4", ChunkSpec(count=3, lead_in=4), engine=engine)
    # red = 8 i; one fresh state per chunk, starting 4 frames before its cut, its first frame
    # run w more times (model.warmup, as an unchunked run does on frame 0)
    seen = [[round(r / 8) for r in run] for run in engine.runs if run]
    assert seen == [[0] * w + list(range(0, 10)), [6] * w + list(range(6, 20)), [16] * w + list(range(16, 30))]


def test_mattes_of_a_chunked_run_are_numbered_like_the_unchunked_ones(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "in.mp4", 30, 10)
    process_file(_cfg(), clip, tmp_path / "a.mp4", FileOptions(matte_out=str(tmp_path / "ma")), engine=FakeEngine())
    process_chunked(_cfg(), clip, tmp_path / "b.mp4", ChunkSpec(count=3, lead_in=2),
                    FileOptions(matte_out=str(tmp_path / "mb")), engine=FakeEngine())
    names = sorted(p.name for p in (tmp_path / "ma").iterdir())
    assert names == [f"{i:06d}.png" for i in range(30)]
    assert sorted(p.name for p in (tmp_path / "mb").iterdir()) == names
    import cv2

    ref = [cv2.imread(str(tmp_path / "ma" / n), cv2.IMREAD_GRAYSCALE) / 255.0 for n in names]
    got = [cv2.imread(str(tmp_path / "mb" / n), cv2.IMREAD_GRAYSCALE) / 255.0 for n in names]
    # the fake engine has no state: the seams are exact
    assert seam_scores(ref, got, [10, 20]) == {"MAD": 0.0, "dtSSD": 0.0}
    got[10] = 1.0 - got[10]
    assert seam_scores(ref, got, [10, 20])["MAD"] > 0


def test_a_failing_chunk_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = _clip(tmp_path / "in.mp4", 30, 10)
    real_send = FileSink.send
    sent = [0]

    def failing(self: FileSink, *a: object, **k: object) -> None:
        sent[0] += 1
        if sent[0] == 15:  # in the second chunk
            raise OutputError(f"output {self.path}: writing failed (disk full)")
        real_send(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(FileSink, "send", failing)
    with pytest.raises(OutputError, match="disk full"):
        process_chunked(_cfg(), clip, tmp_path / "out.mp4", ChunkSpec(count=3), FileOptions(matte_out=str(tmp_path / "m")),
                        engine=FakeEngine())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize(("name", "opts", "message"), [
    ("out", {"codec": "png"}, "a PNG sequence is not chunked"),
    ("out.mov", {"transparent": True}, "transparent outputs (--mode remove) are not chunked"),
])
def test_outputs_that_are_not_chunked_are_refused(tmp_path: Path, name: str, opts: dict[str, object], message: str) -> None:
    clip = _clip(tmp_path / "in.mp4", 20, 10)
    with pytest.raises(OutputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        process_chunked(_cfg(), clip, tmp_path / name, ChunkSpec(count=2), FileOptions(**opts), engine=FakeEngine())  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_flags_that_do_not_go_together_and_a_missing_ray_are_one_line_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from tests.helpers.cli import run_cli

    clip = _clip(tmp_path / "in.mp4", 10, 5)
    out = str(tmp_path / "out") + "/"
    cases = [
        (["--lead-in", "4"], "vcam: error: --lead-in applies to chunked files: add --chunks N or --chunk-seconds S"),
        (["--chunks", "2", "--lead-in", "-1"], "vcam: error: --lead-in -1: must be 0 or more"),
        (["--chunk-seconds", "0"], "vcam: error: --chunk-seconds 0.0: must be more than 0"),
        (["--ray-address", "h:6379"], "vcam: error: --ray-address, --ray-cpus and --ray-gpus apply to --executor ray"),
        (["--chunks", "2", "--framing", "auto"], "vcam: error: effect.framing auto follows the picture over time and is not "
         "chunked; leave out --chunks/--chunk-seconds or use --framing off"),
        (["--chunk-seconds", "1", "--light", "auto"], "vcam: error: effect.light auto follows the picture over time and is "
         "not chunked; leave out --chunks/--chunk-seconds or use --light off"),
    ]
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError, as without the extra
    cases.append((["--executor", "ray"], "vcam: error: --executor ray needs Ray, which is not installed; in the vcam folder: pip install '.[cpu,cluster]'"))
    for flags, message in cases:
        code, _out, err = run_cli(capsys, "process", str(clip), "-o", out, *flags)
        assert (code, err.strip().splitlines()[-1]) == (1, message)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]  # before any work: no output folder
