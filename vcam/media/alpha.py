"""Reading transparency back from a written file, to prove the alpha is really there."""

from __future__ import annotations

from pathlib import Path

import av
import av.error
import cv2
import numpy as np

__all__ = ["read_rgba"]


def read_rgba(path: str | Path, limit: int | None = None) -> list[np.ndarray]:
    """Decode up to ``limit`` pictures of a video (or a folder of PNG files) as (H, W, 4) uint8 RGBA.

    VP9 keeps alpha in a side channel that FFmpeg's own VP9 decoder ignores, so VP9 is decoded
    with libvpx. A picture without an alpha plane comes back with alpha 255 everywhere.
    Coded orientation (no display matrix applied).
    """
    p = Path(path)
    if p.is_dir():
        names = sorted(x for x in p.iterdir() if x.suffix.lower() == ".png")[:limit]
        out = []
        for name in names:
            img = cv2.imread(str(name), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise ValueError(f"{name}: not a readable PNG")
            if img.ndim == 2:
                img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
            elif img.shape[2] == 3:
                img = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
            out.append(cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA))
        return out
    with av.open(str(p)) as container:
        stream = container.streams.video[0]
        decoder = stream.codec_context
        if decoder.name == "vp9":
            decoder = av.CodecContext.create("libvpx-vp9", "r")
        frames: list[np.ndarray] = []
        for packet in container.demux(stream):
            for frame in decoder.decode(packet):
                if limit is not None and len(frames) >= limit:
                    return frames
                frames.append(frame.to_ndarray(format="rgba"))
        return frames[:limit] if limit is not None else frames
