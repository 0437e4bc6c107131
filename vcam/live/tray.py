"""The tray icon: a thin pystray view on the :class:`~vcam.live.control.Controller`.

The menu is plain data (:class:`Entry` trees built by :meth:`TrayView.entries` from the
controller's state), so it is tested without a display; :func:`to_pystray` turns it into a
``pystray.Menu`` that is rebuilt whenever pystray asks. The icon's colour and letter show
the mode (orange with a pause sign while paused) and the tooltip shows mode, FPS and the
ONNX Runtime provider.

Backends differ (pystray): AppIndicator and GTK show the full menu; the plain X11 (xorg)
backend has none, so there a click opens the same entries as a Tk pop-up menu
(:mod:`vcam.live.popup`); only without Tk does a click run the default action, which
switches between the effect and ``off``. When no backend can start, :func:`run_tray` says so once and returns
False, and the daemon runs headless.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from PIL import Image, ImageDraw, ImageFont

from vcam.backoff import Backoff
from vcam.compositing.backgrounds import VIDEO_SUFFIXES
from vcam.config import MODES, default_config_path
from vcam.errors import VcamError
from vcam.live.control import Controller, run_command
from vcam.live.tray_xorg import fit_icon, xorg_icon

__all__ = [
    "IMAGE_SUFFIXES",
    "MODE_COLORS",
    "MODE_LABELS",
    "PAUSED_COLOR",
    "Entry",
    "TrayView",
    "fit_icon",
    "icon_image",
    "list_backgrounds",
    "probe_tray",
    "run_tray",
    "to_pystray",
]

log = logging.getLogger(__name__)

MODE_LABELS: Mapping[str, str] = {"blur": "Blur", "replace": "Replace", "color": "Colour", "off": "Off"}
MODE_COLORS: Mapping[str, tuple[int, int, int]] = {
    "blur": (41, 121, 255),
    "replace": (156, 39, 176),
    "color": (0, 177, 64),
    "off": (117, 117, 117),
}
PAUSED_COLOR = (245, 124, 0)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
MAX_BACKGROUNDS = 40
REFRESH_S = 1.0
_TICK_S = 0.1
CONFIG_TEMPLATE = (
    "# vcam configuration: every key is described in configs/default.yaml and docs/desktop.md.\n"
    "# Saved changes apply while vcam runs (effect at once; camera and model are reopened).\n"
)
_DIALOGS = (
    ("zenity", lambda start: ["zenity", "--file-selection", "--title=vcam: choose a background",
                              f"--filename={start}/", "--file-filter=Images and videos | " + _patterns()]),
    ("kdialog", lambda start: ["kdialog", "--title", "vcam: choose a background", "--getopenfilename",
                               str(start), f"Images and videos ({_patterns()})"]),
)

Kind = Literal["action", "radio", "check", "submenu", "separator", "label"]


def _patterns() -> str:
    return " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))


@dataclass(frozen=True)
class Entry:
    """One menu entry as data.

    ``kind``: ``action`` (runs ``action``), ``radio``/``check`` (``checked`` is its state),
    ``submenu`` (``children``), ``separator`` or ``label`` (text only). ``default`` marks the
    action a click on the icon runs where the backend has no menu; ``visible=False`` keeps it
    out of the menu.
    """

    label: str
    kind: Kind = "action"
    action: Callable[[], None] | None = None
    checked: bool | None = None
    enabled: bool = True
    default: bool = False
    visible: bool = True
    children: tuple[Entry, ...] = field(default_factory=tuple)

    def find(self, label: str) -> Entry:
        """The child entry labelled ``label`` (for tests and lookups)."""
        return find_entry(self.children, label)


SEPARATOR = Entry("", "separator")


def find_entry(entries: Iterable[Entry], label: str) -> Entry:
    for e in entries:
        if e.label == label:
            return e
    raise KeyError(label)


def list_backgrounds(folder: Path | None, limit: int = MAX_BACKGROUNDS) -> list[Path]:
    """Images and videos directly in ``folder``, sorted by name (at most ``limit``)."""
    if folder is None:
        return []
    try:
        files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES and p.is_file()]
    except OSError:
        return []
    return sorted(files, key=lambda p: p.name.lower())[:limit]


def icon_image(mode: str, paused: bool = False, size: int = 64) -> Image.Image:
    """The tray picture: a disc in the mode's colour with its initial (a pause sign when paused)."""
    color = PAUSED_COLOR if paused else MODE_COLORS.get(mode, MODE_COLORS["off"])
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.ellipse((1, 1, size - 2, size - 2), fill=(*color, 255))
    white = (255, 255, 255, 255)
    if paused:
        w, h = size // 8, size * 3 // 8
        for x in (size // 2 - 2 * w, size // 2 + w):
            d.rectangle((x, size // 2 - h // 2, x + w - 1, size // 2 + h // 2), fill=white)
        return img
    letter = MODE_LABELS.get(mode, "?")[0]
    try:
        font: Any = ImageFont.load_default(size=size * 9 // 16)
    except TypeError:  # Pillow without FreeType sizes
        font = ImageFont.load_default()
    d.text((size / 2, size / 2), letter, fill=white, font=font, anchor="mm")
    return img


class TrayView:
    """What the tray shows and does, computed from the controller.

    ``which`` finds helper programs (``xdg-open``, ``zenity``, ``kdialog``); ``spawn`` starts
    one without waiting; ``ask`` runs a file dialog and returns its output (None when
    cancelled); ``config_path`` is the file "Open config" opens (created with a comment
    header when missing). Actions never raise: a :class:`VcamError` is logged and shown as a
    notification through ``notify``; ``on_changed()`` is called after every action.
    """

    def __init__(
        self,
        controller: Controller,
        *,
        config_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        which: Callable[[str], str | None] = shutil.which,
        spawn: Callable[[list[str]], object] | None = None,
        ask: Callable[[list[str]], str | None] | None = None,
        notify: Callable[[str], None] | None = None,
        start_thread: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.controller = controller
        self.env = os.environ if env is None else env
        self.config_path = config_path or controller.config_path or default_config_path(self.env)
        self._which = which
        self._spawn = spawn or _spawn
        self._ask = ask or _ask
        self.notify = notify or (lambda message: None)
        self.on_changed: Callable[[], None] = lambda: None
        self._start_thread = start_thread or _start_dialog_thread

    # -- what is shown ----------------------------------------------------------------------

    def backgrounds_dir(self) -> Path:
        configured = self.controller.effect.backgrounds_dir
        if configured:
            return Path(configured).expanduser()
        return default_config_path(self.env).parent / "backgrounds"

    def dialog(self) -> tuple[str, Callable[[Path], list[str]]] | None:
        """The file dialog program to use, or None when none is installed."""
        for name, argv in _DIALOGS:
            if self._which(name):
                return name, argv
        return None

    def summary(self, st: Mapping[str, Any] | None = None) -> str:
        """One line: mode, FPS, provider (and pause or config trouble), from status ``st``."""
        st = st or self.controller.status()
        parts = [MODE_LABELS.get(st["mode"], st["mode"]), f"{st['fps']:.0f} fps", str(st["provider"])]
        if st["paused"]:
            parts.append("paused")
        elif str(st["camera"]).startswith("released"):
            parts.append("camera released")
        if st["config_error"]:
            parts.append("config error")
        return " · ".join(parts)

    def title(self, st: Mapping[str, Any] | None = None) -> str:
        """The tooltip text."""
        return f"vcam: {self.summary(st)}"

    @staticmethod
    def icon_key(st: Mapping[str, Any]) -> tuple[str, bool]:
        """What the icon picture shows."""
        return st["mode"], bool(st["paused"])

    @staticmethod
    def menu_key(st: Mapping[str, Any]) -> tuple[object, ...]:
        """Changes when the menu must be rebuilt."""
        return (st["mode"], st["background"], st["mirror"], st["paused"], st["config_error"], st["camera"],
                st.get("framing"), st.get("light"))

    def entries(self) -> list[Entry]:
        """The menu, top to bottom, for the controller's current state."""
        c = self.controller
        eff = c.effect
        st = c.status()
        modes = tuple(
            Entry(
                MODE_LABELS[m],
                "radio",
                self._do(functools.partial(run_command, c, "mode", m)),
                checked=eff.mode == m,
                enabled=m != "replace" or bool(eff.background),
            )
            for m in MODES
        )
        items: list[Entry] = [
            Entry(self.summary(st), "label", enabled=False),
            SEPARATOR,
            *modes,
            Entry("Backgrounds", "submenu", children=tuple(self._background_entries(eff.background))),
            SEPARATOR,
            Entry("Mirror", "check", self._do(lambda: run_command(c, "mirror", not c.effect.mirror)), checked=eff.mirror),
            Entry("Auto-framing", "check", self._do(lambda: run_command(c, "framing", _flip(c.effect.framing))),
                  checked=eff.framing == "auto"),
            Entry("Low-light correction", "check", self._do(lambda: run_command(c, "light", _flip(c.effect.light))),
                  checked=eff.light == "auto"),
            Entry("Resume" if st["paused"] else "Pause",
                  action=self._do(lambda: run_command(c, "resume" if c.status()["paused"] else "pause"))),
            SEPARATOR,
            Entry("Open config", action=self._do(self.open_config), enabled=self._which("xdg-open") is not None),
            Entry("Reload config", action=self._do(functools.partial(run_command, c, "reload"))),
            SEPARATOR,
            Entry("Quit", action=self._do(functools.partial(run_command, c, "quit"))),
            # Where the backend has no menu (plain X11), a click on the icon runs this.
            Entry("Effect on/off", action=self._do(c.toggle_effect), default=True, visible=False),
        ]
        return items

    def _background_entries(self, current: str | None) -> list[Entry]:
        c = self.controller
        folder = self.backgrounds_dir()
        files = list_backgrounds(folder)
        out = [
            Entry(
                p.name,
                "radio",
                self._do(functools.partial(c.set_background, p)),
                checked=current is not None and Path(current) == p,
            )
            for p in files
        ]
        if not files:
            out.append(Entry(f"(no images or videos in {folder})", "label", enabled=False))
        if self.dialog() is not None:
            out += [SEPARATOR, Entry("Choose…", action=self.choose_background)]
        return out

    # -- actions ----------------------------------------------------------------------------

    def _do(self, action: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                action()
            except VcamError as exc:
                log.error("%s", exc)
                self.notify(str(exc))
            finally:
                self.on_changed()

        return run

    def open_config(self) -> None:
        """Open the config file in the desktop's editor (creating it with a header if missing)."""
        path = self.config_path
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(CONFIG_TEMPLATE, encoding="utf-8")
            except OSError as exc:
                raise VcamError(f"config {path}: cannot create it ({exc.strerror})") from exc
        opener = self._which("xdg-open")
        if opener is None:
            raise VcamError(f"cannot open {path}: xdg-open is not installed")
        self._spawn([opener, str(path)])

    def choose_background(self) -> None:
        """Ask for a file with the desktop's file dialog (in a thread) and use it."""
        dialog = self.dialog()
        if dialog is None:
            return
        _, argv = dialog
        cmd = argv(self.backgrounds_dir())

        def body() -> None:
            chosen = self._ask(cmd)
            if chosen:
                self._do(lambda: self.controller.set_background(chosen))()

        self._start_thread(body)


def _flip(switch: str) -> str:
    """The other value of an ``auto | off`` effect (the tray's check entries)."""
    return "off" if switch == "auto" else "auto"


def _spawn(cmd: list[str]) -> object:
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def _ask(cmd: list[str]) -> str | None:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        log.error("file dialog %s failed: %s", cmd[0], exc)
        return None
    path = res.stdout.strip()
    return path if res.returncode == 0 and path else None


def _start_dialog_thread(body: Callable[[], None]) -> None:
    threading.Thread(target=body, name="vcam-tray-dialog", daemon=True).start()


# -- pystray ------------------------------------------------------------------------------


def to_pystray(entries: Callable[[], list[Entry]], pystray: Any) -> Any:
    """A ``pystray.Menu`` that rebuilds itself from ``entries()`` whenever pystray reads it.

    ``pystray`` is the module (or anything with its ``Menu`` and ``MenuItem``).
    """

    def convert(e: Entry) -> Any:
        if e.kind == "separator":
            return pystray.Menu.SEPARATOR
        if e.kind == "submenu":
            return pystray.MenuItem(e.label, pystray.Menu(*[convert(c) for c in e.children]), visible=e.visible)
        return pystray.MenuItem(
            e.label,
            _clicked(e.action) if e.action is not None else None,
            checked=_constant(bool(e.checked)) if e.kind in ("radio", "check") else None,
            radio=e.kind == "radio",
            default=e.default,
            visible=e.visible,
            enabled=e.enabled,
        )

    return pystray.Menu(lambda: tuple(convert(e) for e in entries()))


def _clicked(action: Callable[[], None]) -> Callable[[Any, Any], None]:
    # pystray inspects the argument count: (icon, item) exactly
    def on_click(icon: Any, item: Any) -> None:
        action()

    return on_click


def _constant(value: bool) -> Callable[[Any], bool]:
    def checked(item: Any) -> bool:
        return value

    return checked


class _OneLine(logging.Filter):
    """pystray logs some failures with a traceback; vcam shows them as one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"tray: {record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = None
            record.exc_info, record.exc_text = None, None
        return True


def probe_tray(env: Mapping[str, str] | None = None) -> tuple[ModuleType | None, str]:
    """Import pystray and check that its backend can show an icon here.

    Returns (the pystray module, backend name) or (None, why not).
    """
    env = os.environ if env is None else env
    if sys.platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return None, "no graphical session (DISPLAY and WAYLAND_DISPLAY are not set)"
    try:
        import pystray
    except Exception as exc:  # noqa: BLE001 - pystray raises what its backends raise (Xlib, gi, ...)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"no tray backend could start ({detail})"
    backend = pystray.Icon.__module__.rsplit(".", 1)[-1].lstrip("_")
    if backend == "dummy":
        return None, "pystray has no tray backend for this desktop"
    if backend == "xorg":
        why = _xorg_tray_missing()
        if why:
            return None, why
    return pystray, backend


_NO_TRAY_OWNER = "no system tray on this X display"
_NO_X = "cannot connect to the X display"
_MAY_APPEAR = (_NO_TRAY_OWNER, _NO_X)  # reasons that change when the panel or X server starts


def _xorg_tray_missing() -> str | None:
    """Why an X11 system-tray icon cannot dock here (no tray owner), or None."""
    try:
        import Xlib.display
        import Xlib.X

        display = Xlib.display.Display()
    except Exception as exc:  # noqa: BLE001 - Xlib's connection errors have no common base
        return f"{_NO_X} ({exc})"
    try:
        name = f"_NET_SYSTEM_TRAY_S{display.get_default_screen()}"
        owner = display.get_selection_owner(display.intern_atom(name))
        if owner == Xlib.X.NONE:
            return (
                f"{_NO_TRAY_OWNER} (nothing owns {name}); on GNOME install the "
                "AppIndicator extension and PyGObject (see docs/desktop.md)"
            )
        return None
    finally:
        display.close()


def run_tray(
    controller: Controller,
    stop: threading.Event,
    *,
    view: TrayView | None = None,
    env: Mapping[str, str] | None = None,
    probe: Callable[[Mapping[str, str] | None], tuple[ModuleType | None, str]] = probe_tray,
    retry_s: tuple[float, float] = (1.0, 30.0),
) -> bool:
    """Show the tray icon and run its event loop on this (the main) thread until ``stop``.

    Returns False at once, after one log line, when no tray backend can start here; True
    after the icon's loop ended (``stop`` was set, or the backend failed, which is logged).
    When the X display has no system tray yet (or cannot be reached yet), that is said once
    and the probe is repeated (``retry_s``: first and longest wait, doubling) until one
    appears or ``stop`` is set (then False).
    """
    pystray, backend = probe(env)
    if pystray is None and backend.startswith(_MAY_APPEAR):
        # Under systemd vcam may start before the panel: look again, waiting longer each time.
        log.warning("no tray icon: %s; running headless until a system tray appears (--no-tray hides this message)", backend)
        wait = Backoff(*retry_s)
        while pystray is None and not stop.wait(wait.delay):
            pystray, backend = probe(env)
            if pystray is None:
                log.debug("still no tray icon (%s); next look in %g s", backend, wait.retry_failed(0.0))
        if pystray is None:
            return False
    elif pystray is None:
        log.warning("no tray icon: %s; running headless (--no-tray hides this message)", backend)
        return False
    logging.getLogger("pystray").addFilter(_OneLine())
    for name in ("pystray._base", "pystray._xorg", "pystray._gtk", "pystray._appindicator"):
        logging.getLogger(name).addFilter(_OneLine())
    view = view or TrayView(controller, env=env)
    st = controller.status()
    mode, paused = view.icon_key(st)
    popup = _popup_menu(view) if backend == "xorg" else None
    icon_class = xorg_icon(pystray.Icon, popup) if backend == "xorg" else pystray.Icon
    try:
        icon = icon_class("vcam", icon=icon_image(mode, paused), title=view.title(st), menu=to_pystray(view.entries, pystray))
    except Exception as exc:  # noqa: BLE001 - the backend failed to start (display gone, D-Bus error, ...)
        log.warning("no tray icon: the %s backend failed (%s); running headless", backend, exc)
        return False
    ready, ended = threading.Event(), threading.Event()

    def notify(message: str) -> None:
        if getattr(icon, "HAS_NOTIFICATION", False) and ready.is_set() and not ended.is_set():
            with contextlib.suppress(Exception):  # a notification is a courtesy; never fail for it
                icon.notify(message, "vcam")

    view.notify = notify
    controller.add_listener(notify)
    # Only the keeper thread touches the icon after start: backends such as xorg run each
    # update on their loop and wait for it, so updating from a menu callback (which runs on
    # that loop) while another thread waits would deadlock. Callbacks just wake the keeper.
    state = {"icon": (mode, paused), "title": view.title(st), "menu": view.menu_key(st)}
    wake = threading.Event()

    def refresh() -> None:
        now = controller.status()
        key = view.icon_key(now)
        if key != state["icon"]:
            state["icon"] = key
            icon.icon = icon_image(*key)
        title = view.title(now)
        if title != state["title"]:
            state["title"] = title
            icon.title = title
        mkey = view.menu_key(now)
        if mkey != state["menu"]:
            state["menu"] = mkey
            icon.update_menu()

    def keeper() -> None:
        while not ready.wait(0.1):
            if ended.is_set():
                return
        due = 0.0
        while not stop.is_set() and not ended.is_set():
            if wake.wait(_TICK_S) or time.monotonic() >= due:
                wake.clear()
                refresh()
                due = time.monotonic() + REFRESH_S
        if not ended.is_set():
            icon.stop()

    def setup(icon: Any) -> None:
        icon.visible = True
        ready.set()
        log.info("tray icon shown (pystray %s backend)", backend)

    view.on_changed = wake.set  # show a menu action's effect now
    t = threading.Thread(target=keeper, name="vcam-tray", daemon=True)
    t.start()
    try:
        icon.run(setup)
    except Exception as exc:  # noqa: BLE001 - the backend's loop failed: the daemon goes on headless
        log.warning("tray icon stopped (%s); running headless", exc)
    finally:
        ended.set()
    t.join(REFRESH_S + 1.0)
    if popup is not None:
        popup.close()
    return True


def _popup_menu(view: TrayView) -> Any:
    """The Tk pop-up menu for the xorg backend, or None (then a click toggles the effect)."""
    from vcam.live.popup import PopupMenu

    try:
        return PopupMenu(view.entries)
    except RuntimeError as exc:
        log.warning("tray menu: %s; a click on the icon switches between the effect and Off (use vcam ctl for the rest)", exc)
        return None
