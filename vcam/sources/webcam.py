"""Webcams through OpenCV (V4L2 on Linux), with size, rate and FourCC (MJPG) requested."""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable

import cv2
import numpy as np

from vcam.errors import DeviceError
from vcam.frames import Frame

__all__ = ["CameraSource"]

log = logging.getLogger(__name__)


def _describe(device: int | str) -> str:
    if isinstance(device, int) and platform.system() == "Linux":
        return f"camera {device} (/dev/video{device})"
    return f"camera {device}"


class CameraSource:
    """A webcam. ``device`` is an index or a device path; frames come out RGB."""

    def __init__(
        self,
        device: int | str,
        size: tuple[int, int] = (1280, 720),
        fps: float = 30.0,
        fourcc: str | None = "MJPG",
        clock: Callable[[], float] = time.monotonic,
        capture_factory: Callable[[int | str], cv2.VideoCapture] | None = None,
    ) -> None:
        self.name = _describe(device)
        self._clock = clock
        factory = capture_factory or _open_capture
        cap = factory(device)
        if not cap.isOpened():
            cap.release()
            raise DeviceError(
                f"{self.name} cannot be opened: it does not exist or another application holds it; "
                "run 'vcam devices' to list cameras, then set camera.device or --source"
            )
        if fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*fourcc))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        cap.set(cv2.CAP_PROP_FPS, fps)
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise DeviceError(
                f"{self.name} opened but delivered no frame: it is probably busy in another "
                "application, or not a capture device; close the other application or pick "
                "another camera ('vcam devices')"
            )
        self._cap = cap
        self._pending: np.ndarray | None = first
        self.size = (int(first.shape[1]), int(first.shape[0]))
        reported = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(reported) if reported and reported > 0 else float(fps)
        if self.size != tuple(size):
            log.warning(
                "%s delivers %dx%d, not the requested %dx%d", self.name, *self.size, *size
            )
        self._index = 0

    def read(self) -> Frame | None:
        if self._pending is not None:
            bgr, self._pending = self._pending, None
        else:
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                raise DeviceError(f"{self.name} stopped delivering frames (unplugged or taken by another application?)")
        frame = Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self._index, self._clock())
        self._index += 1
        return frame

    def close(self) -> None:
        self._cap.release()


def _open_capture(device: int | str) -> cv2.VideoCapture:
    # OpenCV's own warnings about a missing device would repeat our error in a worse form.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    if platform.system() == "Linux":
        return cv2.VideoCapture(device, cv2.CAP_V4L2)
    return cv2.VideoCapture(device)
