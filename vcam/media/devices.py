"""Listing cameras and virtual-camera devices (Linux: /sys/class/video4linux)."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

__all__ = ["VideoDevice", "list_video_devices"]


@dataclass(frozen=True)
class VideoDevice:
    path: str
    name: str
    virtual: bool

    @property
    def kind(self) -> str:
        return "virtual camera (v4l2loopback)" if self.virtual else "camera"


def list_video_devices(sysfs: Path = Path("/sys/class/video4linux")) -> list[VideoDevice]:
    """Video devices the kernel knows; loopback devices are the ones under /sys/devices/virtual."""
    if platform.system() != "Linux" or not sysfs.is_dir():
        return []
    out = []
    for entry in sorted(sysfs.iterdir(), key=lambda p: (len(p.name), p.name)):
        try:
            name = (entry / "name").read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            name = "?"
        virtual = "/virtual/" in os.path.realpath(entry)
        out.append(VideoDevice(f"/dev/{entry.name}", name, virtual))
    return out
