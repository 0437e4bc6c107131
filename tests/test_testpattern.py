"""The test pattern proves the path in every mode (issue 13.4): the effect shows on the bars,
and the label "vcam test pattern — <mode>" and a sharp frame-counter card are drawn after the
effect, so they stay legible in blur mode. With the real model, into pyvirtualcam's own
registry (the in-memory backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.cli import run_cli
from tests.helpers.fakes import MemoryCameraBackend, register_memory_backend
from vcam.sources.synthetic import TestPatternOverlay, TestPatternSource

pytestmark = pytest.mark.usefixtures("isolated_home")
W, H = 320, 180


def _last_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str) -> np.ndarray:
    register_memory_backend()
    MemoryCameraBackend.instances.clear()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("output:\n  backend: memory\n")
    code, _, err = run_cli(capsys, "run", "--config", str(cfg), "--no-tray", "--source", "testpattern", "--size", f"{W}x{H}",
                           "--fps", "10", "--mode", mode, "--duration", "2", "--model-input", "192x108", "--threads", "1")
    assert code == 0, err
    [cam] = MemoryCameraBackend.instances
    return np.frombuffer(cam.frames[-1], np.uint8).reshape(H, W, 3).astype(int)


def _white_card(img: np.ndarray) -> int:
    """Pure white pixels in the bottom quarter (the card; the bars have no pure white)."""
    return int((img[H * 3 // 4 :] >= 250).all(axis=2).sum())


@pytest.mark.parametrize("mode", ["blur", "off"])
def test_the_effect_shows_on_the_bars_and_the_counter_stays_sharp(tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str) -> None:
    img = _last_frame(tmp_path, capsys, mode)
    # the boundary between the first two bars (light grey | yellow), mid-height: clear of the
    # silhouette and of the source's own counter (top left)
    edge = W // 7
    row = img[H // 2]
    if mode == "off":
        assert row[edge - 3].tolist() == [192, 192, 192] and row[edge + 3].tolist() == [192, 192, 0]
    else:  # blurred by the real model's background: the blue channel runs down across the boundary
        assert 30 < row[edge][2] < 165
    # the label's white text on its dark band, top left
    assert int((img[:16, :160] >= 250).all(axis=2).sum()) > 40
    assert _white_card(img) > 500  # the card is there, drawn after the effect: sharp white


def test_overlay_draws_the_label_and_a_moving_card_with_the_counter() -> None:
    src = TestPatternSource((W, H), frames=1, pace=False)
    frame = src.read()
    assert frame is not None
    before = frame.image.copy()
    draw = TestPatternOverlay()
    a, b = draw(frame.image, 0, "blur"), draw(frame.image, 30, "blur")
    assert a.shape == (H, W, 3) and a.dtype == np.uint8
    assert np.array_equal(frame.image, before)  # drawn on a copy
    for img in (a, b):
        assert _white_card(img.astype(int)) > 500
    # the card moved: its columns differ between frame 0 and frame 30
    cols_a = np.flatnonzero((a[H * 3 // 4 :] >= 250).all(axis=2).any(axis=0))
    cols_b = np.flatnonzero((b[H * 3 // 4 :] >= 250).all(axis=2).any(axis=0))
    assert cols_a[0] == 0 and cols_b[0] > 50
    # another mode, another label
    assert not np.array_equal(draw(frame.image, 0, "off")[:16], a[:16])
