"""Audio: every audio stream of the input copied packet for packet, or re-encoded where the
output's container cannot hold its codec (AAC into WebM: Opus), as the ``--audio`` policy says.

Policies (``AUDIO_POLICIES``): ``auto`` copies each stream, re-encoding (with a log line) only
one the container refuses; ``copy`` copies or refuses with a message saying what would work;
``reencode`` re-encodes every stream (Opus in WebM and Matroska, AAC in MP4 and MOV).
Leaving the audio out (``--audio drop``) is the caller's: it makes no copier.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.error

from vcam.errors import InputError, OutputError

__all__ = ["AUDIO_POLICIES", "AudioCopier", "AudioPolicy"]

AudioPolicy = Literal["auto", "copy", "reencode"]
AUDIO_POLICIES: tuple[AudioPolicy, ...] = ("auto", "copy", "reencode")
# the encoder a re-encoded stream gets, by muxer; Opus runs at 48 kHz only
_REENCODE = {"webm": ("libopus", 48000), "matroska": ("libopus", 48000), "mp4": ("aac", None), "mov": ("aac", None)}
_NAMES = {"libopus": "Opus", "aac": "AAC"}

log = logging.getLogger(__name__)
# stream tags that describe the track itself (the rest is about the old encode)
_STREAM_TAGS = ("language", "title", "handler_name")


class AudioCopier:
    """Adds a copy of each audio stream of ``source`` to ``output`` and muxes their packets.

    Packets keep their bytes and timestamps; only their container changes. Call
    :meth:`mux_until` with the time (seconds) of each video packet before muxing it, so audio
    and video stay interleaved, and :meth:`finish` once at the end. ``what`` names the output
    in error messages. ``shift`` (seconds, the video's too) is subtracted from every
    timestamp, so that a file that starts late is written starting at 0. Where a stream's
    timestamps go back (recordings joined, as the file reader's video re-timing handles too),
    the packets from there on are moved to follow on after the last one (logged once per
    stream); the muxer refuses timestamps that go back.
    """

    def __init__(
        self, source: Path, output: Any, what: str, shift: float = 0.0, policy: AudioPolicy = "auto"
    ) -> None:
        self._out = output
        self._shift = shift
        try:
            self._in = av.open(str(source))
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"input video {source}: cannot read its audio ({exc})") from None
        self.source = source
        streams = list(self._in.streams.audio)
        self._map: dict[int, Any] = {}
        self._encoders: dict[int, _Reencoder] = {}
        try:
            for s in streams:
                o = None
                if policy != "reencode":
                    try:
                        o = output.add_stream_from_template(s)
                    except ValueError as exc:  # the muxer does not take this codec
                        name = s.codec_context.name
                        if policy == "copy":
                            raise OutputError(
                                f"{what}: the input's audio ({name}) cannot be stored in this file type without "
                                f"re-encoding ({exc}); write .mkv or .mov instead, pass --audio reencode, "
                                "or leave it out with --audio drop"
                            ) from None
                if o is None:
                    enc = _Reencoder(s, output, what, shift)
                    o = enc.stream
                    self._encoders[s.index] = enc
                    how = "re-encoding it" if policy == "reencode" else "it cannot be copied into this file type; re-encoding it"
                    log.info(
                        "%s: audio stream %d (%s): %s to %s (--audio copy refuses instead, --audio drop leaves it out)",
                        what, s.index, s.codec_context.name, how, _NAMES.get(enc.encoder, enc.encoder),
                    )
                for key in _STREAM_TAGS:
                    if key in s.metadata:
                        o.metadata[key] = s.metadata[key]
                o.disposition = s.disposition
                self._map[s.index] = o
        except BaseException:
            self._in.close()
            raise
        self.streams = len(streams)
        self.packets = 0
        self._packets: Iterator[Any] = self._in.demux(*streams) if streams else iter(())
        self._pending: Any = None
        self._what = what
        # per input stream: ticks added to its timestamps, and where its next packet may start
        self._offset: dict[int, int] = {}
        self._next_dts: dict[int, int] = {}
        self._warned: set[int] = set()

    def mux_until(self, seconds: float | None) -> None:
        """Mux the audio packets up to ``seconds`` (all that are left for None)."""
        while True:
            packet = self._pending
            self._pending = None
            if packet is None:
                try:
                    packet = next(self._packets, None)
                except (av.error.FFmpegError, OSError) as exc:
                    raise InputError(
                        f"input video {self.source}: reading its audio failed ({exc}); pass --no-audio to leave it out"
                    ) from None
                if packet is None:
                    return
                if packet.dts is None or packet.size == 0:  # the demuxer's end-of-stream markers
                    continue
                self._follow_on(packet)  # once per packet: a held-back one is already re-timed
            if seconds is not None and packet.time_base is not None and packet.dts * packet.time_base - self._shift > seconds:
                self._pending = packet
                return
            enc = self._encoders.get(packet.stream_index)
            if enc is not None:
                for out in enc.encode(packet):
                    self._out.mux(out)
                    self.packets += 1
                continue
            if self._shift and packet.time_base is not None:
                delta = round(self._shift / packet.time_base)
                packet.dts -= delta
                if packet.pts is not None:
                    packet.pts -= delta
            packet.stream = self._map[packet.stream_index]
            self._out.mux(packet)
            self.packets += 1

    def _follow_on(self, packet: Any) -> None:
        """Add the stream's offset to ``packet``'s timestamps; a packet that would go back
        (by more than one packet's length) makes the offset larger so that it follows on."""
        idx = packet.stream_index
        offset = self._offset.get(idx, 0)
        dts = packet.dts + offset
        expected = self._next_dts.get(idx)
        if expected is not None and dts < expected - max(packet.duration or 0, 1):
            offset += expected - dts
            dts = expected
            if idx not in self._warned:
                self._warned.add(idx)
                tb = packet.time_base
                at = float(expected * tb) if tb is not None else expected
                log.warning(
                    "%s: the input's audio timestamps go back after %.3f s (recordings joined?); "
                    "the audio from there on is re-timed to follow on", self._what, at,
                )
        self._offset[idx] = offset
        packet.dts = dts
        if packet.pts is not None:
            packet.pts += offset
        self._next_dts[idx] = dts + (packet.duration or 0)

    def finish(self) -> None:
        """Mux what is left and close the input."""
        try:
            self.mux_until(None)
            for enc in self._encoders.values():
                for out in enc.encode(None):
                    self._out.mux(out)
                    self.packets += 1
        finally:
            self.close()

    def close(self) -> None:
        self._in.close()


class _Reencoder:
    """Decodes one input audio stream and encodes it for the output's container (Opus for
    WebM and Matroska, AAC for MP4 and MOV). The samples follow on one after another from the
    first packet's time (less ``shift``), so the track stays continuous where the input's
    timestamps jump, as the copy path's re-timing does."""

    def __init__(self, source_stream: Any, output: Any, what: str, shift: float) -> None:
        self._what = what
        self._shift = shift
        muxer = output.format.name.split(",")[0]
        self.encoder, rate = _REENCODE.get(muxer, ("libopus", 48000))
        ctx = source_stream.codec_context
        self.rate = int(rate or ctx.sample_rate or 48000)
        layout = ctx.layout.name if ctx.layout is not None and ctx.layout.nb_channels <= 2 else "stereo"
        try:
            self.stream = output.add_stream(self.encoder, rate=self.rate)
            self.stream.layout = layout
        except (av.error.FFmpegError, ValueError) as exc:
            raise OutputError(f"{what}: cannot re-encode the input's audio to {self.encoder} ({exc}); pass --audio drop") from None
        fmt = self.stream.codec_context.format
        self._resampler = av.AudioResampler(format=fmt.name if fmt else "fltp", layout=layout, rate=self.rate)
        self._decoder = ctx  # the input stream's own decoder: this copier's demuxer feeds only it
        self._next: int | None = None  # the pts (1/rate) of the next sample out

    def encode(self, packet: Any) -> list[Any]:
        """Output packets for one input packet (None: flush the decoder and the encoder)."""
        try:
            frames = self._decoder.decode(packet)
            out: list[Any] = []
            for frame in frames:
                if self._next is None:
                    known = frame.pts is not None and frame.time_base is not None
                    start = float(frame.pts * frame.time_base) - self._shift if known else 0.0
                    self._next = max(0, round(start * self.rate))
                for resampled in self._resampler.resample(frame):
                    out += self._encode_frame(resampled)
            if packet is None:
                for resampled in self._resampler.resample(None):
                    out += self._encode_frame(resampled)
                out += self.stream.encode(None)
            return out
        except av.error.FFmpegError as exc:
            raise OutputError(f"{self._what}: re-encoding the input's audio failed ({exc}); pass --audio drop") from None

    def _encode_frame(self, frame: Any) -> list[Any]:
        frame.pts = self._next or 0
        frame.time_base = Fraction(1, self.rate)
        self._next = frame.pts + frame.samples
        return list(self.stream.encode(frame))
