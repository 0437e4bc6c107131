"""A video file sink (PyAV / FFmpeg) that never leaves a partial file.

Frames are written to a hidden temporary file in the output's folder; ``close()`` moves it
onto the output name only after the encoder was flushed (and, for transparent output, after
the alpha was read back from the file), and ``abort()`` deletes it. Without ``overwrite`` an
output that appeared meanwhile is kept (see :func:`vcam.media.paths.place_file`).

Given the input's :class:`~vcam.media.reader.VideoInfo` (``like``), the output is written
like the input: same time base and timestamps (variable frame rate included), frame
durations, colour description, display matrix (pictures are turned back to their coded
orientation) and container tags, and the input's audio streams copied packet for packet.
"""

from __future__ import annotations

import contextlib
import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import av.error
import numpy as np

from vcam.errors import InputError, OutputError
from vcam.media.alpha import read_rgba
from vcam.media.audio import AudioCopier, AudioPolicy
from vcam.media.display import Orientation
from vcam.media.formats import CODECS, OutputFormat, resolve_output_format
from vcam.media.paths import place_file, temp_file_beside
from vcam.media.reader import VideoInfo

__all__ = ["FileSink", "check_output_path"]

log = logging.getLogger(__name__)
_ENCODER_NAMES = {c.encoder: c.name for c in CODECS.values()}
# container tags that describe the old file rather than the recording
_SKIP_TAGS = frozenset({"major_brand", "minor_version", "compatible_brands", "encoder", "duration"})
_ALPHA_TOLERANCE = 8.0  # mean |written - read back| of the first alpha, in 0..255 levels


def _cut_to_whole_boxes(path: Path) -> None:
    """Truncate an MP4/MOV file after its last complete top-level box that is not a fragment
    header left without its data (``moof`` needs the ``mdat`` after it)."""
    size = path.stat().st_size
    good = pos = 0
    last_type = b""
    with open(path, "rb") as f:
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(16)
            length, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if length == 1 and len(head) == 16:
                length = int.from_bytes(head[8:16], "big")
            if length < 8 or pos + length > size:
                break
            pos += length
            if kind != b"moof":
                good = pos
            last_type = kind
    if last_type == b"moof" or good < size:
        os.truncate(path, good)


def check_output_path(path: Path, overwrite: bool, *, folder_ok: bool = False) -> Path:
    """Refuse an output that exists (without ``overwrite``), is a folder, or cannot be written
    into; return the folder the temporary file goes in."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.exists() and not overwrite:
        raise OutputError(f"output {path} already exists; pass --overwrite to replace it")
    if path.is_dir() and not folder_ok:
        raise OutputError(f"output {path} is a folder; give a file name such as out.mp4")
    if path.exists() and not path.is_dir() and folder_ok:
        raise OutputError(f"output {path} is a file; a PNG sequence is written into a folder")
    if not parent.is_dir():
        raise OutputError(f"output {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output {path}: folder {parent} is not writable")
    return parent


class FileSink:
    """Encodes pictures into ``path``.

    ``send(image, pts, ticks=, duration=)``: ``image`` is (H, W, 3) uint8 RGB — (H, W, 4)
    RGBA when ``alpha`` — at ``size`` (upright; turned back to the input's coded
    orientation here). ``ticks``/``duration`` are in ``time_base`` units (the input's, when
    ``like`` is given) and are kept exactly (less the input's ``start_offset``); else ``pts``
    in seconds is used, else frame ``n`` is at ``n / fps``. ``codec`` is a ``--codec`` name
    (h264, hevc, vp9, prores) or its FFmpeg encoder name; ``crf`` None means the codec's
    default. ``temp_tag`` goes into the temporary file's name (a parent process finds it by
    that if this one dies).
    """

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        fps: float | Fraction,
        *,
        codec: str | None = None,
        crf: int | None = None,
        preset: str = "veryfast",
        time_base: Fraction | None = None,
        overwrite: bool = True,
        alpha: bool = False,
        like: VideoInfo | None = None,
        audio: bool = True,
        audio_policy: AudioPolicy = "auto",
        output_format: OutputFormat | None = None,
        temp_tag: str = "",
        keep_partial: bool = False,
    ) -> None:
        self.path = Path(path).expanduser()
        self._keep_partial = keep_partial
        self.name = str(self.path)
        self._overwrite = overwrite
        parent = check_output_path(self.path, overwrite)
        name = _ENCODER_NAMES.get(codec, codec) if codec else None
        fmt = output_format or resolve_output_format(self.path, name, alpha)
        if fmt.png_sequence:
            raise OutputError(f"output {self.path}: a PNG sequence is written by the PNG sequence sink")
        self.format = fmt
        self.alpha = fmt.alpha
        rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
        if like is not None:
            rate, time_base = like.rate, time_base or like.time_base
        self.time_base: Fraction = time_base or 1 / rate
        self._fps = float(rate)
        self._n = 0
        self._last_pts: int | None = None
        self._durations: dict[int, int] = {}
        self._shift_s = like.start_offset if like is not None else 0.0
        self._shift = round(self._shift_s / self.time_base)
        self._first_alpha: np.ndarray | None = None
        self.size = size
        orient = like.orientation if like is not None else Orientation()
        # turn pictures back and store the matrix, when this PyAV can write one
        can_matrix = hasattr(av.video.stream.VideoStream, "set_display_matrix")
        if orient.matrix is not None and not can_matrix:
            log.warning("output %s: this PyAV cannot write a display matrix; pictures are stored upright", self.path)
        self._orient = orient if can_matrix else Orientation()
        coded = (size[1], size[0]) if self._orient.quarter_turns % 2 else size
        try:
            self._tmp = temp_file_beside(self.path, parent, temp_tag)
        except OSError as exc:
            raise OutputError(f"output {self.path}: cannot write in {parent} ({exc.strerror or exc})") from exc
        self._audio: AudioCopier | None = None
        self._container: Any = None
        try:
            self._container = av.open(str(self._tmp), "w", format=fmt.container, options=self._container_options(fmt))
            self._open_video(fmt, rate, coded, crf, preset, like)
            if like is not None:
                for key, value in like.metadata.items():
                    if key.lower() not in _SKIP_TAGS:
                        self._container.metadata[key] = value
                if audio and like.audio_streams:
                    self._audio = AudioCopier(
                        like.path, self._container, f"output {self.path}", like.start_offset, audio_policy
                    )
        except (OutputError, InputError):
            self._discard()
            raise
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            self._discard()
            raise OutputError(f"output {self.path}: cannot write {fmt.codec.name} into this file ({exc})") from exc
        except BaseException:  # Ctrl-C while opening: the caller has no sink to abort yet
            self._discard()
            raise

    def _open_video(
        self, fmt: OutputFormat, rate: Fraction, coded: tuple[int, int], crf: int | None, preset: str, like: VideoInfo | None
    ) -> None:
        codec = fmt.codec
        if crf is not None and codec.crf is None:
            log.info("output %s: --crf does not apply to %s; ignored", self.path, codec.name)
            crf = None
        opts = codec.options(crf, preset, fmt.alpha)
        stream = cast(av.VideoStream, self._container.add_stream(codec.encoder, rate=rate, options=opts))
        stream.width, stream.height = coded
        pix = codec.alpha_pix_fmt if fmt.alpha else codec.pix_fmt
        assert pix is not None  # resolve_output_format guarantees an alpha format
        if pix == "yuv420p" and codec.encoder in ("libx264", "libx265") and (coded[0] % 2 or coded[1] % 2):
            log.warning("output %s: odd size %dx%d; writing yuv444p (some players cannot show it)", self.path, *coded)
            pix = "yuv444p"
        stream.pix_fmt = pix
        self._pix_fmt = pix
        stream.codec_context.time_base = self.time_base
        stream.time_base = self.time_base
        if codec.name == "hevc" and fmt.container in ("mp4", "mov"):
            stream.codec_tag = "hvc1"  # what Apple players look for
        self._cs: int | None = None
        self._range: int | None = None
        if like is not None:
            ctx = stream.codec_context
            c = like.colour
            ctx.color_primaries, ctx.color_trc = c.color_primaries, c.color_trc
            if c.colorspace != 0:  # 0: the input is RGB; its matrix and range do not apply to YUV
                ctx.colorspace, ctx.color_range = c.colorspace, c.color_range
                self._cs = c.colorspace if c.colorspace != 2 else None
                self._range = c.color_range or None
        if self._orient.matrix is not None:
            stream.set_display_matrix(list(self._orient.matrix))
        self._stream = stream

    def send(self, image: np.ndarray, pts: float | None = None, *, ticks: int | None = None, duration: int | None = None) -> None:
        channels = 4 if self.alpha else 3
        if image.shape != (self.size[1], self.size[0], channels) or image.dtype != np.uint8:
            raise ValueError(f"expected ({self.size[1]}, {self.size[0]}, {channels}) uint8, got {image.shape} {image.dtype}")
        if self.alpha and self._first_alpha is None:
            self._first_alpha = self._orient.coded(image[..., 3:]).copy()
        img = np.ascontiguousarray(self._orient.coded(image))
        # a view on the array (no copy under the GIL); reformat makes the encoder's own frame
        frame = av.VideoFrame.from_numpy_buffer(img, format="rgba" if self.alpha else "rgb24")
        frame = frame.reformat(format=self._pix_fmt, dst_colorspace=self._cs, dst_color_range=self._range, threads=1)
        if ticks is not None:
            ticks -= self._shift
        elif pts is not None:
            ticks = round((pts - self._shift_s) / self.time_base)
        else:
            ticks = round(self._n / self._fps / self.time_base)
        if self._last_pts is not None:
            ticks = max(ticks, self._last_pts + 1)  # encoders need strictly increasing pts
        frame.pts, frame.time_base = ticks, self.time_base
        if duration:
            self._durations[ticks] = duration
        self._last_pts = ticks
        self._n += 1
        try:
            for packet in self._stream.encode(frame):
                self._mux(packet)
        except (av.error.FFmpegError, OSError) as exc:
            if self._keep_partial:
                self._keep_what_was_written(exc)
            self.abort()
            raise OutputError(f"output {self.path}: writing failed ({self._why(exc)})") from exc

    def _why(self, exc: BaseException) -> str:
        """What to say of a write error: that the output's folder is gone (removed while vcam
        wrote into it: FFmpeg says only "No such file or directory"), else the error itself."""
        parent = self.path.absolute().parent
        return f"folder {self.path.parent} no longer exists" if not parent.is_dir() else str(exc)

    # -- live recordings (keep_partial): a write error (disk full) keeps what was recorded ----

    def _container_options(self, fmt: OutputFormat) -> dict[str, str]:
        """MP4/MOV recordings are written in one-second fragments, each playable on its own,
        so that a file cut short by a full disk plays up to its last whole fragment (a plain
        MP4 needs its index, written at the end, and is unreadable without it)."""
        if self._keep_partial and fmt.container in ("mp4", "mov"):
            return {"movflags": "empty_moov+default_base_moof", "frag_duration": "1000000"}
        return {}

    def _keep_what_was_written(self, exc: BaseException) -> None:
        """Close what can be closed, cut the file back to its last whole fragment, and move it
        onto the output name (renaming and truncating need no free space); raise the error."""
        with contextlib.suppress(av.error.FFmpegError, OSError, ValueError):
            self._container.close()
        self._container = None
        try:
            if self.format.container in ("mp4", "mov"):
                _cut_to_whole_boxes(self._tmp)
            os.replace(self._tmp, self.path)
        except OSError as err:
            log.debug("keeping %s failed: %s", self._tmp, err)
            return  # the caller aborts (deletes the temporary file) and reports the write error
        raise OutputError(
            f"output {self.path}: writing failed after {self._n} frames ({exc}); "
            "the recording up to there was kept; free some space and start again"
        ) from exc

    def _mux(self, packet: Any) -> None:
        if packet.pts is not None and packet.pts in self._durations:
            packet.duration = self._durations.pop(packet.pts)
        if self._audio is not None and packet.dts is not None:
            self._audio.mux_until(float(packet.dts * self.time_base))
        self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and move the finished file onto the output name."""
        try:
            for packet in self._stream.encode(None):
                self._mux(packet)
            if self._audio is not None:
                self._audio.finish()
            self._container.close()
        except (av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"output {self.path}: finishing the file failed ({self._why(exc)})") from exc
        except BaseException:
            self.abort()
            raise
        if self.alpha:
            self._check_alpha()
        place_file(self._tmp, self.path, self._overwrite)
        log.debug("wrote %d frames to %s", self._n, self.path)

    def _check_alpha(self) -> None:
        """Decode the first picture back: transparency that did not survive is an error."""
        try:
            back = read_rgba(self._tmp, 1)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self.abort()
            raise OutputError(f"output {self.path}: cannot read the alpha back ({exc})") from exc
        if self._first_alpha is None:
            return
        diff = float(np.abs(back[0][..., 3:].astype(np.int16) - self._first_alpha).mean()) if back else 255.0
        if diff > _ALPHA_TOLERANCE:
            self.abort()
            raise OutputError(
                f"output {self.path}: the alpha channel did not survive encoding (mean error {diff:.0f}/255); "
                "write .mov (ProRes 4444) or --codec png instead"
            )

    def _discard(self) -> None:
        try:
            if self._audio is not None:
                audio, self._audio = self._audio, None
                audio.close()
            if self._container is not None:
                container, self._container = self._container, None
                try:
                    container.close()
                except (av.error.FFmpegError, OSError, ValueError):
                    pass
        finally:  # whatever closing raised, the temporary file goes
            self._tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        """Stop writing and delete the temporary file; the output name is left untouched."""
        self._discard()

    @property
    def frames_written(self) -> int:
        return self._n

    @property
    def audio_packets(self) -> int:
        """Audio packets copied so far (all of them after ``close``)."""
        return self._audio.packets if self._audio is not None else 0
