"""Audio pass-through: every audio stream of the input copied packet for packet (no re-encoding)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import av.error

from vcam.errors import InputError, OutputError

__all__ = ["AudioCopier"]

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

    def __init__(self, source: Path, output: Any, what: str, shift: float = 0.0) -> None:
        self._out = output
        self._shift = shift
        try:
            self._in = av.open(str(source))
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"input video {source}: cannot read its audio ({exc})") from None
        self.source = source
        streams = list(self._in.streams.audio)
        self._map: dict[int, Any] = {}
        try:
            for s in streams:
                try:
                    o = output.add_stream_from_template(s)
                except ValueError as exc:  # the muxer does not take this codec
                    name = s.codec_context.name
                    raise OutputError(
                        f"{what}: the input's audio ({name}) cannot be stored in this file type without "
                        f"re-encoding ({exc}); write .mkv or .mov instead, or pass --no-audio"
                    ) from None
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
        finally:
            self.close()

    def close(self) -> None:
        self._in.close()
