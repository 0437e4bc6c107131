"""The virtual camera sink (pyvirtualcam: v4l2loopback on Linux, OBS Virtual Camera elsewhere)."""

from __future__ import annotations

import logging
import platform

import numpy as np

from vcam.errors import DeviceError

__all__ = ["SETUP_HINT", "VirtualCamSink"]

log = logging.getLogger(__name__)


def _setup_hint() -> str:
    if platform.system() == "Linux":
        return (
            "load the v4l2loopback module: sudo modprobe v4l2loopback devices=1 video_nr=10 "
            "card_label=vcam exclusive_caps=1 (exclusive_caps=1 is what Chrome/Meet need); "
            "see README 'Virtual camera setup'"
        )
    return "install OBS Studio and start its Virtual Camera once; see README 'Virtual camera setup'"


SETUP_HINT = _setup_hint()


class VirtualCamSink:
    """Publishes RGB pictures to a virtual camera through ``pyvirtualcam.Camera``."""

    def __init__(
        self,
        size: tuple[int, int],
        fps: float,
        device: str | None = None,
        backend: str | None = None,
    ) -> None:
        import pyvirtualcam

        self.size = size
        what = f"virtual camera {device}" if device else "virtual camera"
        try:
            self._cam = pyvirtualcam.Camera(
                width=size[0],
                height=size[1],
                fps=fps,
                fmt=pyvirtualcam.PixelFormat.RGB,
                device=device,
                backend=backend,
                print_fps=False,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DeviceError(f"{what} cannot be opened ({detail}); {SETUP_HINT}") from exc
        # the device node (e.g. /dev/video10): on-demand mode counts the programs reading it
        self.device: str = str(self._cam.device)
        self.name = f"virtual camera {self._cam.device} ({self._cam.backend})"
        log.info("publishing %dx%d @ %g fps to %s", size[0], size[1], fps, self.name)

    def send(self, image: np.ndarray, pts: float | None = None) -> None:
        try:
            self._cam.send(image)
        except (RuntimeError, ValueError, OSError) as exc:
            raise DeviceError(f"{self.name}: writing a frame failed ({exc})") from exc

    def close(self) -> None:
        self._cam.close()
