"""A preview window (OpenCV HighGUI). Closing the window or pressing q or Esc stops vcam."""

from __future__ import annotations

import os
import platform

import cv2
import numpy as np

from vcam.errors import DeviceError
from vcam.sinks import StopRequested

__all__ = ["PreviewSink"]


class PreviewSink:
    name = "preview window"

    def __init__(self, title: str = "vcam preview") -> None:
        if platform.system() == "Linux" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise DeviceError("the preview window needs a display, but DISPLAY is not set; use --output null or virtualcam")
        self.title = title
        # opencv-python's bundled Qt looks for fonts inside the wheel and complains on every
        # start; the system's fonts are the right place.
        if "QT_QPA_FONTDIR" not in os.environ and os.path.isdir("/usr/share/fonts"):
            os.environ["QT_QPA_FONTDIR"] = "/usr/share/fonts"
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise DeviceError(f"cannot open the preview window ({exc.msg.strip() or exc})") from exc
        self._shown = False

    def send(self, image: np.ndarray, pts: float | None = None) -> None:
        cv2.imshow(self.title, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        if key in (ord("q"), 27) or (self._shown and not visible):
            raise StopRequested("preview window closed")
        self._shown = True

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass
