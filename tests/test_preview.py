"""The preview window, for real: ``vcam run --output preview`` with the threaded live runner
on an Xvfb display. The window is screenshotted (python-xlib, as ``xwd`` would) while frames
flow, and q, Esc, the window's close button (WM_DELETE_WINDOW, what a window manager sends)
and Ctrl-C each stop vcam. Screenshots go to ``tmp_path`` (and ``$VCAM_TEST_SCREENSHOTS``)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.cli import wait_for

pytestmark = pytest.mark.display

pytest.importorskip("Xlib")
import Xlib.display  # noqa: E402
import Xlib.protocol.event  # noqa: E402
import Xlib.X  # noqa: E402

TITLE = "vcam preview"


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


def _find_window(d: Xlib.display.Display, title: str) -> int | None:
    """The mapped top-level window named ``title`` (Qt's own windows have other names)."""
    for child in d.screen().root.query_tree().children:
        try:
            if child.get_wm_name() == title and child.get_attributes().map_state == Xlib.X.IsViewable:
                return int(child.id)
        except Exception:  # a window that went away meanwhile
            continue
    return None


def _shot(d: Xlib.display.Display, wid: int, path: Path) -> np.ndarray:
    win = d.create_resource_object("window", wid)
    geo = win.get_geometry()
    raw = win.get_image(0, 0, geo.width, geo.height, Xlib.X.ZPixmap, 0xFFFFFFFF).data
    img = Image.frombytes("RGB", (geo.width, geo.height), raw, "raw", "BGRX")
    img.save(path)
    if os.environ.get("VCAM_TEST_SCREENSHOTS"):
        out = Path(os.environ["VCAM_TEST_SCREENSHOTS"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, out / path.name)
    return np.asarray(img)


def _shows_bars(shot: np.ndarray) -> bool:
    """The test pattern's first (light grey) and last (blue) colour bars across the middle."""
    h, w = shot.shape[:2]
    row = shot[h // 2]
    return bool(row[w // 14].tolist() == [192, 192, 192] and row[w * 13 // 14].tolist() == [0, 0, 192])


def _close_button(d: Xlib.display.Display, wid: int) -> None:
    """What a window manager does when the user clicks the window's close button."""
    win = d.create_resource_object("window", wid)
    protocols = d.intern_atom("WM_PROTOCOLS")
    delete = d.intern_atom("WM_DELETE_WINDOW")
    ev = Xlib.protocol.event.ClientMessage(window=win, client_type=protocols, data=(32, [delete, Xlib.X.CurrentTime, 0, 0, 0]))
    win.send_event(ev, event_mask=Xlib.X.NoEventMask)
    d.sync()


def _key(display: str, wid: int, key: str) -> None:
    # no window manager on Xvfb: give the window the focus, then type into it
    subprocess.run(["xdotool", "windowfocus", "--sync", str(wid)], check=False, capture_output=True, timeout=10)
    subprocess.run(["xdotool", "key", "--window", str(wid), key], check=True, timeout=10)


@pytest.mark.parametrize(
    ("how", "code", "line"),
    [
        ("q", 0, "vcam: preview window: key q, stopping"),
        ("Escape", 0, "vcam: preview window: key Esc, stopping"),
        ("close", 0, "vcam: preview window: window closed, stopping"),
        ("ctrl-c", 130, "vcam: interrupted"),
    ],
)
def test_the_threaded_preview_shows_frames_and_stops(
    display: str, isolated_home: Path, tmp_path: Path, how: str, code: int, line: str
) -> None:
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed")
    env = {**os.environ, "DISPLAY": display, "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vcam", "run", "--source", "testpattern", "--size", "320x180", "--fps", "15",
         "--output", "preview", "--mode", "off", "--no-tray", "--model-input", "64x36", "--threads", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    d = Xlib.display.Display(display)
    try:
        wid = wait_for(lambda: _find_window(d, TITLE), timeout=60, what="the preview window", proc=proc)
        # The window shows the test pattern (not black, not grey), and a later shot shows later
        # frames: the pattern moves and its counter counts. (wait_for wants a truthy value:
        # each shot comes back in a one-item list.)
        [first] = wait_for(lambda: _shows_bars(a := _shot(d, wid, tmp_path / f"preview-{how}-1.png")) and [a],
                           what="the test pattern in the window", proc=proc)
        [second] = wait_for(lambda: _shows_bars(b := _shot(d, wid, tmp_path / f"preview-{how}-2.png"))
                            and np.abs(b.astype(int) - first).max() > 100 and [b],
                            what="later frames in the window", proc=proc)
        assert first.shape == second.shape
        if how == "ctrl-c":
            proc.send_signal(signal.SIGINT)
        elif how == "close":
            _close_button(d, wid)
        else:
            _key(display, wid, how)
        _out, err = proc.communicate(timeout=30)
    finally:
        d.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGABRT)
            print(proc.communicate(timeout=30)[1])
    assert proc.returncode == code, err
    assert line in err.splitlines(), err
    assert "QFontDatabase" not in err  # opencv's Qt pointed at the system's fonts
    assert "did not stop" not in err


def test_preview_without_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from vcam.errors import DeviceError
    from vcam.sinks.preview import PreviewSink

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(DeviceError, match=r"^the preview window needs a display, but DISPLAY is not set; use --output null or virtualcam$"):
        PreviewSink()


def test_preview_on_macos_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    from vcam.errors import DeviceError
    from vcam.sinks.preview import PreviewSink

    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    with pytest.raises(DeviceError, match=r"^the preview window is not available on macOS \(its windows must live on the main thread"):
        PreviewSink()
