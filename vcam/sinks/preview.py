"""A preview window (OpenCV HighGUI). Closing the window or pressing q or Esc stops vcam.

HighGUI is not thread-safe: its Qt and GTK back-ends keep their window state on the thread
that first used them, and a window created on one thread and drawn from another stays black
or grey (opencv 5) or hangs (opencv 4). So the window belongs to one thread, ``vcam-preview``,
that this sink starts and stops: it creates the window, shows the newest picture ``send``
handed over (latest wins: a slow window drops pictures, it never slows the pipeline), reads
the keys and watches for the window being closed. ``send`` never calls HighGUI.

When the user asks to stop, ``send`` raises :class:`~vcam.sinks.StopRequested` and
:meth:`PreviewSink.stop_requested` says so at once, which the live runner polls, so vcam
stops even while no picture is being sent.

macOS: Cocoa windows may be made only on the main thread; there this sink refuses to open
with a clear error (Linux and Windows only).
"""

from __future__ import annotations

import logging
import os
import platform
import threading

import cv2
import numpy as np

from vcam.errors import DeviceError
from vcam.pipeline.buffers import LatestSlot
from vcam.sinks import StopRequested

__all__ = ["PreviewSink"]

log = logging.getLogger(__name__)

_KEY_WAIT_MS = 15  # the window thread's tick: keys and the close button are seen this often
_OPEN_TIMEOUT_S = 10.0
_JOIN_S = 2.0
_STOP_KEYS = (ord("q"), ord("Q"), 27)  # q, Q, Esc


def _use_system_fonts() -> None:
    """opencv-python points its bundled Qt at a font folder inside the wheel that the wheel
    does not ship (``QT_QPA_FONTDIR``, set when cv2 is imported), and Qt then warns five
    times ("QFontDatabase: Cannot find font directory"); point it at the system's fonts."""
    current = os.environ.get("QT_QPA_FONTDIR")
    if current is not None and os.path.isdir(current):
        return
    for folder in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/TTF", "/usr/share/fonts"):
        if os.path.isdir(folder):
            os.environ["QT_QPA_FONTDIR"] = folder
            return


class PreviewSink:
    """Shows (H, W, 3) uint8 RGB pictures in a window owned by its own thread."""

    name = "preview window"

    def __init__(self, title: str = "vcam preview") -> None:
        if platform.system() == "Darwin":
            raise DeviceError(
                "the preview window is not available on macOS (its windows must live on the main thread, "
                "which runs the tray); use --output virtualcam and look at OBS or the call app"
            )
        if platform.system() == "Linux" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise DeviceError("the preview window needs a display, but DISPLAY is not set; use --output null or virtualcam")
        self.title = title
        _use_system_fonts()
        self._slot: LatestSlot[np.ndarray] = LatestSlot()
        self._closing = threading.Event()
        self._stopped = threading.Event()
        self._ready = threading.Event()
        self._error: str | None = None
        self.why: str | None = None  # why the user stopped: "key q", "key Esc", "window closed"
        self.shown = 0  # pictures drawn into the window
        self._thread = threading.Thread(target=self._window_loop, name="vcam-preview", daemon=True)
        self._thread.start()
        if not self._ready.wait(_OPEN_TIMEOUT_S):
            self._closing.set()
            raise DeviceError(f"cannot open the preview window: no window after {_OPEN_TIMEOUT_S:.0f} s")
        if self._error is not None:
            self._thread.join(_JOIN_S)
            raise DeviceError(f"cannot open the preview window ({self._error})")

    # -- the window thread: the only one that calls HighGUI -----------------------------------

    def _window_loop(self) -> None:
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as exc:
            self._error = exc.msg.strip() or str(exc)
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._closing.is_set():
                image = self._slot.get(0)
                if image is not None:
                    cv2.imshow(self.title, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                    self.shown += 1
                key = cv2.waitKey(_KEY_WAIT_MS) & 0xFF
                if key in _STOP_KEYS:
                    self._user_stop("key Esc" if key == 27 else "key q")
                elif self.shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                    self._user_stop("window closed")
                if self._stopped.is_set():
                    break
        except cv2.error as exc:  # the window went away under HighGUI: the user closed it
            log.debug("preview window: %s", exc)
            self._user_stop("window closed")
        finally:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass

    def _user_stop(self, why: str) -> None:
        if not self._stopped.is_set():
            self.why = why
            log.info("preview window: %s, stopping", why)
            self._stopped.set()

    # -- the Sink face (any thread) -----------------------------------------------------------

    def stop_requested(self) -> bool:
        """True once the user pressed q or Esc or closed the window."""
        return self._stopped.is_set()

    def send(self, image: np.ndarray, pts: float | None = None) -> None:
        if self._stopped.is_set():
            raise StopRequested(f"preview window: {self.why}")
        self._slot.put(image)

    def close(self) -> None:
        self._closing.set()
        self._slot.close()
        self._thread.join(_JOIN_S)
        if self._thread.is_alive():
            log.warning("the preview window did not close within %.0f s", _JOIN_S)
