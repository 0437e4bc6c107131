"""`vcam doctor` against fake /sys and /proc trees: each finding and its fix, exactly."""

from __future__ import annotations

import os
import types
from pathlib import Path

import pytest

from vcam.cli import main
from vcam.errors import ControlError
from vcam.setup.doctor import Check, System, format_checks, run_checks


def no_daemon() -> dict[str, object]:
    raise ControlError("no vcam daemon is running")


def machine(root: Path, *, caps: str = "Y,N,N,N", module: bool = True, cameras: bool = True,
            busy: bool = False, fmt: tuple[int, int] | None = None, tray: str | None = "appindicator",
            runtimes: tuple[str, ...] = ("onnxruntime",)) -> System:
    """A Linux machine with v4l2loopback (/dev/video10) and a USB camera (/dev/video0)."""
    sysfs = root / "sys"
    v4l = sysfs / "class" / "video4linux"
    v4l.mkdir(parents=True)
    nodes = {"video10": ("virtual", "vcam")}
    if cameras:
        nodes["video0"] = ("pci0000:00/usb1", "Integrated Camera: Integrated C")
    for node, (parent, name) in nodes.items():
        d = sysfs / "devices" / parent / "video4linux" / node
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        os.symlink(d, v4l / node)
    if module:
        params = sysfs / "module" / "v4l2loopback" / "parameters"
        params.mkdir(parents=True)
        (sysfs / "module" / "v4l2loopback" / "version").write_text("0.12.7\n")
        (params / "exclusive_caps").write_text(caps + "\n")
        (params / "max_width").write_text("1920\n")
    proc = root / "proc"
    (proc / "4242" / "fd").mkdir(parents=True)
    (proc / "4242" / "comm").write_text("zoom\n")
    if busy:
        os.symlink("/dev/video0", proc / "4242" / "fd" / "7")
    mod = types.ModuleType("pystray")
    return System(
        sys_module=sysfs / "module",
        video4linux=v4l,
        proc=proc,
        platform="linux",
        env={"HOME": str(root / "home"), "XDG_CONFIG_HOME": str(root / "home" / ".config")},
        providers=lambda: ["CPUExecutionProvider"],
        runtimes=lambda: list(runtimes),
        tray_probe=lambda env: (mod, tray) if tray else (None, "no graphical session (test)"),
        query_format=lambda dev: fmt,
        own_pid=1,
        daemon_status=no_daemon,
    )


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_a_good_setup(isolated_home: Path, tmp_path: Path, model_path: Path) -> None:
    checks = run_checks(None, machine(tmp_path, fmt=(1280, 720)))
    assert format_checks(checks) == "\n".join([
        "ok    config: no config file; using the defaults",
        "ok    v4l2loopback: module loaded (version 0.12.7)",
        "ok    virtual camera device: /dev/video10 (vcam)",
        "ok    exclusive_caps: /dev/video10 has exclusive_caps=1 (Chrome and Chromium-based apps list it)",
        "ok    output size: 1280x720 @ 30 fps (/dev/video10 is 1280x720 now)",
        "ok    cameras: /dev/video0 Integrated Camera: Integrated C",
        "ok    configured camera: /dev/video0 (Integrated Camera: Integrated C) is free",
        "info  ONNX Runtime: will run on cpu (tensorrt, cuda not in this onnxruntime build)",
        "      fix: for an NVIDIA GPU: pip uninstall -y onnxruntime, then in the vcam folder pip install '.[gpu]' "
        "(onnxruntime-gpu) with the matching CUDA/cuDNN libraries",
        f"ok    model: {model_path} (verified)",
        "ok    tray icon: pystray appindicator backend (full menu)",
        "info  daemon: not running (start it with vcam run, or install the service: vcam install-service)",
        "0 problem(s), 0 warning(s)",
    ])


def test_module_not_loaded_explains_modprobe_and_secure_boot(isolated_home: Path, tmp_path: Path) -> None:
    c = by_name(run_checks(None, machine(tmp_path, module=False)))["v4l2loopback"]
    assert (c.status, c.detail) == ("fail", "the kernel module is not loaded, so there is no virtual camera")
    assert c.fix is not None
    assert "sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=vcam exclusive_caps=1" in c.fix
    assert "Secure Boot blocks the unsigned module" in c.fix
    assert "/etc/modprobe.d/v4l2loopback.conf" in c.fix


def test_exclusive_caps_off_is_a_problem(isolated_home: Path, tmp_path: Path) -> None:
    c = by_name(run_checks(None, machine(tmp_path, caps="N,N")))["exclusive_caps"]
    assert c == Check(
        "exclusive_caps", "fail",
        "/dev/video10 was created without exclusive_caps=1: Chrome, Chromium, Meet and Teams in the browser will not list it",
        "sudo modprobe -r v4l2loopback && sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=vcam exclusive_caps=1",
    )


def test_output_size_mismatches(isolated_home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("output:\n  size: [1922, 1080]\n")
    c = by_name(run_checks(cfg, machine(tmp_path, fmt=(640, 480))))["output size"]
    assert c == Check(
        "output size", "fail",
        "width 1922 is above the module's max_width=1920; "
        "/dev/video10 is set to 640x480 by the program writing to it, not 1922x1080",
        "reload the module with max_width=1922 or lower "
        "output.size; stop the other writer (another vcam?) or set output.size to match",
    )
    # an odd size is the config's error (check-config says the same), not an output-size check
    cfg.write_text("output:\n  size: [1921, 1080]\n")
    checks = by_name(run_checks(cfg, machine(tmp_path / "odd", fmt=(640, 480))))
    assert checks["config"].status == "fail" and "641x480" not in checks["config"].detail
    assert "must have an even width and height, got 1921x1080" in checks["config"].detail


def test_busy_and_missing_cameras(isolated_home: Path, tmp_path: Path) -> None:
    checks = by_name(run_checks(None, machine(tmp_path / "a", busy=True)))
    assert checks["cameras"].detail == "/dev/video0 Integrated Camera: Integrated C [busy: zoom (pid 4242)]"
    assert (checks["configured camera"].status, checks["configured camera"].detail) == (
        "warn", "/dev/video0 is open in zoom (pid 4242); vcam may not get frames from it")
    listed = run_checks(None, machine(tmp_path / "b", cameras=False))
    checks = by_name(listed)
    assert (checks["cameras"].status, checks["cameras"].detail) == (
        "fail", "no camera found (no /dev/video* besides virtual ones)")
    # the missing camera is reported once (issue 13.7), not again as "configured camera"
    assert "configured camera" not in checks
    assert [c.name for c in listed if c.status == "fail"] == ["cameras"]


def test_virtual_camera_configured_as_the_webcam(isolated_home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("camera:\n  device: 10\n")
    c = by_name(run_checks(cfg, machine(tmp_path)))["configured camera"]
    assert (c.status, c.detail) == ("fail", "camera.device 10: /dev/video10 is the virtual camera, not a webcam")


def test_invalid_config_is_reported_with_its_key(isolated_home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("effect:\n  mode: sparkle\n")
    c = by_name(run_checks(cfg, machine(tmp_path)))["config"]
    assert (c.status, c.detail) == ("fail", f"{cfg}: effect.mode: must be 'blur', 'replace', 'color' or 'off', got 'sparkle'")


def test_no_tray_and_missing_provider(isolated_home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  providers: [cuda]\n")
    checks = by_name(run_checks(cfg, machine(tmp_path, tray=None)))
    assert (checks["tray icon"].status, checks["tray icon"].detail) == (
        "warn", "no graphical session (test); vcam will run headless (control it with vcam ctl)")
    assert checks["ONNX Runtime"] == Check(
        "ONNX Runtime", "fail",
        "none of model.providers (cuda) is available; this build has CPUExecutionProvider",
        "add cpu to model.providers",
    )


def test_both_runtimes_installed_is_a_problem_with_its_fix(isolated_home: Path, tmp_path: Path) -> None:
    c = by_name(run_checks(None, machine(tmp_path, runtimes=("onnxruntime", "onnxruntime-gpu"))))["ONNX Runtime"]
    assert c == Check(
        "ONNX Runtime", "fail", "both onnxruntime and onnxruntime-gpu are installed; they overwrite each other",
        "pip uninstall -y onnxruntime onnxruntime-gpu, then in the vcam folder: pip install '.[gpu]' (or '.[cpu]')",
    )


def test_no_runtime_installed_names_the_install_command(isolated_home: Path, tmp_path: Path) -> None:
    c = by_name(run_checks(None, machine(tmp_path, runtimes=())))["ONNX Runtime"]
    assert c == Check(
        "ONNX Runtime", "fail", "not installed (vcam needs onnxruntime or onnxruntime-gpu)",
        "in the vcam folder: pip install '.[cpu]' (or '.[gpu]' for an NVIDIA GPU; pipx install '.[cpu]' likewise)",
    )


def test_the_real_environment_has_one_runtime() -> None:
    from vcam.matting.runtime import installed_runtimes

    assert len(installed_runtimes()) == 1  # scripts/setup installs '.[cpu,dev]' (or VCAM_RUNTIME=gpu)


def test_missing_model(isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    monkeypatch.setenv("VCAM_MODEL_DIR", str(empty))
    c = by_name(run_checks(None, machine(tmp_path)))["model"]
    assert c == Check("model", "fail", f"{empty / 'rvm_mobilenetv3_fp32.onnx'}: missing (vcam models fetch)",
                      "vcam models fetch")


def test_model_folder_that_cannot_be_created(isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("not a folder")
    folder = tmp_path / "file" / "models"
    monkeypatch.setenv("VCAM_MODEL_DIR", str(folder))
    c = by_name(run_checks(None, machine(tmp_path)))["model"]
    assert c == Check(
        "model", "fail",
        f"{folder / 'rvm_mobilenetv3_fp32.onnx'}: missing; model folder {folder} cannot be created "
        f"({tmp_path / 'file'} is not a folder)",
        "set model.dir or VCAM_MODEL_DIR to a writable folder",
    )


def test_model_file_that_is_a_folder(isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "models"
    (folder / "rvm_mobilenetv3_fp32.onnx").mkdir(parents=True)
    monkeypatch.setenv("VCAM_MODEL_DIR", str(folder))
    c = by_name(run_checks(None, machine(tmp_path)))["model"]
    assert c == Check("model", "fail", f"{folder / 'rvm_mobilenetv3_fp32.onnx'}: is a folder, not the model file",
                      "remove it, then run 'vcam models fetch'")


def test_doctor_exit_status(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import vcam.setup.doctor

    monkeypatch.setattr(vcam.setup.doctor, "run_checks", lambda path: [Check("config", "ok", "fine")])
    assert main(["doctor"]) == 0
    monkeypatch.setattr(vcam.setup.doctor, "run_checks", lambda path: [Check("cameras", "fail", "none", "plug one in")])
    assert main(["doctor"]) == 1
    assert capsys.readouterr().out.splitlines()[-3:] == [
        "FAIL  cameras: none", "      fix: plug one in", "1 problem(s), 0 warning(s)"]


def test_without_a_runtime_vcam_says_which_command_to_run(
    isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain ``pip install .`` has no ONNX Runtime (it comes from the cpu or gpu extra):
    the first command that needs the model stops with one line naming the install command."""
    import sys
    from fractions import Fraction

    from tests.helpers.media import color_frames, write_video

    clip = write_video(tmp_path / "in.mp4", color_frames(2, (64, 48)), Fraction(25))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what "not installed" looks like to an import
    assert main(["process", str(clip), "-o", str(tmp_path / "out.mp4")]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "vcam: error: ONNX Runtime is not installed (vcam needs onnxruntime or onnxruntime-gpu); in the vcam "
        "folder: pip install '.[cpu]' (or '.[gpu]' for an NVIDIA GPU; pipx install '.[cpu]' likewise)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "in.mp4"]  # nothing half-written


def test_both_runtimes_are_found_in_the_installed_metadata(
    isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What pip leaves behind for onnxruntime-gpu beside the installed onnxruntime: a
    dist-info folder. The real metadata look-up (not a fake) finds both."""
    import sys

    from vcam.matting.runtime import installed_runtimes

    site = tmp_path / "site"
    info = site / "onnxruntime_gpu-1.20.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: onnxruntime-gpu\nVersion: 1.20.0\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    assert installed_runtimes() == ["onnxruntime", "onnxruntime-gpu"]
    system = machine(tmp_path / "m")
    system.runtimes = installed_runtimes
    c = by_name(run_checks(None, system))["ONNX Runtime"]
    assert (c.status, c.detail) == ("fail", "both onnxruntime and onnxruntime-gpu are installed; they overwrite each other")
