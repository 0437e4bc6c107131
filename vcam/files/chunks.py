"""Chunked long files (``--chunks N``, ``--chunk-seconds S``): one video cut into pieces that
are matted and encoded independently (in order on one machine, or side by side on Ray) and
joined back without re-encoding.

- **Cuts at keyframes.** The cuts are placed on the input's keyframes nearest to equal
  parts (by frame count or by seconds), found from the packet headers (nothing decoded).
- **Warm-up lead-in.** RVM carries a recurrent state: a chunk that started from a fresh
  state would show the first-frames warm-up of a new clip at every cut. So each chunk first
  mattes ``lead_in`` frames from before its start (they are not composited, encoded or
  written) and only then its own frames. The default (:data:`DEFAULT_LEAD_IN`) is chosen
  from the seam measurements in docs/files.md.
- **Lossless join.** Every chunk is encoded with the output's codec parameters into a hidden,
  tagged temporary file beside the output; the chunks' packets are then remuxed, in order,
  into one file, with the input's audio copied once (packet for packet) from the input.
  Every frame keeps the input's timestamp and duration, so frame count, timestamps and
  duration are those of an unchunked run.
- Mattes (``--matte-out``) of all chunks go into one temporary folder that is put in place
  when the join succeeded (the rules of :mod:`vcam.media.paths`).

Not chunked: PNG sequences and transparent outputs (``--mode remove``): those files are
written whole.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import itertools
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import av
import av.error

from vcam.build import summarize
from vcam.config import Config
from vcam.errors import InputError, OutputError
from vcam.files.process import (
    FileOptions,
    FrameProgress,
    _compositor,
    _matte_writer,
    _run,
    file_stages,
    hold_stop_signals,
    output_format_for,
    sink_for,
)
from vcam.frames import Frame
from vcam.matting import Matter
from vcam.media.audio import AudioCopier
from vcam.media.paths import MATTES, check_folder, place_file, place_folder, temp_dir_beside, temp_file_beside
from vcam.media.reader import DecodedFrame, VideoInfo, VideoReader
from vcam.sinks.file import check_output_path

__all__ = [
    "DEFAULT_LEAD_IN",
    "Chunk",
    "ChunkSpec",
    "check_chunkable",
    "chunk_file",
    "join_chunks",
    "plan_chunks",
    "process_chunk",
    "scan_keyframes",
]

log = logging.getLogger(__name__)

DEFAULT_LEAD_IN = 128
"""Frames matted before each cut to warm the recurrent state (see docs/files.md, "Seams")."""


@dataclass(frozen=True, slots=True)
class ChunkSpec:
    """How to cut: ``count`` equal parts, or parts of ``seconds``; ``lead_in`` frames each."""

    count: int | None = None
    seconds: float | None = None
    lead_in: int = DEFAULT_LEAD_IN

    def __post_init__(self) -> None:
        if (self.count is None) == (self.seconds is None):
            raise ValueError("give either count or seconds")
        if self.count is not None and self.count < 1:
            raise ValueError(f"count must be at least 1, got {self.count}")
        if self.seconds is not None and not self.seconds > 0:
            raise ValueError(f"seconds must be more than 0, got {self.seconds}")
        if self.lead_in < 0:
            raise ValueError(f"lead_in must be 0 or more, got {self.lead_in}")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Frames ``start`` .. ``end - 1`` (0-based, in presentation order) of one input, its
    ``number`` (0-based) and the ``lead_in`` frames before ``start`` that warm it up."""

    number: int
    start: int
    end: int
    lead_in: int

    @property
    def frames(self) -> int:
        return self.end - self.start


def scan_keyframes(path: Path) -> tuple[int, list[int], list[float]]:
    """(frame count, keyframe indices, frame times in seconds) of the first video stream, from
    its packets' headers: frame ``i`` is the packet with the ``i``-th smallest pts."""
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise InputError(f"input video {path}: has no video stream")
            s = c.streams.video[0]
            tb = s.time_base
            stamps: list[tuple[int, bool]] = []
            for p in c.demux(s):
                if p.pts is None or p.size == 0:
                    continue
                stamps.append((p.pts, bool(p.is_keyframe)))
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"input video {path}: cannot read it ({exc})") from None
    stamps.sort()
    keys = [i for i, (_, key) in enumerate(stamps) if key]
    times = [float(pts * tb) if tb is not None else 0.0 for pts, _ in stamps]
    return len(stamps), keys, times


def plan_chunks(path: Path, spec: ChunkSpec) -> list[Chunk]:
    """The chunks of ``path``: cuts at the keyframes nearest to ``spec``'s equal parts (a
    part with no keyframe near it merges into its neighbour; one chunk when there is none)."""
    n, keys, times = scan_keyframes(path)
    if n == 0:
        raise InputError(f"input video {path}: has no video frames")
    if spec.count is not None:
        targets = [round(n * k / spec.count) for k in range(1, spec.count)]
    else:
        assert spec.seconds is not None
        t0, targets, k = times[0], [], 1
        while t0 + k * spec.seconds < times[-1]:
            targets.append(bisect.bisect_left(times, t0 + k * spec.seconds))
            k += 1
    cuts: list[int] = []
    inner = [i for i in keys if 0 < i < n]
    for t in targets:
        if not inner:
            break
        j = bisect.bisect_left(inner, t)
        near = min((inner[m] for m in (j - 1, j) if 0 <= m < len(inner)), key=lambda i: abs(i - t))
        if not cuts or near > cuts[-1]:
            cuts.append(near)
    bounds = [0, *cuts, n]
    return [
        Chunk(number, start, end, min(spec.lead_in, start))
        for number, (start, end) in enumerate(itertools.pairwise(bounds))
    ]


def check_chunkable(output: Path, options: FileOptions) -> None:
    """Refuse chunking where the output is not one joinable video (raises OutputError)."""
    fmt = output_format_for(output, options)
    if fmt.png_sequence:
        raise OutputError(
            f"output {output}: a PNG sequence is not chunked; leave out --chunks/--chunk-seconds"
        )
    if fmt.alpha:
        raise OutputError(
            f"output {output}: transparent outputs (--mode remove) are not chunked; leave out --chunks/--chunk-seconds"
        )


def chunk_file(output: Path, tag: str, chunk: Chunk) -> Path:
    """Where chunk ``chunk`` of ``output`` is encoded: a hidden name carrying ``tag``, so that
    :func:`vcam.media.paths.remove_temp_files` finds it."""
    out = Path(output).expanduser()
    return out.with_name(f".{out.stem}.{tag}c{chunk.number:04d}.part{out.suffix}")


class _Window:
    """The frames ``chunk.start`` .. ``chunk.end - 1`` of ``reader``: the lead-in before them
    goes to ``warm`` (matted, then dropped), everything before it is decoded and skipped.
    Stands in for the reader in :func:`vcam.files.process._run`."""

    def __init__(self, reader: VideoReader, chunk: Chunk, warm: Callable[[DecodedFrame], None]) -> None:
        self._reader, self._chunk, self._warm = reader, chunk, warm
        self._started = False
        self.info = reader.info
        self.corrupt_times = reader.corrupt_times

    def read_frame(self) -> DecodedFrame | None:
        c = self._chunk
        if not self._started:
            self._started = True
            first = c.start - c.lead_in
            while True:
                d = self._reader.read_frame()
                if d is None:
                    raise InputError(
                        f"input video {self._reader.path}: ended before frame {c.start} (chunk {c.number})"
                    )
                if d.index >= c.start:
                    return d
                if d.index >= first:
                    self._warm(d)
        d = self._reader.read_frame()
        if d is None or d.index >= c.end:
            return None
        return d


def process_chunk(
    cfg: Config,
    input_path: Path,
    output_path: Path,
    chunk: Chunk,
    options: FileOptions,
    *,
    tag: str,
    engine: Matter,
    mattes: Path | None = None,
    frame_progress: FrameProgress | None = None,
    stop: Any = None,
    temp_tag: str | None = None,
) -> dict[str, object]:
    """Matte and encode one chunk into :func:`chunk_file` (video only; ``tag`` is the job's),
    its mattes (when ``mattes`` is a folder) as ``NNNNNN.png`` with the frames' own numbers.
    The file being written carries ``temp_tag`` (default ``tag``) in its temporary name.
    ``engine`` starts with a fresh state (the lead-in warms it). Returns the chunk's statistics."""
    fmt = output_format_for(output_path, options)
    target = chunk_file(output_path, tag, chunk)
    opts = dataclasses.replace(
        options, audio=False, overwrite=True, matte_out=str(mattes) if mattes else None
    )
    reader = VideoReader(input_path, "input video", on_corrupt=options.on_corrupt, upright=True)
    try:
        info = reader.info
        engine.reset()
        compositor = _compositor(cfg, opts, info.size, info.rate)
        try:
            with sink_for(target, fmt, opts, info, tag if temp_tag is None else temp_tag) as sink:
                # as process_file's: chunk 0 is then the unchunked run's own start; a later chunk's
                # warm-up repeats the first lead-in frame, before the lead-in itself
                stages = file_stages(cfg, engine, compositor, info.size, float(info.rate), _matte_writer(mattes, opts.matte_out))

                def warm(d: DecodedFrame) -> None:
                    stages.matte(stages.prepare(Frame(d.image, d.index, 0.0, d.time)))

                window = _Window(reader, chunk, warm)
                tick = frame_progress(chunk.frames) if frame_progress else None
                _run(cast(VideoReader, window), stages, sink, opts, tick, stop)
        finally:
            close = getattr(compositor, "close", None)
            if close is not None:
                close()
    finally:
        reader.close()
    if sink.frames_written != chunk.frames:
        raise InputError(
            f"input video {input_path}: chunk {chunk.number} gave {sink.frames_written} frames, expected {chunk.frames}"
        )
    summary = summarize(stages)
    summary.update(
        {
            "chunk": chunk.number,
            "frames_written": sink.frames_written,
            "corrupt_frames": len(reader.corrupt_times),
        }
    )
    return summary


def _ticks_to_s(packet: Any) -> float | None:
    if packet.dts is None or packet.time_base is None:
        return None
    return float(packet.dts * packet.time_base)


def join_chunks(
    input_path: Path, output_path: Path, chunks: Sequence[Chunk], options: FileOptions, *, tag: str
) -> dict[str, object]:
    """Remux the chunks' packets in order into ``output_path`` (no re-encoding) with the
    input's audio copied once; the output is written under a temporary name and put in place
    (:mod:`vcam.media.paths`); the chunk files are deleted. Returns frames and audio packets."""
    fmt = output_format_for(output_path, options)
    parent = check_output_path(output_path, options.overwrite)
    files = [chunk_file(output_path, tag, c) for c in chunks]
    reader = VideoReader(input_path, "input video", on_corrupt=options.on_corrupt, upright=True)
    try:
        info: VideoInfo = reader.info
    finally:
        reader.close()
    try:
        tmp = temp_file_beside(output_path, parent, tag)
    except OSError as exc:
        raise OutputError(f"output {output_path}: cannot write in {parent} ({exc.strerror or exc})") from exc
    frames = audio_packets = 0
    try:
        with av.open(str(files[0])) as first:
            template = first.streams.video[0]
            container_tags = dict(first.metadata)
            try:
                out = av.open(str(tmp), "w", format=fmt.container)
            except (av.error.FFmpegError, OSError) as exc:
                raise OutputError(f"output {output_path}: cannot write it ({exc})") from exc
            try:
                ostream = out.add_stream_from_template(template)
                ostream.time_base = template.time_base
                if info.orientation.matrix is not None and hasattr(ostream, "set_display_matrix"):
                    ostream.set_display_matrix(list(info.orientation.matrix))
                for key, value in container_tags.items():
                    if key.lower() not in ("encoder", "major_brand", "minor_version", "compatible_brands"):
                        out.metadata[key] = value
                audio = None
                if options.audio and info.audio_streams:
                    audio = AudioCopier(input_path, out, f"output {output_path}", info.start_offset)
                try:
                    for path in files:
                        with av.open(str(path)) as part:
                            for packet in part.demux(part.streams.video[0]):
                                if packet.dts is None and packet.pts is None:
                                    continue  # the demuxer's end marker
                                if audio is not None:
                                    audio.mux_until(_ticks_to_s(packet))
                                packet.stream = ostream
                                out.mux(packet)
                                frames += 1
                    if audio is not None:
                        audio.finish()
                        audio_packets = audio.packets
                finally:
                    if audio is not None:
                        audio.close()
            finally:
                out.close()
    except (av.error.FFmpegError, OSError) as exc:
        with hold_stop_signals():
            tmp.unlink(missing_ok=True)
        raise OutputError(f"output {output_path}: joining the chunks failed ({exc})") from exc
    except BaseException:
        with hold_stop_signals():
            tmp.unlink(missing_ok=True)
        raise
    with hold_stop_signals():
        place_file(tmp, output_path, options.overwrite)
        for path in files:
            path.unlink(missing_ok=True)
    return {"frames_written": frames, "audio_packets": audio_packets, "codec": fmt.codec.name}


def remove_chunk_files(output_path: Path, tag: str, chunks: Sequence[Chunk]) -> None:
    for c in chunks:
        with contextlib.suppress(OSError):
            chunk_file(output_path, tag, c).unlink(missing_ok=True)


class MatteFolder:
    """The temporary folder every chunk of one job writes its mattes into, put in place with
    :meth:`place` when the job succeeded, deleted by :meth:`discard` otherwise."""

    def __init__(self, final: Path, overwrite: bool, tag: str) -> None:
        self.final, self._overwrite = final, overwrite
        parent = check_folder(final, MATTES, overwrite)
        try:
            self.tmp = temp_dir_beside(final, parent, tag)
        except OSError as exc:
            raise OutputError(f"matte folder {final}: cannot write in {parent} ({exc.strerror})") from exc

    def place(self) -> None:
        with hold_stop_signals():
            place_folder(self.tmp, self.final, MATTES, self._overwrite)

    def discard(self) -> None:
        with hold_stop_signals():
            shutil.rmtree(self.tmp, ignore_errors=True)


def process_chunked(
    cfg: Config,
    input_path: str | Path,
    output_path: str | Path,
    spec: ChunkSpec,
    options: FileOptions | None = None,
    *,
    engine: Matter | None = None,
    frame_progress: FrameProgress | None = None,
    stop: Any = None,
    temp_tag: str = "",
    progress: Any = None,
) -> dict[str, object]:
    """:func:`vcam.files.process.process_file` in chunks, one after the other on this
    process's engine: the same output (frames, timestamps, audio) from chunks joined."""
    from vcam.build import build_engine

    opts = options or FileOptions()
    inp, outp = Path(input_path).expanduser(), Path(output_path).expanduser()
    if inp.exists() and outp.exists() and inp.resolve() == outp.resolve():
        raise OutputError(f"output {outp} is the input file; choose another output name")
    check_chunkable(outp, opts)
    check_output_path(outp, opts.overwrite)
    chunks = plan_chunks(inp, spec)
    tag = temp_tag or f"{_token()}-"
    engine = engine or build_engine(cfg, progress)
    mattes = MatteFolder(Path(opts.matte_out).expanduser(), opts.overwrite, tag) if opts.matte_out else None
    total = sum(c.frames for c in chunks)
    tick = frame_progress(total) if frame_progress else None
    stats: list[dict[str, object]] = []
    ok = False
    try:
        for c in chunks:
            stats.append(
                process_chunk(
                    cfg,
                    inp,
                    outp,
                    c,
                    opts,
                    tag=tag,
                    engine=engine,
                    mattes=mattes.tmp if mattes else None,
                    frame_progress=(lambda _total: tick) if tick else None,
                    stop=stop,
                )
            )
        summary = join_chunks(inp, outp, chunks, opts, tag=tag)
        if mattes is not None:
            mattes.place()
        ok = True
    finally:
        if not ok:
            with hold_stop_signals():
                remove_chunk_files(outp, tag, chunks)
                if mattes is not None:
                    mattes.discard()
    summary.update(
        {
            "input": str(inp),
            "output": str(outp),
            "frames_out": summary["frames_written"],
            "chunks": [{"start": c.start, "end": c.end, "lead_in": c.lead_in} for c in chunks],
            "corrupt_frames": sum(int(cast(int, s["corrupt_frames"])) for s in stats),
        }
    )
    return summary


def _token() -> str:
    import secrets

    return secrets.token_hex(3)
