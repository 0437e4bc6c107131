"""File mode like an editor expects: frames, timestamps, audio, rotation, transparency,
backgrounds, damaged input and clean failure — checked in the written files with PyAV.

The matting engine is the fake one (alpha = red channel over 127) so that every pixel of
the output is known; the real model runs in tests/test_process_cli.py.
"""

from __future__ import annotations

import itertools
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.fakes import FakeEngine
from tests.helpers.media import (
    color_frames,
    colour_tags,
    damage_packet,
    decode_rgb,
    decode_rgba,
    probe,
    red_levels,
    write_clip,
)
from vcam.config import Config, validate_config
from vcam.errors import InputError, OutputError
from vcam.files.process import FileOptions, process_file
from vcam.media.alpha import read_rgba
from vcam.pipeline.ordered import run_ordered

VFR_PTS = [0, 40, 70, 150, 160, 240, 330, 340, 400, 520]  # ms: irregular gaps


def _cfg(**effect: object) -> Config:
    return validate_config({"effect": effect or {"mode": "color", "color": [0, 0, 255]}})


def _off() -> Config:
    """Mode off: pictures pass unchanged, so each frame's own colour can be checked."""
    return _cfg(mode="off")


def _process(inp: Path, out: Path, cfg: Config | None = None, **opts: object) -> dict[str, object]:
    return process_file(cfg or _cfg(), inp, out, FileOptions(**opts), engine=FakeEngine())


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_frames_timestamps_duration_and_audio_are_kept(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(12), rate=25, time_base=Fraction(1, 12800))
    out = tmp_path / "out.mp4"
    summary = _process(inp, out)
    a, b = probe(inp), probe(out)
    assert summary["frames_out"] == 12 and summary["frames_written"] == 12
    assert len(b.video_pts) == 12
    assert b.video_pts == a.video_pts and b.time_base == a.time_base
    assert b.video_durations == a.video_durations
    assert b.rate == a.rate == Fraction(25)
    assert b.video_duration == a.video_duration == pytest.approx(12 / 25)
    assert a.duration is not None and b.duration == pytest.approx(a.duration, abs=1 / 25)
    assert (b.codec, b.pix_fmt, b.size) == ("h264", "yuv420p", (160, 96))
    # the audio: the same codec, the same packets bit for bit, at the same times
    assert b.audio_codecs == a.audio_codecs == ["aac"]
    assert len(a.audio[0]) > 20
    assert b.audio == a.audio
    assert summary["audio_packets"] == len(a.audio[0])
    assert _files(tmp_path) == ["in.mp4", "out.mp4"]


def test_variable_frame_rate_timestamps_are_kept_exactly(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "vfr.mkv", color_frames(10), pts=VFR_PTS, audio="libopus")
    out = tmp_path / "out.mkv"
    _process(inp, out, cfg=_off())
    a, b = probe(inp), probe(out)
    assert a.video_pts == VFR_PTS  # the input really is VFR
    assert b.video_pts == VFR_PTS
    assert b.audio == a.audio and b.audio_codecs == ["opus"]
    # every frame is there, in order, with its own picture
    assert red_levels(decode_rgb(out)) == list(range(10))


def test_vfr_into_mp4_keeps_timestamps_and_duration(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "vfr.mp4", color_frames(10), pts=VFR_PTS, audio=None)
    out = tmp_path / "out.mp4"
    _process(inp, out)
    a, b = probe(inp), probe(out)
    assert [round(p * b.time_base * 1000) for p in b.video_pts] == VFR_PTS
    # MP4 derives a track's length from decode times, which the encoder's frame reordering
    # shifts: equal to within one frame
    assert a.video_duration is not None and b.video_duration == pytest.approx(a.video_duration, abs=1 / 25)
    assert a.duration is not None and b.duration == pytest.approx(a.duration, abs=1 / 25)
    assert b.audio == []


def test_frame_durations_are_display_times_in_matroska(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "vfr.mkv", color_frames(10), pts=VFR_PTS, audio=None)
    out = tmp_path / "out.mkv"
    _process(inp, out)
    b = probe(out)
    gaps = [q - p for p, q in itertools.pairwise(VFR_PTS)]
    assert b.video_durations[:-1] == gaps
    assert b.video_durations[-1] == probe(inp).video_durations[-1]


def test_a_file_that_starts_late_is_written_starting_at_zero(tmp_path: Path) -> None:
    # like MPEG-TS from a camcorder: video and audio both start 2 s in
    inp = write_clip(tmp_path / "late.mkv", color_frames(6), pts=[2000 + 40 * i for i in range(6)], audio="libopus",
                     audio_start=96000)
    out = tmp_path / "out.mkv"
    _process(inp, out, cfg=_off())
    a, b = probe(inp), probe(out)
    assert a.video_pts[0] == 2000 and b.video_pts == [40 * i for i in range(6)]
    assert [x[2] for x in b.audio[0]] == [x[2] for x in a.audio[0]]  # the same audio packets ...
    assert [x[0] for x in b.audio[0]] == [x[0] - 2000 for x in a.audio[0]]  # ... moved with the video
    assert red_levels(decode_rgb(out)) == list(range(6))


@pytest.mark.parametrize("tags", [(1, 1, 1, 1), (1, 2, 1, 1), (5, 1, 5, 6)], ids=["bt709", "bt709-full", "bt601"])
def test_colour_description_is_kept_and_colours_survive(tmp_path: Path, tags: tuple[int, int, int, int]) -> None:
    img = np.zeros((48, 64, 3), np.uint8)
    img[:] = (200, 60, 20)  # saturated: the BT.601 and BT.709 matrices disagree here by ~10 levels
    inp = write_clip(tmp_path / "in.mp4", [img] * 3, colour=tags, audio=None)
    out = tmp_path / "out.mp4"
    _process(inp, out, cfg=_off(), crf=0)
    assert colour_tags(inp) == colour_tags(out) == tags
    for f in decode_rgb(out):
        assert abs(f.astype(int) - [200, 60, 20]).max() <= 3


def test_rotation_is_kept_and_frames_are_processed_upright(tmp_path: Path) -> None:
    # coded 64x48 landscape, shown turned 90 degrees: the person (red) sits in the coded
    # top-left corner, which is the bottom-left corner when shown upright
    img = np.zeros((48, 64, 3), np.uint8)
    img[:24, :32, 0] = 255
    inp = write_clip(tmp_path / "rot.mp4", [img] * 4, rotation=90)
    out, mattes = tmp_path / "out.mp4", tmp_path / "m"
    _process(inp, out, matte_out=str(mattes))
    a, b = probe(inp), probe(out)
    assert (a.rotation, b.rotation) == (90, 90)
    assert b.size == a.size == (64, 48)  # stored like the input
    assert b.video_pts == a.video_pts
    import cv2

    m = cv2.imread(str(mattes / "000000.png"), cv2.IMREAD_GRAYSCALE)
    assert m.shape == (64, 48)  # upright: 48 wide, 64 high
    assert m[40:, :20].min() == 255 and m[:20, :].max() == 0 and m[:, 28:].max() == 0
    # the person keeps its colours in the coded corner; the rest became the blue background
    first = decode_rgb(out)[0].astype(int)
    assert abs(first[4:20, 4:28] - [255, 0, 0]).max() <= 12
    assert abs(first[30:, 40:] - [0, 0, 255]).max() <= 12


def test_mirrored_display_matrix_is_kept_as_metadata(tmp_path: Path) -> None:
    flip = [-65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30]  # horizontal mirror: not a quarter turn
    inp = write_clip(tmp_path / "m.mp4", color_frames(3), matrix=flip, audio=None)
    out = tmp_path / "out.mp4"
    _process(inp, out)
    import av

    with av.open(str(out)) as c:
        frame = next(iter(c.decode(video=0)))
        matrix = [sd for sd in frame.side_data if "DISPLAYMATRIX" in str(sd.type)]
        assert len(matrix) == 1
        assert list(np.frombuffer(bytes(matrix[0]), np.int32)) == flip
    assert probe(out).size == (160, 96)


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt"),
    [("o.webm", "vp9", "yuva420p"), ("o.mkv", "vp9", "yuva420p"), ("o.mov", "prores", "yuva444p12le")],
)
def test_transparent_output_really_carries_alpha(tmp_path: Path, name: str, codec: str, pix_fmt: str) -> None:
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, :32] = (255, 200, 10)  # left half: person (red over 127)
    img[:, 32:] = (0, 90, 40)
    inp = write_clip(tmp_path / "in.mp4", [img] * 5, audio=None)
    out = tmp_path / name
    summary = _process(inp, out, transparent=True)
    assert summary["codec"] == codec and summary["transparent"] is True
    frames = decode_rgba(out)  # decoded with PyAV directly, VP9 through libvpx
    assert len(frames) == 5
    for f in frames:
        assert f[:, :26, 3].min() >= 250  # person: opaque
        assert f[:, 38:, 3].max() <= 5  # background: transparent
        assert abs(f[:, :26, :3].astype(int) - [255, 200, 10]).max() <= 12  # straight colours
    if codec == "prores":
        import av

        with av.open(str(out)) as c:
            assert c.streams.video[0].codec_context.codec_tag == "ap4h"  # ProRes 4444
            assert next(iter(c.decode(video=0))).format.name == pix_fmt


def test_transparent_png_sequence_with_the_audio_beside_it(tmp_path: Path) -> None:
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, :32, 0] = 255
    inp = write_clip(tmp_path / "in.mp4", [img] * 3)
    out = tmp_path / "frames"
    _process(inp, out, transparent=True, codec="png")
    assert _files(out) == ["000000.png", "000001.png", "000002.png", "audio.mka"]
    frames = read_rgba(out)
    assert [f.shape for f in frames] == [(48, 64, 4)] * 3
    assert frames[0][:, :26, 3].min() == 255 and frames[0][:, 38:, 3].max() == 0
    # the same packets; Matroska starts at 0 where MP4 starts the AAC priming at -1024
    copied, original = probe_audio(out / "audio.mka")[0], probe(inp).audio[0]
    assert [x[2] for x in copied] == [x[2] for x in original]
    # (Matroska counts milliseconds)
    assert [x[0] - copied[0][0] for x in copied] == [round(x[0] / 48) - round(original[0][0] / 48) for x in original]
    assert _files(tmp_path) == ["frames", "in.mp4"]


def probe_audio(path: Path) -> list[list[tuple[int | None, int | None, bytes]]]:
    import av

    with av.open(str(path)) as c:
        return [[(p.pts, p.dts, bytes(p)) for p in c.demux(s) if p.size] for s in c.streams.audio]


@pytest.mark.parametrize(
    ("name", "opts", "message"),
    [
        ("o.mp4", {"transparent": True},
         "output {out}: --mode remove needs a format that keeps transparency: .mov (ProRes 4444), .webm or "
         ".mkv (VP9 with alpha), or --codec png; .mp4 has none"),
        ("o.mp4", {"transparent": True, "codec": "vp9"},
         "output {out}: vp9 in .mp4 cannot keep transparency for --mode remove; use .mov (ProRes 4444), .webm "
         "or .mkv (VP9 with alpha), or --codec png"),
        ("o.webm", {"codec": "h264"}, "output {out}: h264 cannot be written into a .webm file; use .webm"
         .replace("use .webm", "use .mp4 .m4v .mov .mkv")),
        ("o.avi", {}, "output {out}: cannot write a '.avi' file; name it with one of .mp4 .m4v .mov .mkv .webm, "
         "a still picture .png .jpg .jpeg, or pass --codec png for a folder of PNG files"),
        ("o.mp4", {"crf": 60}, "--crf 60: h264 takes 0..51 (lower is better)"),
        ("o.webm", {"audio_policy": "copy"}, "output {out}: the input's audio (aac) cannot be stored in this file "
         "type without re-encoding ('webm' format does not support 'aac' codec); write .mkv or .mov instead, pass "
         "--audio reencode, or leave it out with --audio drop"),
    ],
)
def test_impossible_outputs_are_refused_with_what_to_do(tmp_path: Path, name: str, opts: dict[str, object], message: str) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(2))
    out = tmp_path / name
    with pytest.raises(OutputError) as info:
        _process(inp, out, **opts)
    assert str(info.value) == message.format(out=out)
    assert _files(tmp_path) == ["in.mp4"]


def test_no_audio_leaves_the_audio_out(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(3))
    out = tmp_path / "o.webm"
    _process(inp, out, audio=False)
    assert probe(out).audio == [] and probe(out).codec == "vp9"


def test_a_damaged_frame_fails_cleanly_with_its_time(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(12), options={"g": "1"})
    damage_packet(inp, 5)
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError) as info:
        _process(inp, out, matte_out=str(tmp_path / "m"))
    assert str(info.value) == (
        f"input video {inp}: frame 5 at 00:00:00.200 is corrupt (it could not be decoded: Invalid data found "
        "when processing input); pass --on-corrupt repeat to put the previous frame in its place"
    )
    assert _files(tmp_path) == ["in.mp4"]  # no output, no matte folder, no temporary file


def test_a_damaged_frame_is_replaced_by_the_previous_one_on_request(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(12), options={"g": "1"})
    damage_packet(inp, 5)
    out = tmp_path / "out.mp4"
    summary = _process(inp, out, cfg=_off(), on_corrupt="repeat", crf=0)
    assert summary["corrupt_frames"] == 1 and summary["corrupt_at"] == ["00:00:00.200"]
    assert probe(out).video_pts == probe(inp).video_pts  # every timestamp is there
    assert red_levels(decode_rgb(out)) == [0, 1, 2, 3, 4, 4, 6, 7, 8, 9, 10, 11]
    assert f"input video {inp}: frame 5 at 00:00:00.200 is corrupt (it could not be decoded: " in caplog.text
    assert "repeating the previous frame" in caplog.text


def test_first_frame_damaged_repeats_the_next_good_one(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(5), options={"g": "1"}, audio=None)
    damage_packet(inp, 0)
    out = tmp_path / "out.mp4"
    _process(inp, out, cfg=_off(), on_corrupt="repeat", crf=0)
    assert red_levels(decode_rgb(out)) == [1, 1, 2, 3, 4]


def test_an_error_while_encoding_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vcam.sinks.file import FileSink

    inp = write_clip(tmp_path / "in.mp4", color_frames(8))
    real_send = FileSink.send

    def failing(self: FileSink, image: np.ndarray, *a: object, **k: object) -> None:
        if self.frames_written == 4:
            raise OutputError(f"output {self.path}: writing failed (No space left on device)")
        real_send(self, image, *a, **k)

    monkeypatch.setattr(FileSink, "send", failing)
    with pytest.raises(OutputError, match="No space left on device"):
        _process(inp, tmp_path / "out.mp4", matte_out=str(tmp_path / "m"))
    assert _files(tmp_path) == ["in.mp4"]


def test_stop_interrupts_and_leaves_no_file(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(20), audio=None)
    stop = threading.Event()

    def progress(total: int | None):  # type: ignore[no-untyped-def]
        def tick(n: int) -> None:
            stop.set()  # interrupt as soon as the first frames are written

        return tick

    with pytest.raises(KeyboardInterrupt):
        process_file(_cfg(), inp, tmp_path / "out.mp4", FileOptions(queue_size=1), engine=FakeEngine(),
                     frame_progress=progress, stop=stop)
    assert _files(tmp_path) == ["in.mp4"]


def test_existing_output_is_kept_without_overwrite(tmp_path: Path) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(2))
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep")
    with pytest.raises(OutputError, match=r"^output .*o.mp4 already exists; pass --overwrite to replace it$"):
        _process(inp, out)
    assert out.read_bytes() == b"keep"
    _process(inp, out, overwrite=True)
    assert len(probe(out).video_pts) == 2


@pytest.mark.parametrize("overlap", [True, False])
def test_overlapped_and_sequential_runs_write_the_same_frames(tmp_path: Path, overlap: bool) -> None:
    inp = write_clip(tmp_path / "in.mp4", color_frames(9), audio=None)
    out = tmp_path / f"o{overlap}.mp4"
    _process(inp, out, cfg=_off(), overlap=overlap, queue_size=2, crf=0)
    assert red_levels(decode_rgb(out)) == list(range(9))
    assert probe(out).video_pts == probe(inp).video_pts


def test_overlap_queues_are_bounded_and_lose_nothing() -> None:
    made, done = [0], []
    ahead: list[int] = []
    lock = threading.Lock()

    def produce() -> int | None:
        with lock:
            if made[0] == 50:
                return None
            made[0] += 1
            ahead.append(made[0] - len(done))
            return made[0]

    def slow_sink(item: int) -> None:
        threading.Event().wait(0.002)
        with lock:
            done.append(item)

    run_ordered(produce, [("double", lambda x: x * 2), ("sink", slow_sink)], 2, lambda: None)
    assert done == [2 * i for i in range(1, 51)]
    # at most: 2 queued before each of the 2 stages, one in each stage, one being produced
    assert max(ahead) <= 2 + 2 + 2 + 1


def test_overlap_raises_a_stage_error_on_the_caller() -> None:
    items = iter(range(100))

    def boom(x: int) -> int:
        if x == 7:
            raise ValueError("stage failed on 7")
        return x

    with pytest.raises(ValueError, match="stage failed on 7"):
        run_ordered(lambda: next(items, None), [("boom", boom), ("sink", lambda x: None)], 2, lambda: None)
    assert [t.name for t in threading.enumerate() if t.name.startswith("vcam-")] == []


# -- backgrounds in file mode ------------------------------------------------------------------


def _bg_clip(path: Path, n: int, rate: int) -> Path:
    """A background video whose frame i is grey level 20 * i (to tell frames apart)."""
    frames = [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(n)]
    return write_clip(path, frames, rate=rate, audio=None)


def _black_input(tmp_path: Path, n: int, pts: list[int] | None = None) -> Path:
    # red 0: the fake engine sees no person, so every output pixel is the background
    return write_clip(tmp_path / "in.mp4", [np.zeros((48, 64, 3), np.uint8)] * n, pts=pts, rate=10, audio=None)


def _bg_levels(out: Path) -> list[int]:
    return [round(float(f.mean()) / 20) for f in decode_rgb(out)]


def test_background_video_shorter_than_the_input_loops(tmp_path: Path) -> None:
    bg = _bg_clip(tmp_path / "bg.mp4", 4, rate=10)  # 0.4 s
    inp = _black_input(tmp_path, 10)  # 1.0 s at 10 fps
    out = tmp_path / "o.mp4"
    _process(inp, out, cfg=_cfg(mode="replace", background=str(bg)), crf=0)
    assert _bg_levels(out) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


def test_background_video_longer_than_the_input_is_trimmed_and_timed(tmp_path: Path) -> None:
    bg = _bg_clip(tmp_path / "bg.mp4", 12, rate=20)  # 0.6 s at 20 fps: two frames per input frame
    inp = _black_input(tmp_path, 5)  # 0.5 s at 10 fps
    out = tmp_path / "o.mp4"
    _process(inp, out, cfg=_cfg(mode="replace", background=str(bg)), crf=0)
    assert _bg_levels(out) == [0, 2, 4, 6, 8]  # the background at each input frame's time
    assert len(probe(out).video_pts) == 5


def test_background_video_follows_a_variable_frame_rate_input_by_time(tmp_path: Path) -> None:
    bg = _bg_clip(tmp_path / "bg.mp4", 10, rate=10)  # frame i at i * 100 ms
    inp = _black_input(tmp_path, 5, pts=[0, 100, 450, 500, 930])
    out = tmp_path / "o.mp4"
    _process(inp, out, cfg=_cfg(mode="replace", background=str(bg)), crf=0)
    assert _bg_levels(out) == [0, 1, 4, 5, 9]


@pytest.mark.parametrize("mode", ["blur", "color", "image"])
def test_every_background_kind_works_in_file_mode(tmp_path: Path, mode: str) -> None:
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, :32] = (255, 255, 255)  # person: left half
    img[:, 32:] = (0, 60, 0)
    inp = write_clip(tmp_path / "in.mp4", [img] * 3, audio=None)
    if mode == "image":
        from PIL import Image

        Image.fromarray(np.full((30, 40, 3), (200, 0, 200), np.uint8)).save(tmp_path / "bg.png")
        cfg = _cfg(mode="replace", background=str(tmp_path / "bg.png"))
        expected = (200, 0, 200)
    elif mode == "color":
        cfg, expected = _cfg(mode="color", color=[10, 20, 250]), (10, 20, 250)
    else:
        cfg, expected = _cfg(mode="blur", blur_strength=5), (0, 60, 0)  # a blurred flat colour is that colour
    out = tmp_path / "o.mp4"
    _process(inp, out, cfg=cfg, crf=0)
    frames = decode_rgb(out)
    assert len(frames) == 3
    for f in frames:
        assert abs(f[:, :24].astype(int) - 255).max() <= 6  # the person is untouched
        assert abs(f[:, 44:].astype(int) - expected).max() <= 6
