"""A synthetic test pattern source: checks the whole path to the call app without a webcam."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from vcam.frames import Frame
from vcam.sources.pacing import StopSleep

__all__ = ["TestPatternOverlay", "TestPatternSource"]


class TestPatternSource:
    """Colour bars with a moving head-and-shoulders silhouette and a frame counter.

    The silhouette is not a person to a matting model, so an effect treats the whole picture
    as background (blur blurs it all, replace shows only the background): that the effect
    runs is seen on the bars. What proves that frames flow, whatever the mode, is drawn after
    the effect by :class:`TestPatternOverlay`.

    ``frames`` = 0 means endless; ``pace`` hands frames out at ``fps`` on ``clock``
    (``sleep`` waits; by default the real clock, cut short by the event of ``stop_on``).
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        size: tuple[int, int] = (1280, 720),
        fps: float = 30.0,
        frames: int = 0,
        pace: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.name = "test pattern"
        self.size, self.fps, self.frames, self.pace = size, fps, frames, pace
        self._clock, self._sleep = clock, StopSleep(sleep)
        w, h = size
        bars = np.array(
            [[192, 192, 192], [192, 192, 0], [0, 192, 192], [0, 192, 0], [192, 0, 192], [192, 0, 0], [0, 0, 192]],
            np.uint8,
        )
        cols = (np.arange(w) * len(bars) // w).clip(0, len(bars) - 1)
        self._bars = np.ascontiguousarray(np.broadcast_to(bars[cols][None], (h, w, 3)))
        self._index = 0
        self._t0: float | None = None

    def read(self) -> Frame | None:
        if self.frames and self._index >= self.frames:
            return None
        if self.pace:
            now = self._clock()
            if self._t0 is None:
                self._t0 = now
            delay = self._t0 + self._index / self.fps - now
            self._sleep(delay)
        w, h = self.size
        img = self._bars.copy()
        cx = int(w / 2 + w * 0.15 * math.sin(self._index / 30.0))
        cv2.ellipse(img, (cx, h), (int(w * 0.22), int(h * 0.35)), 0, 180, 360, (40, 60, 120), -1)
        cv2.circle(img, (cx, int(h * 0.42)), int(h * 0.16), (210, 170, 140), -1)
        cv2.putText(img, f"vcam {self._index}", (20, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
        frame = Frame(img, self._index, self._clock(), pts=self._index / self.fps)
        self._index += 1
        return frame

    def stop_on(self, stop: threading.Event) -> None:
        """End a wait for the next frame as soon as ``stop`` is set."""
        self._sleep.bind(stop)

    def close(self) -> None:
        pass


class TestPatternOverlay:
    """What the test pattern adds after the effect, so the path is proven in every mode: the
    label "vcam test pattern — <mode>" along the top, and a sharp white card with the frame
    counter that moves along the bottom (one full sweep every 4 s at 30 fps). It stays legible
    in every mode, as the effect is already applied when it is drawn.

    Called as ``overlay(image, index, mode)`` with the (H, W, 3) uint8 RGB output picture;
    returns a copy with the overlay.
    """

    __test__ = False

    def __init__(self) -> None:
        self._labels: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _label(self, mode: str, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """The label as (RGB patch, alpha 0..1), rendered once per mode and size."""
        key = (mode, w, h)
        if key not in self._labels:
            from PIL import Image, ImageDraw, ImageFont

            size = max(10, h // 18)
            try:  # DejaVu has the dash; Pillow's built-in font does not
                font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.truetype("DejaVuSans-Bold.ttf", size)
                text = f"vcam test pattern \u2014 {mode}"
            except OSError:
                font = ImageFont.load_default(size=size)
                text = f"vcam test pattern - {mode}"
            box = font.getbbox(text)
            pad = max(2, size // 4)
            tw, th = min(w, int(box[2]) + 2 * pad), min(h, int(box[3]) + 2 * pad)
            patch = Image.new("L", (tw, th), 0)
            ImageDraw.Draw(patch).text((pad, pad), text, fill=255, font=font)
            alpha = np.asarray(patch, np.float32)[..., None] / 255.0
            self._labels[key] = (np.full((th, tw, 3), 255, np.uint8), alpha)
        return self._labels[key]

    def __call__(self, image: np.ndarray, index: int, mode: str) -> np.ndarray:
        h, w = image.shape[:2]
        out = image.copy()
        # the label on a dark band, top left
        rgb, alpha = self._label(mode, w, h)
        lh, lw = alpha.shape[:2]
        band = out[:lh, :lw].astype(np.float32) * 0.35  # darkened, so white text reads on any bars
        out[:lh, :lw] = (band * (1 - alpha) + rgb * alpha).astype(np.uint8)
        # the card with the counter, bottom, sweeping left and right
        scale = max(0.4, h / 480.0)
        text = f"frame {index}"
        thick = max(1, round(2 * scale))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        cw, ch = tw + int(20 * scale), th + base + int(16 * scale)
        if cw < w and ch < h:
            phase = (index % 120) / 60.0
            x = int((w - cw) * (phase if phase <= 1 else 2 - phase))
            y = h - ch - int(10 * scale)
            cv2.rectangle(out, (x, y), (x + cw - 1, y + ch - 1), (255, 255, 255), -1)
            cv2.putText(out, text, (x + int(10 * scale), y + int(8 * scale) + th), cv2.FONT_HERSHEY_SIMPLEX,
                        scale, (0, 0, 0), thick, cv2.LINE_AA)
        return out
