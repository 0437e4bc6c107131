"""A video file as the camera keeps its own size and frame rate (issue 13.3): the virtual
camera follows it, ``--size``/``--fps`` change it, and a fixed output size of another shape
letterboxes the picture instead of cropping it. Real runs (``vcam run``) into pyvirtualcam's
own registry (the in-memory backend), mode off (no model needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.cli import run_cli
from tests.helpers.fakes import MemoryCameraBackend, register_memory_backend
from tests.helpers.media import write_video

pytestmark = pytest.mark.usefixtures("isolated_home")


def _clip(path: Path, size: tuple[int, int], fps: int) -> Path:
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (200, 40, 40)
    img[: h // 8] = (40, 200, 40)  # a green band at the top: a crop to 16:9 would cut it off
    return write_video(path, [img] * 10, fps=fps)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> MemoryCameraBackend:
    register_memory_backend()
    MemoryCameraBackend.instances.clear()
    code, _, err = run_cli(capsys, "run", "--output", "virtualcam", "--mode", "off", "--no-tray", "--duration", "0.6", *args)
    assert code == 0, err
    [cam] = MemoryCameraBackend.instances
    assert cam.frames
    return cam


def _config(tmp_path: Path, text: str) -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("output:\n  backend: memory\n" + text)
    return str(cfg)


@pytest.mark.parametrize(("size", "fps"), [((640, 480), 25), ((640, 360), 30)])
def test_a_file_keeps_its_own_size_and_rate(tmp_path: Path, capsys: pytest.CaptureFixture[str], size: tuple[int, int], fps: int) -> None:
    clip = _clip(tmp_path / "clip.mp4", size, fps)
    cam = _run(capsys, "--config", _config(tmp_path, ""), "--source", str(clip))
    assert (cam.width, cam.height, cam.fps) == (*size, fps)
    img = np.frombuffer(cam.frames[-1], np.uint8).reshape(size[1], size[0], 3)
    assert np.abs(img[2, size[0] // 2].astype(int) - (40, 200, 40)).max() <= 12  # the top band is there


def test_size_and_fps_flags_win_and_a_fixed_output_letterboxes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = _clip(tmp_path / "clip.mp4", (640, 480), 25)
    cam = _run(capsys, "--config", _config(tmp_path, ""), "--source", str(clip), "--size", "320x180", "--fps", "15")
    assert (cam.width, cam.height, cam.fps) == (320, 180, 15)
    img = np.frombuffer(cam.frames[-1], np.uint8).reshape(180, 320, 3).astype(int)
    # 4:3 into 16:9: pillarboxed, 240 px of picture between two 40 px black bars, nothing cut
    assert img[:, :38].max() <= 8 and img[:, -38:].max() <= 8
    assert np.abs(img[2, 160] - (40, 200, 40)).max() <= 12  # the top band is there
    assert np.abs(img[170, 160] - (200, 40, 40)).max() <= 12


def test_a_fixed_output_size_from_the_config_letterboxes_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = _clip(tmp_path / "clip.mp4", (640, 480), 25)
    cam = _run(capsys, "--config", _config(tmp_path, "  size: [320, 180]\n"), "--source", str(clip))
    assert (cam.width, cam.height, cam.fps) == (320, 180, 25)
    img = np.frombuffer(cam.frames[-1], np.uint8).reshape(180, 320, 3).astype(int)
    assert img[:, :38].max() <= 8 and img[:, -38:].max() <= 8
    assert np.abs(img[2, 160] - (40, 200, 40)).max() <= 12


def test_a_config_reload_keeps_the_file_size_too(tmp_path: Path) -> None:
    from vcam.live.reload import config_loader

    clip = _clip(tmp_path / "clip.mp4", (640, 480), 25)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"camera:\n  device: {clip}\n")
    loaded = config_loader(cfg, required=True)()
    assert (loaded.camera.size, loaded.camera.fps, loaded.output_size) == ((640, 480), 25.0, (640, 480))
    cfg.write_text(f"camera:\n  device: {clip}\n  size: [320, 240]\n")
    assert config_loader(cfg, required=True)().camera.size == (320, 240)
