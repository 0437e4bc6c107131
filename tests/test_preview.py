"""The preview window, for real, on an Xvfb display."""

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import numpy as np
import pytest

from vcam.sinks import StopRequested

pytestmark = pytest.mark.display


@pytest.fixture
def display(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh Xvfb server; it picks a free display number and reports it through a pipe."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (scripts/setup installs it)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    assert number, "Xvfb did not start"
    name = f":{number}"
    monkeypatch.setenv("DISPLAY", name)
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    try:
        yield name
    finally:
        proc.terminate()
        proc.wait(10)


def _window_ids(title: str) -> list[str]:
    out = subprocess.run(["xdotool", "search", "--name", title], capture_output=True, text=True, check=False, timeout=10)
    return out.stdout.split()


def test_preview_shows_frames_in_a_window_and_q_stops(display: str) -> None:
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed")
    from vcam.sinks.preview import PreviewSink

    sink = PreviewSink("vcam preview test")
    img = np.zeros((120, 160, 3), np.uint8)
    img[..., 0] = 255  # red, RGB
    for _ in range(5):
        sink.send(img)
    ids = _window_ids("vcam preview test")
    assert ids, "no preview window on the display"
    # no window manager on Xvfb: focus the window directly, then type q into it
    subprocess.run(["xdotool", "windowfocus", ids[-1]], check=False, capture_output=True, timeout=10)
    subprocess.run(["xdotool", "key", "q"], check=True, timeout=10)
    with pytest.raises(StopRequested):
        for _ in range(50):
            sink.send(img)
            time.sleep(0.02)
    sink.close()


def test_preview_without_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from vcam.errors import DeviceError
    from vcam.sinks.preview import PreviewSink

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(DeviceError, match=r"^the preview window needs a display, but DISPLAY is not set; use --output null or virtualcam$"):
        PreviewSink()
