"""``vcam doctor``: check the setup and say, for each problem, how to fix it.

Every check returns a :class:`Check` (``ok``, ``info``, ``warn`` or ``fail``, one line of
detail and, unless ok, the fix). What the checks read (``/sys``, ``/proc``, the environment,
ONNX Runtime's providers, the tray probe, the V4L2 format query) comes in through a
:class:`System`, so tests run them against fake trees.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Literal

from vcam.config import Config, load_config
from vcam.errors import ConfigError, VcamError
from vcam.matting.runtime import BOTH_FIX, INSTALL, installed_runtimes
from vcam.media.devices import VideoDevice, device_holders, list_video_devices

__all__ = ["Check", "System", "format_checks", "run_checks", "v4l2_format"]

Status = Literal["ok", "info", "warn", "fail"]

MODPROBE = "sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=vcam exclusive_caps=1"
PERSIST = (
    "to load it at every boot: echo v4l2loopback | sudo tee /etc/modules-load.d/v4l2loopback.conf; "
    "echo 'options v4l2loopback devices=1 video_nr=10 card_label=vcam exclusive_caps=1' | "
    "sudo tee /etc/modprobe.d/v4l2loopback.conf"
)


@dataclass(frozen=True)
class Check:
    """One finding: ``name`` of the thing checked, ``status``, ``detail`` and how to ``fix`` it."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


def v4l2_format(device: str) -> tuple[int, int] | None:
    """The (width, height) a V4L2 device delivers now (``VIDIOC_G_FMT``), or None if unknown.

    A v4l2loopback device with ``exclusive_caps=1`` has no capture format until a program
    writes to it; then None is returned too.
    """
    import fcntl  # POSIX only, and only needed here (Linux): not at module level

    size = 208 if struct.calcsize("P") == 8 else 204  # sizeof(struct v4l2_format)
    request = (3 << 30) | (size << 16) | (ord("V") << 8) | 4  # _IOWR('V', 4, struct v4l2_format)
    buf = bytearray(size)
    struct.pack_into("I", buf, 0, 1)  # V4L2_BUF_TYPE_VIDEO_CAPTURE
    try:
        fd = os.open(device, os.O_RDWR | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        fcntl.ioctl(fd, request, buf)
    except OSError:
        return None
    finally:
        os.close(fd)
    w, h = struct.unpack_from("II", buf, 8)
    return (int(w), int(h)) if w and h else None


def _providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def _probe_tray(env: Mapping[str, str] | None) -> tuple[ModuleType | None, str]:
    from vcam.live.tray import probe_tray

    return probe_tray(env)


@dataclass
class System:
    """What the checks look at; the defaults are the real machine."""

    sys_module: Path = Path("/sys/module")
    video4linux: Path = Path("/sys/class/video4linux")
    proc: Path = Path("/proc")
    platform: str = sys.platform
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    providers: Callable[[], list[str]] = _providers
    runtimes: Callable[[], list[str]] = installed_runtimes  # installed ONNX Runtime distributions
    tray_probe: Callable[[Mapping[str, str] | None], tuple[ModuleType | None, str]] = _probe_tray
    query_format: Callable[[str], tuple[int, int] | None] = v4l2_format
    own_pid: int = field(default_factory=os.getpid)
    daemon_status: Callable[[], dict[str, object]] | None = None


def run_checks(config_path: Path | None = None, system: System | None = None) -> list[Check]:
    """All checks, in the order a user would fix things."""
    s = system or System()
    checks: list[Check] = []
    cfg = _check_config(config_path, s, checks)
    linux = s.platform.startswith("linux")
    devices = list_video_devices(s.video4linux) if linux else []
    if linux:
        loopback = _check_loopback(cfg, s, devices, checks)
        if loopback is not None:
            _check_output_size(cfg, s, loopback, checks)
        _check_cameras(cfg, s, devices, checks)
    else:
        checks.append(Check(
            "virtual camera", "info", "not on Linux: vcam writes to OBS Studio's virtual camera",
            "install OBS Studio and start its Virtual Camera once",
        ))
    checks.append(_check_providers(cfg, s))
    checks.append(_check_model(cfg))
    checks.append(_check_tray(cfg, s))
    if cfg.camera.on_demand and not linux:
        checks.append(Check(
            "on-demand camera", "warn", "camera.on_demand works only on Linux (v4l2loopback); the camera stays open",
            "set camera.on_demand: false",
        ))
    checks.append(_check_daemon(s))
    return checks


def format_checks(checks: list[Check]) -> str:
    """The report ``vcam doctor`` prints: one line per check, a ``fix:`` line under problems."""
    tags = {"ok": "ok", "info": "info", "warn": "WARN", "fail": "FAIL"}
    lines = []
    for c in checks:
        lines.append(f"{tags[c.status]:<5} {c.name}: {c.detail}")
        if c.fix and c.status != "ok":
            lines.append(f"      fix: {c.fix}")
    fails = sum(c.status == "fail" for c in checks)
    warns = sum(c.status == "warn" for c in checks)
    lines.append(f"{fails} problem(s), {warns} warning(s)")
    return "\n".join(lines)


# -- the checks ---------------------------------------------------------------------------


def _check_config(path: Path | None, s: System, out: list[Check]) -> Config:
    try:
        cfg, used = load_config(path, env=s.env)
    except ConfigError as exc:
        out.append(Check(
            "config", "fail", f"{exc.source}: " + "; ".join(exc.problems),
            f"edit {exc.source} (vcam check-config lists every error with its key); "
            "the other checks use the defaults",
        ))
        return Config()
    out.append(Check("config", "ok", f"{used} is valid" if used else "no config file; using the defaults"))
    return cfg


def _loopback_param(s: System, name: str) -> list[str] | None:
    try:
        text = (s.sys_module / "v4l2loopback" / "parameters" / name).read_text(encoding="utf-8")
    except OSError:
        return None
    return [v.strip() for v in text.strip().split(",") if v.strip()]


def _check_loopback(cfg: Config, s: System, devices: list[VideoDevice], out: list[Check]) -> VideoDevice | None:
    module = s.sys_module / "v4l2loopback"
    if not module.is_dir():
        out.append(Check(
            "v4l2loopback", "fail", "the kernel module is not loaded, so there is no virtual camera",
            f"install v4l2loopback-dkms (Debian/Ubuntu) or v4l2loopback (Fedora, Arch), then {MODPROBE}; "
            f"{PERSIST}. If modprobe says 'Key was rejected by service', Secure Boot blocks the unsigned "
            "module: enroll the DKMS key (sudo mokutil --import /var/lib/dkms/mok.pub, then reboot) "
            "or sign the module",
        ))
        return None
    try:
        version = (module / "version").read_text(encoding="utf-8").strip()
    except OSError:
        version = ""
    out.append(Check("v4l2loopback", "ok", f"module loaded{f' (version {version})' if version else ''}"))
    loopbacks = [d for d in devices if d.virtual]
    if not loopbacks:
        out.append(Check(
            "virtual camera device", "fail", "the module is loaded but created no device",
            f"sudo modprobe -r v4l2loopback && {MODPROBE}",
        ))
        return None
    chosen = loopbacks[0]
    if cfg.output.device:
        match = [d for d in devices if d.path == cfg.output.device]
        if not match or not match[0].virtual:
            what = "does not exist" if not match else f"is a camera ({match[0].name}), not a v4l2loopback device"
            out.append(Check(
                "virtual camera device", "fail", f"output.device {cfg.output.device} {what}",
                f"set output.device to one of: {', '.join(d.path for d in loopbacks)}",
            ))
            return None
        chosen = match[0]
    out.append(Check("virtual camera device", "ok", f"{chosen.path} ({chosen.name})"))
    caps = _loopback_param(s, "exclusive_caps")
    # The parameter holds one value per device, in the order the devices were created.
    index = loopbacks.index(chosen)
    if caps is None or index >= len(caps):
        out.append(Check(
            "exclusive_caps", "warn", "cannot read /sys/module/v4l2loopback/parameters/exclusive_caps",
            f"make sure the module was loaded with exclusive_caps=1 ({MODPROBE})",
        ))
    elif caps[index].upper() in ("Y", "1"):
        out.append(Check("exclusive_caps", "ok", f"{chosen.path} has exclusive_caps=1 (Chrome and Chromium-based apps list it)"))
    else:
        out.append(Check(
            "exclusive_caps", "fail",
            f"{chosen.path} was created without exclusive_caps=1: Chrome, Chromium, Meet and Teams in the browser will not list it",
            f"sudo modprobe -r v4l2loopback && {MODPROBE}",
        ))
    return chosen


def _check_output_size(cfg: Config, s: System, device: VideoDevice, out: list[Check]) -> None:
    w, h = cfg.output_size
    problems, fixes = [], []  # an odd size never gets here: the config refuses it (config check)
    for param, value, axis in (("max_width", w, "width"), ("max_height", h, "height")):
        limit = _loopback_param(s, param)
        if limit and limit[0].isdigit() and value > int(limit[0]):
            problems.append(f"{axis} {value} is above the module's {param}={limit[0]}")
            fixes.append(f"reload the module with {param}={value} or lower output.size")
    current = s.query_format(device.path)
    if current is not None and current != (w, h):
        problems.append(
            f"{device.path} is set to {current[0]}x{current[1]} by the program writing to it, not {w}x{h}"
        )
        fixes.append("stop the other writer (another vcam?) or set output.size to match")
    if problems:
        out.append(Check("output size", "fail", "; ".join(problems), "; ".join(fixes)))
    else:
        note = f"{device.path} is {current[0]}x{current[1]} now" if current else f"{device.path} takes it"
        out.append(Check("output size", "ok", f"{w}x{h} @ {cfg.output_fps:g} fps ({note})"))


def _check_cameras(cfg: Config, s: System, devices: list[VideoDevice], out: list[Check]) -> None:
    cams = [d for d in devices if not d.virtual]
    if not cams:
        out.append(Check(
            "cameras", "fail", "no camera found (no /dev/video* besides virtual ones)",
            "plug in a webcam; if one is plugged in, check that your user is in the 'video' group "
            "(sudo usermod -aG video $USER, then log in again)",
        ))
    else:
        parts = []
        for d in cams:
            holders = device_holders(d.path, s.proc, exclude_pid=s.own_pid)
            busy = ", ".join(f"{name} (pid {pid})" for pid, name in sorted(holders.items()))
            parts.append(f"{d.path} {d.name}" + (f" [busy: {busy}]" if busy else ""))
        out.append(Check("cameras", "ok", "; ".join(parts)))
    dev = cfg.camera.device
    path = f"/dev/video{dev}" if isinstance(dev, int) else dev
    if isinstance(dev, str) and not dev.startswith("/dev/"):
        out.append(Check("configured camera", "info", f"camera.device is {dev!r} (a file or test pattern, no webcam)"))
        return
    match = [d for d in devices if d.path == path]
    if not match and not cams:
        return  # "no camera found" above already says it, and how to fix it
    if not match:
        out.append(Check(
            "configured camera", "fail", f"camera.device {dev}: {path} does not exist",
            "set camera.device to one of the cameras above" if cams else "connect a camera",
        ))
    elif match[0].virtual:
        out.append(Check(
            "configured camera", "fail", f"camera.device {dev}: {path} is the virtual camera, not a webcam",
            "set camera.device to a real camera (vcam devices lists them)",
        ))
    else:
        holders = device_holders(path, s.proc, exclude_pid=s.own_pid)
        if holders:
            who = ", ".join(f"{name} (pid {pid})" for pid, name in sorted(holders.items()))
            out.append(Check(
                "configured camera", "warn", f"{path} is open in {who}; vcam may not get frames from it",
                "close that application, or use camera.on_demand so vcam shares the camera politely",
            ))
        else:
            out.append(Check("configured camera", "ok", f"{path} ({match[0].name}) is free"))


def _check_providers(cfg: Config, s: System) -> Check:
    from vcam.matting.engine import PROVIDER_NAMES

    runtimes = s.runtimes()
    if not runtimes:
        return Check("ONNX Runtime", "fail", "not installed (vcam needs onnxruntime or onnxruntime-gpu)", INSTALL)
    if len(runtimes) > 1:  # both wheels write the same package: the last installed wins, file by file
        return Check("ONNX Runtime", "fail", f"both {' and '.join(runtimes)} are installed; they overwrite each other", BOTH_FIX)
    try:
        available = set(s.providers())
    except Exception as exc:  # noqa: BLE001 - onnxruntime failed to import: a broken install
        return Check(
            "ONNX Runtime", "fail", f"cannot load onnxruntime ({exc})",
            f"pip install --force-reinstall {runtimes[0]}",
        )
    usable = [p for p in cfg.model.providers if PROVIDER_NAMES[p] in available]
    missing = [p for p in cfg.model.providers if PROVIDER_NAMES[p] not in available]
    if not usable:
        return Check(
            "ONNX Runtime", "fail",
            f"none of model.providers ({', '.join(cfg.model.providers)}) is available; this build has {', '.join(sorted(available))}",
            "add cpu to model.providers",
        )
    detail = f"will run on {usable[0]}"
    if missing:
        detail += f" ({', '.join(missing)} not in this onnxruntime build)"
        gpu = [p for p in missing if p != "cpu"]
        if gpu and usable[0] == "cpu":
            return Check(
                "ONNX Runtime", "info", detail,
                "for an NVIDIA GPU: pip uninstall -y onnxruntime, then in the vcam folder pip install '.[gpu]' "
                "(onnxruntime-gpu) with the matching CUDA/cuDNN libraries",
            )
    return Check("ONNX Runtime", "ok", detail)


def _check_model(cfg: Config) -> Check:
    from vcam.build import model_dir
    from vcam.matting.models import KNOWN_MODELS, ensure_model, list_models

    if cfg.model.path:
        try:
            p = ensure_model(cfg.model.name, cfg.model.path, model_dir(cfg), fetch=False)
        except VcamError as exc:
            return Check("model", "fail", str(exc), "run 'vcam models fetch' and remove model.path, or fix the path")
        verified = cfg.model.name in KNOWN_MODELS
        return Check("model", "ok" if verified else "warn", f"{p} ({'verified' if verified else 'not a known model: unverified'})")
    for st in list_models(model_dir(cfg)):
        if st.name != cfg.model.name:
            continue
        if st.verified:
            return Check("model", "ok", f"{st.path} (verified)")
        return Check("model", "fail", f"{st.path}: {st.note}", st.fix or "vcam models fetch")
    return Check("model", "fail", f"model.name {cfg.model.name!r} is not a known model", f"use one of: {', '.join(KNOWN_MODELS)}")


def _check_tray(cfg: Config, s: System) -> Check:
    if not cfg.tray.enabled:
        return Check("tray icon", "info", "disabled (tray.enabled: false)")
    module, backend = s.tray_probe(s.env)
    if module is None:
        return Check(
            "tray icon", "warn", f"{backend}; vcam will run headless (control it with vcam ctl)",
            "run vcam inside your desktop session; on GNOME install the 'AppIndicator and KStatusNotifierItem "
            "Support' extension, and PyGObject with AppIndicator (Debian/Ubuntu: sudo apt install python3-gi "
            "gir1.2-ayatanaappindicator3-0.1, then create the venv with --system-site-packages); see docs/desktop.md",
        )
    if backend == "xorg":
        return Check(
            "tray icon", "ok", "pystray xorg backend: the icon shows, but X11 trays have no menu (a click toggles the effect)",
            "for the full menu install PyGObject with AppIndicator (see docs/desktop.md)",
        )
    return Check("tray icon", "ok", f"pystray {backend} backend (full menu)")


def _check_daemon(s: System) -> Check:
    from vcam.live.control_socket import Request, default_socket_path, send_request

    try:
        st = s.daemon_status() if s.daemon_status else send_request(Request("status"), default_socket_path(s.env), timeout=3.0)
    except VcamError:
        return Check("daemon", "info", "not running (start it with vcam run, or install the service: vcam install-service)")
    return Check(
        "daemon", "info",
        f"running (pid {st.get('pid')}, mode {st.get('mode')}, {st.get('fps')} fps, camera {st.get('camera')})"
        + (f"; config error: {st.get('config_error')}" if st.get("config_error") else ""),
    )
