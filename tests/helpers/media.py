"""Video files for tests, generated with PyAV: exact timestamps (VFR), audio, a display matrix,
damaged frames; readers that look at what was written; generated and real-portrait frames."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.helpers import evaldata


def tone(seconds: float, rate: int = 48000) -> np.ndarray:
    """A stereo test tone, (2, N) float32 in -0.3..0.3."""
    t = np.arange(int(seconds * rate)) / rate
    left = 0.3 * np.sin(2 * np.pi * 440 * t)
    right = 0.3 * np.sin(2 * np.pi * 660 * t)
    return np.stack([left, right]).astype(np.float32)


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    *,
    pts: list[int] | None = None,
    time_base: Fraction = Fraction(1, 1000),
    rate: Fraction | int = 25,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    audio: str | None = "aac",
    audio_seconds: float | None = None,
    audio_start: int = 0,
    rotation: int | None = None,
    matrix: list[int] | None = None,
    colour: tuple[int, int, int, int] | None = None,
) -> Path:
    """Encode RGB frames with explicit ``pts`` (in ``time_base``; default ``i / rate``) and,
    unless ``audio`` is None, a tone encoded with that codec, as long as the video, its first
    sample at ``audio_start`` (in 1/48000 s). ``colour`` (colorspace, range, primaries,
    transfer; FFmpeg's codes) tags the video and converts with that matrix and range."""
    n = len(frames)
    if pts is None:
        pts = [round(i / Fraction(rate) / time_base) for i in range(n)]
    with av.open(str(path), "w") as c:
        v = c.add_stream(codec, rate=Fraction(rate), options=options or {})
        v.width, v.height = frames[0].shape[1], frames[0].shape[0]
        v.pix_fmt = "yuv420p"
        v.codec_context.time_base = time_base
        v.time_base = time_base
        if rotation is not None:
            v.set_display_rotation(rotation)
        if matrix is not None:
            v.set_display_matrix(matrix)
        if colour is not None:
            ctx = v.codec_context
            ctx.colorspace, ctx.color_range, ctx.color_primaries, ctx.color_trc = colour
        a = None
        if audio is not None:
            a = c.add_stream(audio, rate=48000)
            a.layout = "stereo"
        for img, p in zip(frames, pts, strict=True):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            if colour is not None:
                f = f.reformat(format="yuv420p", dst_colorspace=colour[0], dst_color_range=colour[1])
            f.pts, f.time_base = p, time_base
            c.mux(v.encode(f))
        c.mux(v.encode(None))
        if a is not None:
            seconds = audio_seconds if audio_seconds is not None else float(pts[-1] * time_base) + 1 / float(rate)
            samples = tone(seconds)
            step = 1024
            fmt = a.codec_context.format.name if a.codec_context.format else "fltp"
            for start in range(0, samples.shape[1] - step + 1, step):
                chunk = samples[:, start : start + step]
                if fmt == "s16":
                    af = av.AudioFrame.from_ndarray((chunk.T.reshape(1, -1) * 32767).astype(np.int16), format="s16", layout="stereo")
                else:
                    af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
                af.sample_rate, af.pts = 48000, audio_start + start
                c.mux(a.encode(af))
            c.mux(a.encode(None))
    return path


@dataclass
class Probe:
    """What a file holds: video packets (pts, duration) in presentation order, the video time
    base, container and stream durations (seconds), frame rate, coded size, rotation, and the
    audio packets as (pts, dts, bytes) per audio stream."""

    video_pts: list[int]
    video_durations: list[int]
    time_base: Fraction
    duration: float | None
    video_duration: float | None
    rate: Fraction
    size: tuple[int, int]
    rotation: int
    codec: str
    pix_fmt: str
    audio: list[list[tuple[int | None, int | None, bytes]]]
    audio_codecs: list[str]


def probe(path: Path) -> Probe:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        packets = sorted((p.pts, p.duration) for p in c.demux(v) if p.size)
        tb = v.time_base
        vdur = float(v.duration * tb) if v.duration else None
        info = (Fraction(v.average_rate), (v.codec_context.width, v.codec_context.height), v.codec_context.name)
        pix = v.codec_context.pix_fmt or ""
    with av.open(str(path)) as c:
        rotation = next(iter(c.decode(video=0))).rotation
    audio: list[list[tuple[int | None, int | None, bytes]]] = []
    with av.open(str(path)) as c:
        codecs = [s.codec_context.name for s in c.streams.audio]
        for _s in c.streams.audio:
            audio.append([])
        if c.streams.audio:
            index = {s.index: i for i, s in enumerate(c.streams.audio)}
            for p in c.demux(*c.streams.audio):
                if p.size:
                    audio[index[p.stream.index]].append((p.pts, p.dts, bytes(p)))
        duration = c.duration / 1_000_000 if c.duration else None
    return Probe(
        [p for p, _ in packets], [d for _, d in packets], tb, duration, vdur, info[0], info[1], rotation,
        info[2], pix, audio, codecs,
    )


def colour_tags(path: Path) -> tuple[int, int, int, int]:
    """(colorspace, range, primaries, transfer) of the first video stream."""
    with av.open(str(path)) as c:
        ctx = c.streams.video[0].codec_context
        return int(ctx.colorspace), int(ctx.color_range), int(ctx.color_primaries), int(ctx.color_trc)


def decode_rgb(path: Path) -> list[np.ndarray]:
    """Every picture of a video as (H, W, 3) uint8 RGB, coded orientation (converted with
    the matrix and range the stream is tagged with)."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def decode_rgba(path: Path) -> list[np.ndarray]:
    """Every picture as (H, W, 4) RGBA, decoding VP9 with libvpx (FFmpeg's own VP9 decoder
    drops the alpha side channel); written independently of vcam's reader."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        dec = av.CodecContext.create("libvpx-vp9", "r") if s.codec_context.name == "vp9" else s.codec_context
        out = []
        for p in c.demux(s):
            for f in dec.decode(p):
                assert "a" in f.format.name.replace("gray", ""), f"no alpha plane in {f.format.name}"
                out.append(f.to_ndarray(format="rgba"))
        return out


def damage_packet(path: Path, frame_index: int) -> int:
    """Zero the bytes of the video packet of the ``frame_index``-th frame (presentation
    order); returns that frame's pts."""
    with av.open(str(path)) as c:
        packets = sorted((p.pts, p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size)
    pts, pos, size = packets[frame_index]
    data = bytearray(path.read_bytes())
    data[pos : pos + size] = bytes(size)
    path.write_bytes(bytes(data))
    return pts


def red_levels(frames: list[np.ndarray]) -> list[int]:
    """The red level of each ``color_frames`` picture, in tens (its index for i < 26)."""
    return [round(float(f[..., 0].mean()) / 10) for f in frames]


def portrait_frames(n: int, size: tuple[int, int] = (640, 360), seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A real P3M portrait with its alpha over a real background, drifting sideways: RGB frames
    and the exact alpha (float32 0..1) of each, made from the evaluation data (skips the test without it)."""
    from PIL import Image

    src = evaldata() / "sources"
    fg = np.asarray(Image.open(src / "portraits" / "p_07141906.jpg").convert("RGB"))
    al = np.asarray(Image.open(src / "portraits" / "p_07141906.alpha.png").convert("L"))
    bg = np.asarray(Image.open(src / "backgrounds" / "Garden.jpg").convert("RGB"))
    import cv2

    w, h = size
    scale = h * 0.95 / fg.shape[0]
    pw, ph = int(fg.shape[1] * scale), int(fg.shape[0] * scale)
    fgs = cv2.resize(fg, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32)
    als = cv2.resize(al, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    bgs = cv2.resize(bg, (int(w * 1.2), h), interpolation=cv2.INTER_AREA).astype(np.float32)
    frames, alphas = [], []
    for t in range(n):
        x0 = (w - pw) // 2 + int(10 * np.sin(t / 5 + seed))
        y0 = h - ph
        a = np.zeros((h, w), np.float32)
        f = np.zeros((h, w, 3), np.float32)
        a[y0:, x0 : x0 + pw] = als
        f[y0:, x0 : x0 + pw] = fgs
        b = bgs[:, t * 2 : t * 2 + w]
        img = f * a[..., None] + b * (1 - a[..., None])
        frames.append(np.clip(img + 0.5, 0, 255).astype(np.uint8))
        alphas.append(a)
    return frames, alphas


def write_video(path: Path, frames: list[np.ndarray], fps: Fraction | int = 30, codec: str = "libx264") -> Path:
    """Encode RGB frames into a video file with PyAV."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=Fraction(fps))
        s.width, s.height = frames[0].shape[1], frames[0].shape[0]
        s.pix_fmt = "yuv420p"
        for img in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def color_frames(n: int, size: tuple[int, int] = (160, 96)) -> list[np.ndarray]:
    """Frames whose colour encodes their index (R = 10 * i), for order/count checks."""
    out = []
    for i in range(n):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[..., 0] = (10 * i) % 256
        img[..., 1] = 128
        out.append(img)
    return out


def count_frames(path: Path) -> tuple[int, Fraction, tuple[int, int]]:
    """(decoded frame count, average rate, (width, height)) of a video file."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return n, Fraction(s.average_rate), (s.codec_context.width, s.codec_context.height)


DDS_HEADER = (  # a DDS picture with a pixel format Pillow does not implement (NotImplementedError)
    b"DDS " + (124).to_bytes(4, "little") + (0x1007).to_bytes(4, "little") + (8).to_bytes(4, "little") * 2
    + bytes(12) + bytes(44) + (32).to_bytes(4, "little") + (4).to_bytes(4, "little")
    + (0x30555945).to_bytes(4, "little") + bytes(4) + bytes(40) + bytes(256)
)
