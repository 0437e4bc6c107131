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
    timestamp, so that a file that starts late is written starting at 0.
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

    def finish(self) -> None:
        """Mux what is left and close the input."""
        try:
            self.mux_until(None)
        finally:
            self.close()

    def close(self) -> None:
        self._in.close()
