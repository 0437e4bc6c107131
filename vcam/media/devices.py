"""Video devices on Linux: listing cameras and virtual cameras (/sys/class/video4linux) and
the processes that hold a device open (/proc/<pid>/fd).

A wing, not a mode: ``vcam devices``, ``vcam doctor`` (setup) and the on-demand camera (live)
all read devices through it."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

__all__ = ["VideoDevice", "count_consumers", "device_holders", "list_video_devices"]


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


def device_holders(device: str, proc: Path = Path("/proc"), exclude_pid: int | None = None) -> dict[int, str]:
    """Processes that have ``device`` open: {pid: command name}, from ``proc/<pid>/fd``.

    Processes of other users cannot be inspected and are not counted. ``exclude_pid`` (the
    daemon itself, which writes to the device) is left out.
    """
    target = os.path.realpath(device)
    found: dict[int, str] = {}
    try:
        entries = list(os.scandir(proc))
    except OSError:
        return found
    for entry in entries:
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == exclude_pid:
            continue
        fd_dir = os.path.join(entry.path, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or another user's process
            continue
        for fd in fds:
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if link in (target, device):
                found[pid] = _comm(entry.path)
                break
    return found


def _comm(pid_dir: str) -> str:
    try:
        with open(os.path.join(pid_dir, "comm"), encoding="utf-8", errors="replace") as f:
            return f.read().strip() or "?"
    except OSError:
        return "?"


def count_consumers(device: str, proc: Path = Path("/proc"), own_pid: int | None = None) -> int:
    """How many other processes hold ``device`` (a v4l2loopback node) open."""
    return len(device_holders(device, proc, exclude_pid=own_pid))
