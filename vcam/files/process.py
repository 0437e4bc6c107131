"""File mode (``vcam process``): every frame of a video through the engine and compositor.

Nothing is dropped and nothing is invented: the output has the input's frames, timestamps
(variable frame rate too), durations, display matrix and colour description, and its audio
streams copied packet for packet (see :mod:`vcam.sinks.file`). It is written under a
temporary name that becomes the output only when complete; an error, Ctrl-C, SIGTERM or
SIGHUP leaves no partial file behind, and nothing vcam did not write is ever replaced or
deleted (the rules: :mod:`vcam.media.paths`).

Decoding, matting, compositing and encoding overlap: each runs on its own named thread,
joined by small bounded queues whose ``put`` waits (file mode never drops a frame). The
same stage functions also run one after another on the calling thread (``overlap=False``):
the thread-free twin, used to compare speed and by tests.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from vcam.build import build_engine, summarize, write_stats
from vcam.compositing import Compositor, ReplaceCompositor, make_compositor
from vcam.compositing.backgrounds import TimedBackground, VideoBackground
from vcam.compositing.blend import alpha_to_u8
from vcam.compositing.cutout import AlphaOnly, Cutout
from vcam.compositing.enhance import enhancer_for
from vcam.compositing.refine import make_refiner
from vcam.config import Config
from vcam.errors import OutputError
from vcam.frames import Frame
from vcam.matting import Matter
from vcam.matting.lazy import lazy_if_off
from vcam.matting.models import ProgressFactory
from vcam.media.audio import AudioPolicy
from vcam.media.formats import ENCODER_PRESETS, OutputFormat, resolve_output_format
from vcam.media.paths import MATTES, PNG_SEQUENCE, check_folder, place_folder, temp_dir_beside
from vcam.media.reader import CORRUPT_POLICIES, DecodedFrame, VideoReader, format_time
from vcam.pipeline.ordered import run_ordered
from vcam.pipeline.stages import Matted, Stages
from vcam.signals import hold_stop_signals, raise_if_stopped
from vcam.sinks.file import FileSink, check_output_path
from vcam.sinks.pngseq import PngSequenceSink

__all__ = ["FileOptions", "FrameProgress", "hold_stop_signals", "output_format_for", "process_file", "sink_for"]

log = logging.getLogger(__name__)
_POLL_S = 0.1

FrameProgress = Callable[[int | None], Callable[[int], None]]
"""Given the expected frame count (None: unknown), returns a function called with the number
of frames finished since its last call."""


@dataclass(frozen=True, slots=True)
class FileOptions:
    """How one file is processed (the ``vcam process`` flags).

    ``codec``: h264, hevc, vp9, prores, png or None (from the output's suffix). ``crf``: None
    for the codec's default. ``transparent``: write the person over nothing (``--mode
    remove``). ``on_corrupt``: ``fail`` or ``repeat``. ``overlap``: run the stages on
    threads (False: one after another on the calling thread). ``queue_size``: frames
    waiting between two stages.
    """

    codec: str | None = None
    crf: int | None = None
    encoder_preset: str = "medium"
    transparent: bool = False
    audio: bool = True
    audio_policy: AudioPolicy = "auto"  # copy, or re-encode what the container refuses (vcam.media.audio)
    on_corrupt: str = "fail"
    matte_out: str | None = None
    overwrite: bool = False
    overlap: bool = True
    queue_size: int = 4

    def __post_init__(self) -> None:
        if self.on_corrupt not in CORRUPT_POLICIES:
            raise ValueError(f"on_corrupt must be one of {CORRUPT_POLICIES}, got {self.on_corrupt!r}")
        if self.encoder_preset not in ENCODER_PRESETS:
            raise ValueError(f"encoder_preset must be one of {ENCODER_PRESETS}, got {self.encoder_preset!r}")
        if self.queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {self.queue_size}")


class _Sink(Protocol):
    name: str

    def send(self, image: np.ndarray, pts: float | None = None, *, ticks: int | None = None, duration: int | None = None) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...

    @property
    def frames_written(self) -> int: ...


class _Stop(Protocol):
    """Anything that says whether to stop: a threading or multiprocessing Event."""

    def is_set(self) -> bool: ...


@dataclass(slots=True)
class _Item:
    decoded: DecodedFrame
    frame: Frame
    matted: Matted | None = None
    image: np.ndarray | None = None


def output_format_for(path: Path, options: FileOptions) -> OutputFormat:
    """The encoder and container ``path`` gets with ``options`` (raises OutputError, also for
    a ``crf`` the codec does not take)."""
    fmt = resolve_output_format(path, options.codec, options.transparent)
    lo_hi = fmt.codec.crf_range
    if options.crf is not None and lo_hi is not None and not lo_hi[0] <= options.crf <= lo_hi[1]:
        raise OutputError(f"--crf {options.crf}: {fmt.codec.name} takes {lo_hi[0]}..{lo_hi[1]} (lower is better)")
    return fmt


@contextlib.contextmanager
def _matte_dir(path: str | None, overwrite: bool, tag: str = "") -> Iterator[Path | None]:
    """A temporary folder beside ``path`` whose mattes go into ``path`` only when the run
    succeeds (an existing folder is kept: only vcam's own mattes in it are replaced)."""
    if path is None:
        yield None
        return
    final = Path(path).expanduser()
    parent = check_folder(final, MATTES, overwrite)
    try:
        tmp = temp_dir_beside(final, parent, tag)
    except OSError as exc:
        raise OutputError(f"matte folder {final}: cannot write in {parent} ({exc.strerror})") from exc
    try:
        yield tmp
    except BaseException:
        with hold_stop_signals():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    with hold_stop_signals():
        place_folder(tmp, final, MATTES, overwrite)


def file_stages(
    cfg: Config, engine: Matter, compositor: Compositor, size: tuple[int, int], rate: float,
    on_alpha: Callable[[Frame, np.ndarray], None] | None,
) -> Stages:
    """A file's stages, for a whole file and each of its chunks alike (vcam/files/chunks.py):
    the configured refinement, still-frame reuse, first-frame warm-up, framing and light."""
    return Stages(
        engine, compositor, output_size=size, mirror=cfg.effect.mirror, on_alpha=on_alpha,
        refiner=make_refiner(cfg.model.refine), enhancer=enhancer_for(cfg, size, rate),
        still=cfg.model.still_threshold, warmup=cfg.model.warmup,
    )


def process_file(
    cfg: Config,
    input_path: str | Path,
    output_path: str | Path,
    options: FileOptions | None = None,
    *,
    stats_json: str | None = None,
    progress: ProgressFactory | None = None,
    frame_progress: FrameProgress | None = None,
    engine: Matter | None = None,
    stop: _Stop | None = None,
    temp_tag: str = "",
) -> dict[str, object]:
    """Run the engine and compositor over every frame of a video file (nothing dropped).

    The output keeps the input's size, frames, timestamps and audio (see the module notes).
    With ``options.matte_out`` the alpha of every frame is also written as ``000000.png``,
    ... (8-bit, 255 = person, upright). ``engine`` replaces the configured one (tests);
    ``stop``, when set, interrupts the run like Ctrl-C (raises KeyboardInterrupt).
    ``temp_tag`` goes into the names of the temporary files (see
    :func:`vcam.media.paths.remove_temp_files`). Every output is checked before anything is
    loaded or decoded. Returns the run statistics (also written to ``stats_json``).
    """
    opts = options or FileOptions()
    inp, outp = Path(input_path).expanduser(), Path(output_path).expanduser()
    if inp.exists() and outp.exists() and inp.resolve() == outp.resolve():
        raise OutputError(f"output {outp} is the input file; choose another output name")
    fmt = output_format_for(outp, opts)
    mattes = Path(opts.matte_out).expanduser() if opts.matte_out is not None else None
    if fmt.png_sequence:
        check_folder(outp, PNG_SEQUENCE, opts.overwrite, [("input video", inp)] + ([("matte folder", mattes)] if mattes else []))
    else:
        check_output_path(outp, opts.overwrite)
    if mattes is not None:
        check_folder(mattes, MATTES, opts.overwrite, [("input video", inp), ("output", outp)])
    reader = VideoReader(inp, "input video", on_corrupt=opts.on_corrupt, upright=True)
    try:
        info = reader.info
        size = info.size
        if info.start_offset:
            log.info("input video %s starts at %.3f s; the output starts at 0 (audio moved with it)", inp, info.start_offset)
        if info.other_streams:
            log.info("input video %s: %d subtitle/data stream(s) are not copied", inp, info.other_streams)
        engine = engine or lazy_if_off(cfg, lambda: build_engine(cfg, progress))
        compositor = _compositor(cfg, opts, size, info.rate)
        try:
            with _matte_dir(opts.matte_out, opts.overwrite, temp_tag) as mdir, sink_for(outp, fmt, opts, info, temp_tag) as sink:
                stages = file_stages(cfg, engine, compositor, size, float(info.rate), _matte_writer(mdir, opts.matte_out))
                tick = frame_progress(info.frame_count) if frame_progress else None
                _run(reader, stages, sink, opts, tick, stop)
        finally:
            close = getattr(compositor, "close", None)
            if close is not None:
                close()
    finally:
        reader.close()
    summary = summarize(stages)
    summary.update({
        "input": str(inp),
        "output": str(outp),
        "codec": fmt.codec.name,
        "transparent": fmt.alpha,
        "frames_written": sink.frames_written,
        "audio_packets": getattr(sink, "audio_packets", 0),
        "corrupt_frames": len(reader.corrupt_times),
        "corrupt_at": [format_time(t - info.start_time) for t in reader.corrupt_times[:100]],
        "overlap": opts.overlap,
    })
    write_stats(stats_json, summary)
    return summary


def _compositor(cfg: Config, opts: FileOptions, size: tuple[int, int], rate: Fraction) -> Compositor:
    if opts.transparent:
        return Cutout()
    compositor: Compositor = make_compositor(cfg.effect, size, float(rate))
    if isinstance(compositor, ReplaceCompositor) and isinstance(compositor.background, VideoBackground):
        # frame numbers are not time in a variable-frame-rate input: drive it by timestamps
        compositor.background = TimedBackground(compositor.background)
    if opts.matte_out is not None and not compositor.needs_alpha:
        compositor = AlphaOnly()
    return compositor


@contextlib.contextmanager
def sink_for(outp: Path, fmt: OutputFormat, opts: FileOptions, info: Any, tag: str) -> Iterator[_Sink]:
    """The sink writing ``outp`` (a temporary file or folder until it is finished): finished
    (``close``: the output takes its name) when the block ends normally, deleted (``abort``)
    when it raises. A stop signal while it opens waits until it is open (so that it is then
    deleted, not left), as one does while it is finished or deleted."""
    sink: _Sink | None = None
    ok = False
    try:
        with hold_stop_signals():
            sink = _open_sink(outp, fmt, opts, info, tag)
        yield sink
        with hold_stop_signals():
            sink.close()
        ok = True
    finally:
        if not ok and sink is not None:
            with hold_stop_signals():
                sink.abort()


def _open_sink(outp: Path, fmt: OutputFormat, opts: FileOptions, info: Any, tag: str) -> _Sink:
    if fmt.still_image:
        from vcam.sinks.image import ImageSink

        return ImageSink(outp, info.size, kind=fmt.container or "png", alpha=fmt.alpha, overwrite=opts.overwrite, temp_tag=tag)
    if fmt.png_sequence:
        return PngSequenceSink(
            outp, info.size, alpha=fmt.alpha, overwrite=opts.overwrite, like=info, audio=opts.audio, temp_tag=tag
        )
    return FileSink(
        outp, info.size, info.rate, crf=opts.crf, preset=opts.encoder_preset, overwrite=opts.overwrite,
        like=info, audio=opts.audio, audio_policy=opts.audio_policy, output_format=fmt, temp_tag=tag,
    )


def _matte_writer(folder: Path | None, name: str | None) -> Callable[[Frame, np.ndarray], None] | None:
    if folder is None:
        return None

    def on_alpha(frame: Frame, alpha: np.ndarray) -> None:
        if not cv2.imwrite(str(folder / f"{frame.index:06d}.png"), alpha_to_u8(alpha)):
            raise OutputError(f"matte folder {name}: cannot write {frame.index:06d}.png (disk full?)")

    return on_alpha


def _run(
    reader: VideoReader,
    stages: Stages,
    sink: _Sink,
    opts: FileOptions,
    tick: Callable[[int], None] | None,
    stop: _Stop | None,
) -> None:
    """Decode → matte → composite → encode every frame, overlapped or one after another."""
    clock, stats = stages.clock, stages.stats

    def decode() -> _Item | None:
        t0 = clock()
        d = reader.read_frame()
        if d is None:
            return None
        stats.stage("capture", clock() - t0)
        stats.frame_in()
        return _Item(d, Frame(d.image, d.index, t0, d.time))

    def matte(item: _Item) -> _Item:
        item.matted = stages.matte(stages.prepare(item.frame))
        return item

    def composite(item: _Item) -> _Item:
        assert item.matted is not None
        item.image = stages.render(item.matted)
        item.matted = None
        return item

    def encode(item: _Item) -> None:
        assert item.image is not None
        t0 = clock()
        d = item.decoded
        sink.send(item.image, d.time, ticks=d.pts, duration=d.duration)
        stats.stage("sink", clock() - t0)
        stats.frame_out(item.frame.timestamp)

    done = [0]

    def report() -> None:
        raise_if_stopped()  # a stop signal whose exception a finaliser swallowed
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt
        n = sink.frames_written
        if tick is not None and n > done[0]:
            tick(n - done[0])
        done[0] = n

    steps: list[tuple[str, Callable[[Any], Any]]] = [("matting", matte), ("composite", composite), ("encode", encode)]
    if opts.overlap:
        run_ordered(decode, steps, opts.queue_size, report)
    else:
        last = time.monotonic()
        while (item := decode()) is not None:
            for _, fn in steps:
                item = fn(item)
            if time.monotonic() - last >= _POLL_S:
                report()
                last = time.monotonic()
    report()
