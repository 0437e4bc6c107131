"""Config hot reload: a valid edit changes the output, an invalid one keeps the last good config."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers.cli import wait_for
from tests.helpers.desktop import BACKGROUND, COLOR, PERSON, SIZE, make_rig, split_frame
from tests.helpers.fakes import FakeEngine
from tests.helpers.media import DDS_HEADER
from vcam.config import Config
from vcam.errors import ConfigError, InputError
from vcam.live.reload import ConfigWatcher, config_loader

BASE = {"camera": {"size": list(SIZE), "fps": 30}, "effect": {"mode": "blur", "color": list(COLOR)}}


def write(path: Path, data: object, stamp: int) -> None:
    """Write YAML and give the file a distinct modification time (the watcher's signal)."""
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    os.utime(path, ns=(stamp * 10**9, stamp * 10**9))


def edited(**sections: dict[str, object]) -> dict[str, object]:
    out = {k: dict(v) for k, v in BASE.items()}  # type: ignore[call-overload]
    for k, v in sections.items():
        out.setdefault(k, {}).update(v)
    return out


def rig_with_file(tmp_path: Path, **kw: object):
    path = tmp_path / "config.yaml"
    write(path, BASE, 1)
    rig = make_rig({"mode": "blur"}, config_path=path, load_config=config_loader(path, required=True), **kw)
    return rig, path


def test_watcher_calls_back_once_the_edit_has_settled(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write(path, BASE, 1)
    calls: list[int] = []
    w = ConfigWatcher(path, lambda: calls.append(1))
    assert w.check() is False  # unchanged
    write(path, edited(effect={"mode": "off"}), 2)
    assert w.check() is False  # changed since the last poll: wait one more
    assert w.check() is True
    assert w.check() is False
    assert calls == [1]
    w.request()  # SIGHUP: reload although nothing changed
    assert w.check() is True
    assert calls == [1, 1]


def test_valid_edit_changes_the_output(tmp_path: Path) -> None:
    rig, path = rig_with_file(tmp_path)
    rig.frame()
    write(path, edited(effect={"mode": "color"}), 2)
    assert rig.controller.reload() == ["effect"]
    out = rig.frame()
    assert (out[BACKGROUND] == COLOR).all()
    assert np.array_equal(out[PERSON], split_frame(1)[PERSON])
    assert rig.controller.status()["mode"] == "color"


def test_invalid_edit_keeps_the_last_good_config_and_reports_the_key(tmp_path: Path) -> None:
    rig, path = rig_with_file(tmp_path)
    messages: list[str] = []
    rig.controller.add_listener(messages.append)
    write(path, edited(effect={"mode": "color"}), 2)
    rig.controller.reload()
    write(path, edited(effect={"mode": "off", "blur_strength": 500}), 3)
    with pytest.raises(ConfigError):
        rig.controller.reload()
    expected = f"{path}: effect.blur_strength: must be less than or equal to 100, got 500"
    assert rig.controller.status()["config_error"] == expected
    assert messages == [f"config not applied: {expected}"]
    assert rig.controller.status()["mode"] == "color"
    assert (rig.frame()[BACKGROUND] == COLOR).all()

    write(path, "effect: [unclosed", 4)
    with pytest.raises(ConfigError):
        rig.controller.reload()
    assert rig.controller.status()["config_error"] == (
        f"{path}: not valid YAML at line 1, column 18: expected ',' or ']', but got '<stream end>'"
    )
    write(path, edited(effect={"mode": "off"}), 5)
    rig.controller.reload()
    assert rig.controller.status()["config_error"] is None
    assert np.array_equal(rig.frame(), split_frame(1))


def test_a_mode_picked_in_the_tray_survives_an_unrelated_edit(tmp_path: Path) -> None:
    rig, path = rig_with_file(tmp_path)
    rig.controller.set_mode("off")
    write(path, edited(effect={"blur_strength": 40}), 2)
    assert rig.controller.reload() == ["effect"]
    eff = rig.controller.effect
    assert (eff.mode, eff.blur_strength) == ("off", 40)


def test_bad_background_in_the_file_is_reported_with_its_key(tmp_path: Path) -> None:
    rig, path = rig_with_file(tmp_path)
    missing = tmp_path / "missing.png"
    write(path, edited(effect={"mode": "replace", "background": str(missing)}), 2)
    with pytest.raises(ConfigError):
        rig.controller.reload()
    assert rig.controller.status()["config_error"] == (
        f"{path}: effect.background: background image {missing}: file not found"
    )
    assert rig.controller.status()["mode"] == "blur"


def test_camera_settings_reopen_only_the_camera(tmp_path: Path) -> None:
    rig, path = rig_with_file(tmp_path)
    rig.frame()
    engine = rig.pipeline.stages.engine
    resets = rig.engine.resets
    write(path, edited(camera={"fps": 15}), 2)
    assert rig.controller.reload() == ["camera"]
    assert rig.cameras.log == ["open 0", "close 0", "open 0"]
    assert rig.pipeline.stages.engine is engine
    assert rig.engine.resets == resets  # asked for only: the reset happens on the thread that mattes
    rig.frame()
    assert rig.engine.resets == resets + 1  # the new camera starts a new scene

    rig.cameras.failing[3] = "camera 3 (/dev/video3) cannot be opened: it does not exist"
    write(path, edited(camera={"fps": 15, "device": 3}), 3)
    with pytest.raises(ConfigError):
        rig.controller.reload()
    assert rig.controller.status()["config_error"] == (
        f"{path}: camera: camera 3 (/dev/video3) cannot be opened: it does not exist"
    )
    # the failed camera was tried, then the old one reopened; the old settings stay
    assert rig.cameras.log == ["open 0", "close 0", "open 0", "close 0", "fail 3", "open 0"]
    assert rig.controller.config.camera.device == 0
    assert rig.source.state == "open"


def test_model_settings_rebuild_the_engine(tmp_path: Path) -> None:
    built: list[Config] = []

    def build(cfg: Config) -> FakeEngine:
        built.append(cfg)
        return FakeEngine((32, 18))

    rig, path = rig_with_file(tmp_path, build_engine=build)
    write(path, edited(model={"input_size": [32, 18]}), 2)
    assert rig.controller.reload() == ["model"]
    assert [c.model.input_size for c in built] == [(32, 18)]
    assert rig.pipeline.stages.engine.input_size == (32, 18)


def test_output_changes_wait_for_a_restart(tmp_path: Path) -> None:
    rig, path = rig_with_file(tmp_path)
    write(path, edited(output={"fps": 15}), 2)
    assert rig.controller.reload() == ["output"]
    assert rig.controller.status()["pending_restart"] == ["output"]


def test_missing_default_file_means_defaults_but_a_named_file_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    assert config_loader(path, required=False)() == Config()
    with pytest.raises(ConfigError) as exc:
        config_loader(path, required=True)()
    assert str(exc.value) == f"{path}: file not found"


def test_watcher_thread_applies_an_edit(tmp_path: Path) -> None:
    rig, path = rig_with_file(tmp_path)
    stop = threading.Event()
    w = ConfigWatcher(path, rig.controller.reload, interval=0.02)
    t = threading.Thread(target=w.run, args=(stop,), name="vcam-reload-test", daemon=True)
    t.start()
    try:
        write(path, edited(effect={"mode": "color"}), 2)
        wait_for(lambda: rig.controller.status()["mode"] == "color", what="the edit to be applied")
    finally:
        stop.set()
        t.join(5)
    assert not t.is_alive()
    assert (rig.frame()[BACKGROUND] == COLOR).all()


def test_daemon_reloads_on_edit_and_stops_on_sigterm(isolated_home: Path, tmp_path: Path) -> None:
    """The real daemon: an edit applies, a bad edit is reported and changes nothing, SIGTERM
    (systemctl stop) exits 0."""
    import signal
    import subprocess
    import sys

    from vcam.errors import ControlError
    from vcam.live.control_socket import Request, send_request

    cfg = tmp_path / "vcam.yaml"
    write(cfg, {"effect": {"mode": "blur"}}, 1)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "vcam", "run", "--config", str(cfg), "--source", "testpattern", "--size", "160x90",
         "--fps", "10", "--output", "null", "--no-tray", "--model-input", "64x36", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )

    def status() -> dict[str, object]:
        try:
            return send_request(Request("status"))
        except ControlError:  # not up yet
            return {}

    try:
        wait_for(lambda: status() or daemon.poll() is not None, timeout=60, what="the daemon")
        assert status()["config_path"] == str(cfg)
        write(cfg, {"effect": {"mode": "color"}}, 2)
        wait_for(lambda: status().get("mode") == "color", what="the edit to apply")
        write(cfg, {"effect": {"mode": "color", "blur_strength": 0}}, 3)
        wait_for(lambda: status().get("config_error"), what="the bad edit to be reported")
        assert status()["config_error"] == (
            f"{cfg}: effect.blur_strength: must be greater than or equal to 1, got 0")
        assert status()["mode"] == "color"
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert daemon.returncode == 0, err
    assert f"vcam: config file {cfg} changed; reloading" in err
    assert "vcam: stopped (stopped)" in err


# -- D3 (issue 17): a build that fails with any exception is a reported config error ----------



def unwritable_folder(tmp_path: Path) -> Path:
    """An existing folder this process cannot create files in (root ignores modes: sysfs)."""
    if os.geteuid() == 0:
        return Path("/sys/kernel")
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o500)
    return folder


def test_a_build_failing_with_any_exception_keeps_the_last_good_config(tmp_path: Path) -> None:
    """Engine, compositor and camera builders may raise anything (ONNX Runtime, Pillow, OS):
    the change is not applied, reported with its key, and the daemon goes on."""

    def bad_engine(cfg: Config) -> FakeEngine:
        raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Invalid input shape: {0,0}")

    rig, path = rig_with_file(tmp_path, build_engine=bad_engine)
    messages: list[str] = []
    rig.controller.add_listener(messages.append)
    rig.frame()
    write(path, edited(model={"downsample_ratio": 0.001}), 2)
    with pytest.raises(ConfigError) as exc:
        rig.controller.reload()
    expected = (f"{path}: model: cannot be applied (RuntimeError: [ONNXRuntimeError] : 2 : INVALID_ARGUMENT : "
                "Invalid input shape: {0,0})")
    assert str(exc.value) == expected
    assert rig.controller.status()["config_error"] == expected
    assert messages == [f"config not applied: {expected}"]
    assert rig.controller.config.model.downsample_ratio != 0.001
    assert rig.frame().shape == (SIZE[1], SIZE[0], 3)

    bad = tmp_path / "bad.png"
    bad.write_bytes(DDS_HEADER)
    write(path, edited(effect={"mode": "replace", "background": str(bad)}), 3)
    with pytest.raises(ConfigError) as exc:
        rig.controller.reload()
    assert str(exc.value) == (
        f"{path}: effect.background: background image {bad}: cannot read it "
        "(NotImplementedError: Unimplemented pixel format 810899781)")
    assert rig.controller.status()["mode"] == "blur"

    rig.cameras.fail = None

    def broken_camera(cfg: Config | None = None) -> object:
        raise PermissionError(13, "Permission denied")

    rig.controller._open_source = broken_camera
    write(path, edited(camera={"fps": 15}), 4)
    with pytest.raises(ConfigError) as exc:
        rig.controller.reload()
    assert str(exc.value) == f"{path}: camera: cannot be applied (PermissionError: [Errno 13] Permission denied)"
    assert rig.controller.config.camera.fps == 30


def test_mode_and_background_requests_failing_with_any_exception_keep_the_effect(tmp_path: Path) -> None:
    from vcam.errors import ControlError

    rig = make_rig({"mode": "color"})
    bad = tmp_path / "bad.png"
    bad.write_bytes(DDS_HEADER)
    with pytest.raises(InputError) as exc:
        rig.controller.set_background(bad)
    assert str(exc.value) == (
        f"background image {bad}: cannot read it (NotImplementedError: Unimplemented pixel format 810899781)")
    assert rig.controller.status()["mode"] == "color"
    assert rig.controller.status()["background"] is None
    assert (rig.frame()[BACKGROUND] == COLOR).all()

    def broken(effect: object, size: object, fps: object) -> object:
        raise MemoryError("no room for the blur kernel")

    rig.controller._make_compositor = broken  # type: ignore[assignment]
    with pytest.raises(ControlError) as exc:
        rig.controller.set_mode("blur")
    assert str(exc.value) == "mode blur: cannot be used (MemoryError: no room for the blur kernel)"
    assert rig.controller.status()["mode"] == "color"


def _daemon(cfg: Path, *extra: str):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "vcam", "run", "--config", str(cfg), "--source", "testpattern", "--size", "160x90",
         "--fps", "10", "--output", "null", "--no-tray", "--model-input", "64x36", "--threads", "1", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def _status() -> dict[str, object]:
    from vcam.errors import ControlError
    from vcam.live.control_socket import Request, send_request

    try:
        return send_request(Request("status"), timeout=10)
    except ControlError:  # not up (yet), or gone
        return {}


@pytest.mark.parametrize("case", ["downsample_ratio", "model_dir", "corrupt_background"])
def test_the_daemon_survives_an_edit_that_fails_to_build(isolated_home: Path, tmp_path: Path, case: str) -> None:
    """The real daemon and a real edit: a setting that passes validation but fails when built
    (ONNX Runtime, the file system, Pillow) is reported; the daemon keeps running and serving."""
    import signal

    cfg = tmp_path / "vcam.yaml"
    write(cfg, {"effect": {"mode": "blur"}}, 1)
    bad_image = tmp_path / "bad.png"
    bad_image.write_bytes(DDS_HEADER)
    edit: dict[str, object] = {
        "downsample_ratio": {"effect": {"mode": "blur"}, "model": {"downsample_ratio": 0.001}},
        "model_dir": {"effect": {"mode": "blur"}, "model": {"dir": str(unwritable_folder(tmp_path))}},
        "corrupt_background": {"effect": {"mode": "replace", "background": str(bad_image)}},
    }[case]
    daemon = _daemon(cfg)
    try:
        wait_for(lambda: _status() or daemon.poll() is not None, timeout=90, what="the daemon")
        assert daemon.poll() is None
        runtime = _status()["runtime"]  # the automatic choice: ONNX Runtime or OpenVINO, by measurement
        write(cfg, edit, 2)
        st = wait_for(lambda: _status().get("config_error") or daemon.poll() is not None, timeout=60, what="the report")
        assert daemon.poll() is None, "the daemon died"
        assert isinstance(st, str)
        if case == "downsample_ratio":
            assert st.startswith(f"{cfg}: model: the model cannot run at input 64x36 with downsample ratio 0.001 ("), st
            # the runtime's own reason, in its words
            reason = {"onnxruntime": "Invalid input shape: {0,0})", "openvino": "pooling_shape_inference_util.hpp:149:)"}
            assert st.endswith(f"{reason[str(runtime)]}; use a larger model.downsample_ratio or model.input_size"), (runtime, st)
        elif case == "model_dir":
            assert st == (f"{cfg}: model: model folder {unwritable_folder(tmp_path)} is not writable (Permission denied); "
                          "set model.dir or VCAM_MODEL_DIR to a writable folder"), st
        else:
            assert st == (f"{cfg}: effect.background: background image {bad_image}: cannot read it "
                          "(NotImplementedError: Unimplemented pixel format 810899781)")
        frames = int(_status()["frames_out"])  # type: ignore[call-overload]
        wait_for(lambda: int(_status().get("frames_out", 0)) > frames + 5, timeout=60, what="frames after the bad edit")  # type: ignore[call-overload]
        assert _status()["mode"] == "blur"
        write(cfg, {"effect": {"mode": "color"}}, 3)  # a good edit after the bad one still applies
        wait_for(lambda: _status().get("mode") == "color", timeout=60, what="the good edit")
        assert _status()["config_error"] is None
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert daemon.returncode == 0, err
    assert "config not applied, keeping the last good settings" in err
