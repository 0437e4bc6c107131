"""The tray for real: vcam under Xvfb with pystray's xorg backend docks its icon in a system
tray, the icon shows the mode, and a click on it opens the menu that changes the mode.

The test starts Xvfb itself and plays the desktop panel with a minimal XEmbed system-tray
host (python-xlib, which pystray's xorg backend already depends on). It takes screenshots
to ``tmp_path`` (and to ``$VCAM_TEST_SCREENSHOTS`` when set, to look at them).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.cli import wait_for
from vcam.live.tray import MODE_COLORS

pytestmark = pytest.mark.display

pytest.importorskip("Xlib")
import Xlib.display  # noqa: E402
import Xlib.X  # noqa: E402
from Xlib.ext import xtest  # noqa: E402

SCREEN = (320, 120)
ICON_AT = (16, 16)  # where the host places the icon
ICON_SIZE = 48


@pytest.fixture
def xvfb() -> str:
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb is not installed (scripts/setup installs it: apt-get install xvfb)")
    r, w = os.pipe()
    proc = subprocess.Popen(
        [exe, "-displayfd", str(w), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 20)
        number = os.read(r, 32).decode().strip() if ready else ""
        if not number:
            raise AssertionError("Xvfb did not report its display number within 20 s")
        yield f":{number}"
    finally:
        os.close(r)
        proc.terminate()
        proc.wait(10)


class TrayHost:
    """A system-tray host (the panel's part of XEmbed): owns _NET_SYSTEM_TRAY_S0 and docks
    icons that ask for it into its own window at ``ICON_AT``."""

    def __init__(self, display: str) -> None:
        self.d = Xlib.display.Display(display)
        screen = self.d.screen()
        self.win = screen.root.create_window(
            0, 0, SCREEN[0], SCREEN[1], 0, screen.root_depth,
            background_pixel=screen.white_pixel, event_mask=Xlib.X.StructureNotifyMask,
        )
        self.win.map()
        self.opcode = self.d.intern_atom("_NET_SYSTEM_TRAY_OPCODE")
        self.win.set_selection_owner(self.d.intern_atom("_NET_SYSTEM_TRAY_S0"), Xlib.X.CurrentTime)
        self.d.sync()
        self.docked: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="test-tray-host", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.d.pending_events():
                time.sleep(0.01)
                continue
            ev = self.d.next_event()
            if ev.type == Xlib.X.ClientMessage and ev.client_type == self.opcode:
                _fmt, data = ev.data
                if data[1] == 0:  # SYSTEM_TRAY_REQUEST_DOCK, data[2] = the icon window
                    icon = self.d.create_resource_object("window", data[2])
                    icon.reparent(self.win, *ICON_AT)
                    icon.configure(width=ICON_SIZE, height=ICON_SIZE)
                    icon.map()
                    self.d.sync()
                    self.docked = data[2]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.d.close()


def screenshot(display: str, path: Path) -> Image.Image:
    d = Xlib.display.Display(display)
    try:
        root = d.screen().root
        raw = root.get_image(0, 0, SCREEN[0], SCREEN[1], Xlib.X.ZPixmap, 0xFFFFFFFF).data
    finally:
        d.close()
    img = Image.frombytes("RGB", SCREEN, raw, "raw", "BGRX")
    img.save(path)
    if os.environ.get("VCAM_TEST_SCREENSHOTS"):
        out = Path(os.environ["VCAM_TEST_SCREENSHOTS"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, out / path.name)
    return img


def icon_pixel(img: Image.Image) -> tuple[int, int, int]:
    # (8, 32) of the 64 px icon, scaled to the docked size: inside the disc, clear of the letter
    x = ICON_AT[0] + 8 * ICON_SIZE // 64
    y = ICON_AT[1] + 32 * ICON_SIZE // 64
    px = img.getpixel((x, y))
    assert isinstance(px, tuple)
    return px[0], px[1], px[2]


def shows(img: Image.Image, mode: str) -> bool:
    px = icon_pixel(img)
    return max(abs(a - b) for a, b in zip(px, MODE_COLORS[mode], strict=True)) <= 2


def click(display: str, x: int, y: int) -> None:
    d = Xlib.display.Display(display)
    try:
        xtest.fake_input(d, Xlib.X.MotionNotify, x=x, y=y)
        xtest.fake_input(d, Xlib.X.ButtonPress, 1)
        xtest.fake_input(d, Xlib.X.ButtonRelease, 1)
        d.sync()
    finally:
        d.close()


def menu_shown(display: str) -> bool:
    d = Xlib.display.Display(display)
    try:
        for child in d.screen().root.query_tree().children:
            cls = child.get_wm_class()
            if cls and cls[1] == "Menu" and child.get_attributes().map_state == Xlib.X.IsViewable:
                return True
        return False
    finally:
        d.close()


def stop_daemon(daemon: subprocess.Popen[str]) -> None:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGABRT)
        _out, err = daemon.communicate(timeout=30)
        print("daemon did not stop; its stderr:\n" + err)


def ctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vcam", "ctl", *args], capture_output=True, text=True, timeout=60)


def test_tray_icon_appears_and_a_click_changes_the_mode(xvfb: str, isolated_home: Path, tmp_path: Path) -> None:
    pytest.importorskip("tkinter", reason="the pop-up menu needs Tk (Debian: apt-get install python3-tk; scripts/setup does)")
    host = TrayHost(xvfb)
    # PYTHONFAULTHANDLER: a daemon that hangs is killed with SIGABRT and shows its threads
    env = {**os.environ, "DISPLAY": xvfb, "PYSTRAY_BACKEND": "xorg", "PYTHONFAULTHANDLER": "1"}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "vcam", "run", "--source", "testpattern", "--size", "160x90", "--fps", "10",
         "--output", "null", "--model-input", "64x36", "--threads", "1", "--mode", "blur"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(lambda: host.docked is not None or daemon.poll() is not None, timeout=60, what="the icon to dock")
        assert daemon.poll() is None
        before = wait_for(
            lambda: (img := screenshot(xvfb, tmp_path / "tray-blur.png")) and shows(img, "blur") and img,
            what="the blur icon to be drawn",
        )
        assert shows(before, "blur")
        assert json.loads(ctl("status").stdout)["mode"] == "blur"

        click(xvfb, ICON_AT[0] + ICON_SIZE // 2, ICON_AT[1] + ICON_SIZE // 2)  # opens the (Tk) menu
        # Blur, (Replace: disabled without a background), Colour, Off
        keys = ["xdotool", "key", "--delay", "50", "Down", "Down", "Down", "Return"]

        wait_for(lambda: menu_shown(xvfb), what="the menu", proc=daemon)
        subprocess.run(keys, env={**os.environ, "DISPLAY": xvfb}, check=True, timeout=10)
        wait_for(lambda: json.loads(ctl("status").stdout)["mode"] == "off", what="the mode to change from the menu")
        after = wait_for(
            lambda: (img := screenshot(xvfb, tmp_path / "tray-off.png")) and shows(img, "off") and img,
            what="the icon to show mode off",
        )
        assert icon_pixel(after) != icon_pixel(before)

        daemon.send_signal(signal.SIGINT)  # Ctrl-C while the tray loop runs the main thread
        _out, err = daemon.communicate(timeout=30)
        assert daemon.returncode == 130, err
        assert err.endswith("vcam: interrupted\n")
        assert "tray icon shown (pystray xorg backend)" in err
        assert "no tray icon" not in err
    finally:
        stop_daemon(daemon)
        host.close()


def test_without_a_system_tray_vcam_says_so_once_and_runs_headless(xvfb: str, isolated_home: Path) -> None:
    # PYTHONFAULTHANDLER: a daemon that hangs is killed with SIGABRT and shows its threads
    env = {**os.environ, "DISPLAY": xvfb, "PYSTRAY_BACKEND": "xorg", "PYTHONFAULTHANDLER": "1"}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "vcam", "run", "--source", "testpattern", "--size", "160x90", "--fps", "10",
         "--output", "null", "--model-input", "64x36", "--threads", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        sock = Path(os.environ["XDG_RUNTIME_DIR"]) / "vcam" / "control.sock"
        wait_for(lambda: sock.exists() or daemon.poll() is not None, timeout=60, what="the control socket")
        assert ctl("status").returncode == 0
        assert ctl("quit").returncode == 0
        _out, err = daemon.communicate(timeout=30)
    finally:
        stop_daemon(daemon)
    assert daemon.returncode == 0, err
    lines = [line for line in err.splitlines() if "tray icon" in line]
    assert lines == [
        "vcam: no tray icon: no system tray on this X display (nothing owns _NET_SYSTEM_TRAY_S0); on GNOME "
        "install the AppIndicator extension and PyGObject (see docs/desktop.md); running headless until a "
        "system tray appears (--no-tray hides this message)"
    ]


def test_the_icon_docks_when_the_panel_starts_after_vcam(xvfb: str, isolated_home: Path) -> None:
    """B4 (issue 17): under systemd vcam may start before the panel; the icon must appear when
    the system tray does (vcam tries again, with a growing wait up to 30 s)."""
    env = {**os.environ, "DISPLAY": xvfb, "PYSTRAY_BACKEND": "xorg", "PYTHONFAULTHANDLER": "1"}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "vcam", "run", "--source", "testpattern", "--size", "160x90", "--fps", "10",
         "--output", "null", "--model-input", "64x36", "--threads", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    host = None
    try:
        sock = Path(os.environ["XDG_RUNTIME_DIR"]) / "vcam" / "control.sock"
        wait_for(lambda: sock.exists() or daemon.poll() is not None, timeout=60, what="the control socket")
        assert ctl("status").returncode == 0  # running headless, no tray yet
        time.sleep(1.5)  # the panel comes later (vcam has looked for it at least once more)
        host = TrayHost(xvfb)
        wait_for(lambda: host.docked is not None or daemon.poll() is not None, timeout=60, what="the icon to dock")
        assert daemon.poll() is None
        assert ctl("quit").returncode == 0
        _out, err = daemon.communicate(timeout=30)
    finally:
        stop_daemon(daemon)
        if host is not None:
            host.close()
    assert daemon.returncode == 0, err
    assert [line for line in err.splitlines() if "tray icon" in line] == [
        "vcam: no tray icon: no system tray on this X display (nothing owns _NET_SYSTEM_TRAY_S0); on GNOME "
        "install the AppIndicator extension and PyGObject (see docs/desktop.md); running headless until a "
        "system tray appears (--no-tray hides this message)",
        "vcam: tray icon shown (pystray xorg backend)",
    ]


def test_a_call_into_the_icon_after_its_event_loop_ended_does_nothing(
    xvfb: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The icon's event loop closes the second connection other threads ask it over when it
    ends; a thread asking just then (the tray keeper stopping the icon as the tray went away)
    used the closed connection: python-xlib raised TypeError ('NoneType' object is not
    subscriptable) in the vcam-tray thread (seen in a CI simulation, 2026-12-03). After the
    loop, asking is a no-op, and the connection is closed and dropped."""
    monkeypatch.setenv("DISPLAY", xvfb)
    import pystray._xorg

    from vcam.live.tray_xorg import xorg_icon

    host = TrayHost(xvfb)
    icon = xorg_icon(pystray._xorg.Icon)("vcam-test", icon=Image.new("RGBA", (32, 32), (200, 40, 40, 255)), title="t")
    shown = threading.Event()

    def setup(icon: object) -> None:
        icon.visible = True  # type: ignore[attr-defined]
        shown.set()

    loop = threading.Thread(target=icon.run, kwargs={"setup": setup}, daemon=True)
    try:
        loop.start()
        assert shown.wait(20)
        wait_for(lambda: host.docked is not None, timeout=20, what="the icon to dock")
        icon._poke(icon._redock_atom)  # from this thread: opens the second connection
        assert icon._poke_display is not None
        icon.stop()  # from this thread: handed to the loop, which ends
        loop.join(10)
        assert not loop.is_alive()
        assert icon._poke_display is None  # closed and dropped by the loop's finish
        icon._poke(icon._call_atom, 1)  # raised TypeError on the closed connection before
        icon.stop()  # the loop is gone: returns at once
    finally:
        host.close()
