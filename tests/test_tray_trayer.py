"""The tray on a real X11 tray host (Debian's ``trayer``) under Xvfb, with pystray's xorg
backend: the icon is drawn square with transparency and keeps its size across many
``vcam ctl`` changes (geometry and pixels read back after each), and a click opens a real
menu (Tk) whose entries work. Screenshots go to ``tmp_path`` (and ``$VCAM_TEST_SCREENSHOTS``)."""

from __future__ import annotations

import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.cli import wait_for
from vcam.live.tray import MODE_COLORS, PAUSED_COLOR

pytestmark = pytest.mark.display

pytest.importorskip("Xlib")
pytest.importorskip("tkinter")
import Xlib.display  # noqa: E402
import Xlib.error  # noqa: E402
import Xlib.X  # noqa: E402

SCREEN = (400, 400)
PANEL_H = 32


def _start_trayer(display: str) -> subprocess.Popen[bytes]:
    """trayer as the panel along the top edge, once it owns the tray selection."""
    trayer = subprocess.Popen(
        ["trayer", "--edge", "top", "--align", "left", "--widthtype", "pixel", "--width", "200",
         "--height", str(PANEL_H), "--SetDockType", "false"],
        env={**os.environ, "DISPLAY": display}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    d = Xlib.display.Display(display)
    try:
        tray = d.intern_atom("_NET_SYSTEM_TRAY_S0")
        wait_for(lambda: d.get_selection_owner(tray) != Xlib.X.NONE, timeout=20, what="trayer to own the tray", proc=trayer)
    finally:
        d.close()
    return trayer


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def xserver() -> Iterator[str]:
    """Xvfb, no panel: its display."""
    for exe in ("Xvfb", "trayer", "xdotool"):
        if shutil.which(exe) is None:
            pytest.skip(f"{exe} is not installed (scripts/setup installs it: apt-get install xvfb trayer xdotool)")
    r, w = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(w), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 20)
        number = os.read(r, 32).decode().strip() if ready else ""
        assert number, "Xvfb did not report its display number within 20 s"
        yield f":{number}"
    finally:
        os.close(r)
        _stop(xvfb)  # type: ignore[arg-type]


@pytest.fixture
def desktop(xserver: str) -> Iterator[str]:
    """Xvfb with trayer as the panel along the top edge."""
    trayer = _start_trayer(xserver)
    try:
        yield xserver
    finally:
        _stop(trayer)


class Screen:
    def __init__(self, display: str, tmp_path: Path) -> None:
        self.d = Xlib.display.Display(display)
        self.root = self.d.screen().root
        self.tmp = tmp_path

    def icon(self) -> tuple[int, int, int, int] | None:
        """(x, y, width, height) on screen of vcam's docked icon window, or None."""

        def walk(win: object, depth: int) -> object | None:
            for child in win.query_tree().children:  # type: ignore[attr-defined]
                if depth > 0 and child.get_wm_class() == ("vcamSystemTrayIcon", "vcam"):
                    return child
                found = walk(child, depth + 1)
                if found is not None:
                    return found
            return None

        try:  # windows come and go while the tree is read (a menu closing, trayer's own): poll again
            win = walk(self.root, 0)
            if win is None or win.get_attributes().map_state != Xlib.X.IsViewable:  # type: ignore[attr-defined]
                return None
            geo = win.get_geometry()  # type: ignore[attr-defined]
            pos = win.translate_coords(self.root, 0, 0)  # type: ignore[attr-defined]
        except (Xlib.error.BadWindow, Xlib.error.BadDrawable):
            return None
        return -pos.x, -pos.y, geo.width, geo.height

    def shot(self, name: str, box: tuple[int, int, int, int] | None = None) -> Image.Image:
        x, y, w, h = box or (0, 0, *SCREEN)
        raw = self.root.get_image(x, y, w, h, Xlib.X.ZPixmap, 0xFFFFFFFF).data
        img = Image.frombytes("RGB", (w, h), raw, "raw", "BGRX")
        img.save(self.tmp / name)
        if os.environ.get("VCAM_TEST_SCREENSHOTS"):
            out = Path(os.environ["VCAM_TEST_SCREENSHOTS"])
            out.mkdir(parents=True, exist_ok=True)
            img.save(out / name)
        return img

    def menu_shown(self) -> bool:
        for child in self.root.query_tree().children:
            cls = child.get_wm_class()
            if cls and cls[1] == "Menu" and child.get_attributes().map_state == Xlib.X.IsViewable:
                return True
        return False

    def close(self) -> None:
        self.d.close()


def _near(px: tuple[int, ...], color: tuple[int, int, int], tol: int = 3) -> bool:
    return max(abs(a - b) for a, b in zip(px[:3], color, strict=True)) <= tol


def _ctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vcam", "ctl", *args], capture_output=True, text=True, timeout=60)


def _start(display: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DISPLAY": display, "PYSTRAY_BACKEND": "xorg", "PYTHONFAULTHANDLER": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "vcam", "run", "--source", "testpattern", "--size", "160x90", "--fps", "10",
         "--output", "null", "--model-input", "64x36", "--threads", "1", "--mode", "blur"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _finish(daemon: subprocess.Popen[str]) -> str:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGINT)
    try:
        return daemon.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        daemon.send_signal(signal.SIGABRT)
        return daemon.communicate(timeout=30)[1]


def _check_icon(img: Image.Image, color: tuple[int, int, int], backdrop: tuple[int, int, int]) -> None:
    """The docked icon: a disc of ``color``, square (not stretched to the slot), whose
    transparent corners show the tray's ``backdrop`` (not black)."""
    w, h = img.size
    side = min(w, h)
    top, left = (h - side) // 2, (w - side) // 2
    assert _near(img.getpixel((left + side * 6 // 64 + 1, h // 2)), color), img.getpixel((left + 2, h // 2))
    assert _near(img.getpixel((left, top)), backdrop)  # a corner of the square
    assert _near(img.getpixel((w - 1 - left, h - 1 - top)), backdrop)
    if h > w:  # the strip above the square is the tray's, not a stretched disc's
        assert _near(img.getpixel((w // 2, top - 1)), backdrop)


@pytest.mark.parametrize("changes", [pytest.param(5, id="5"), pytest.param(50, id="50", marks=pytest.mark.slow)])
def test_icon_keeps_its_size_and_shape_across_changes(desktop: str, isolated_home: Path, tmp_path: Path, changes: int) -> None:
    screen = Screen(desktop, tmp_path)
    daemon = _start(desktop)
    try:
        box = wait_for(screen.icon, timeout=60, what="the icon to dock in trayer", proc=daemon)
        x, y, w, h = box
        backdrop = screen.shot("panel.png").getpixel((190, PANEL_H // 2))  # the panel, right of the icon
        assert isinstance(backdrop, tuple)
        assert not _near(backdrop, (0, 0, 0))

        def drawn(name: str, color: tuple[int, int, int]) -> bool:
            img = screen.shot(name, box)
            return _near(img.getpixel((img.size[0] // 2 - img.size[0] // 3, img.size[1] // 2)), color)

        wait_for(lambda: drawn("icon-00.png", MODE_COLORS["blur"]), what="the blur icon", proc=daemon)
        _check_icon(screen.shot("icon-00.png", box), MODE_COLORS["blur"], backdrop[:3])
        # each change with the colour the icon must then show
        steps = [
            (("mode", "off"), MODE_COLORS["off"]),
            (("mode", "color"), MODE_COLORS["color"]),
            (("pause",), PAUSED_COLOR),
            (("resume",), MODE_COLORS["color"]),
            (("mode", "blur"), MODE_COLORS["blur"]),
        ]
        for n in range(changes):
            args, color = steps[n % len(steps)]
            assert _ctl(*args).returncode == 0
            name = f"icon-{n + 1:02d}.png"
            wait_for(functools.partial(drawn, name, color), what=f"the icon after change {n + 1} ({' '.join(args)})", proc=daemon)
            assert screen.icon() == (x, y, w, h), f"change {n + 1} ({' '.join(args)})"
            _check_icon(screen.shot(f"icon-{n + 1:02d}.png", box), color, backdrop[:3])
    finally:
        err = _finish(daemon)
        screen.close()
    assert daemon.returncode == 130, err


def test_a_click_opens_a_menu_whose_entries_work(desktop: str, isolated_home: Path, tmp_path: Path) -> None:
    screen = Screen(desktop, tmp_path)
    xenv = {**os.environ, "DISPLAY": desktop}
    daemon = _start(desktop)
    try:
        x, y, w, h = wait_for(screen.icon, timeout=60, what="the icon to dock in trayer", proc=daemon)

        def open_menu(button: str) -> None:
            subprocess.run(["xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", button],
                           check=True, timeout=10, env=xenv)
            # mapped, then drawn: the menu's background (Tk's light grey) below the panel
            wait_for(lambda: screen.menu_shown() and _near(screen.shot(f"menu-{button}.png").getpixel(
                (x + 20, PANEL_H + 40)), (217, 217, 217), 12), what="the menu", proc=daemon)

        open_menu("3")  # right click
        # keyboard through the real menu: Blur, (Replace is disabled without a background), Colour, Off
        subprocess.run(["xdotool", "key", "Down", "Down", "Down", "Return"], check=True, timeout=10, env=xenv)
        wait_for(lambda: json.loads(_ctl("status").stdout)["mode"] == "off", what="mode off from the menu", proc=daemon)
        wait_for(lambda: not screen.menu_shown(), what="the menu to close", proc=daemon)
        open_menu("1")  # left click too
        subprocess.run(["xdotool", "key", "Up", "Return"], check=True, timeout=10, env=xenv)  # the last entry: Quit
        _out, err = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            print(_finish(daemon))  # shown when the test fails
        screen.close()
    assert daemon.returncode == 0, err
    assert "quit requested" in err


def test_the_icon_docks_into_a_tray_started_later_and_again_after_it_restarts(
        xserver: str, isolated_home: Path, tmp_path: Path) -> None:
    """A panel that starts after vcam (vcam at login), and one that restarts, get the icon:
    vcam asks the tray again until it has embedded the window (trayer drops the first
    request now and then: its first selection window goes away at once)."""
    screen = Screen(xserver, tmp_path)
    daemon = _start(xserver)
    trayer = None
    try:
        wait_for(lambda: _ctl("status").returncode == 0, timeout=60, what="the daemon", proc=daemon)
        assert screen.icon() is None  # no tray yet
        trayer = _start_trayer(xserver)
        box = wait_for(screen.icon, timeout=30, what="the icon to dock in the late tray", proc=daemon)
        _stop(trayer)
        wait_for(lambda: screen.icon() is None, timeout=10, what="the icon to go with the tray", proc=daemon)
        assert _ctl("mode", "color").returncode == 0  # a change while no tray is there
        trayer = _start_trayer(xserver)
        again = wait_for(screen.icon, timeout=30, what="the icon to dock in the restarted tray", proc=daemon)
        assert again[2:] == box[2:]
        backdrop = screen.shot("panel.png").getpixel((190, PANEL_H // 2))
        assert isinstance(backdrop, tuple)
        wait_for(lambda: _near(screen.shot("icon.png", again).getpixel((again[2] // 2 - again[2] // 3, again[3] // 2)),
                               MODE_COLORS["color"]), what="the colour icon", proc=daemon)
        _check_icon(screen.shot("icon.png", again), MODE_COLORS["color"], backdrop[:3])
    finally:
        err = _finish(daemon)
        _stop(trayer)
        screen.close()
    assert daemon.returncode == 130, err
    assert "Traceback" not in err and "ERROR" not in err, err
