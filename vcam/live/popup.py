"""A real pop-up menu for system trays whose pystray backend has none (plain X11, ``xorg``).

pystray's xorg backend draws an icon and reports clicks, nothing more, so vcam shows the
tray menu itself. Tk is the toolkit: it comes with Python (``tkinter``; on Debian/Ubuntu the
``python3-tk`` package, included in python.org and pyenv builds), it speaks X11 directly, so
it works on the bare tray hosts (stalonetray, trayer, tint2, i3bar) where GTK and a session
bus may be missing, and ``Menu.tk_popup`` gives a native-looking menu with radio and check
items, submenus and keyboard navigation. GTK through PyGObject is not an option there:
when PyGObject is installed pystray already uses its GTK or AppIndicator backend, which
have menus of their own.

Tk keeps its state on the thread that created it, so :class:`PopupMenu` runs one Tk
interpreter on its own thread (``vcam-tray-menu``) and every Tk call happens there; other
threads only put requests (open at x, y; stop) on a queue. The menu is built from the same
:class:`~vcam.live.tray.Entry` list as the pystray menu each time it opens, so a new entry
appears on every backend at once.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["PopupMenu", "fill_tk_menu"]

log = logging.getLogger(__name__)

_POLL_MS = 50
_START_S = 5.0


def fill_tk_menu(menu: Any, entries: Sequence[Any], tk: Any) -> list[Any]:
    """Add ``entries`` (:class:`~vcam.live.tray.Entry`) to the Tk ``menu``; returns the
    variables that back radio and check items (keep them alive while the menu is shown).
    ``tk`` is the ``tkinter`` module."""
    keep: list[Any] = []
    radio_group = tk.StringVar(menu, value="")
    keep.append(radio_group)
    for n, e in enumerate(entries):
        if not e.visible:
            continue
        state = "normal" if e.enabled else "disabled"
        command = e.action or (lambda: None)
        if e.kind == "separator":
            menu.add_separator()
        elif e.kind == "submenu":
            sub = tk.Menu(menu, tearoff=False)
            keep += fill_tk_menu(sub, e.children, tk)
            menu.add_cascade(label=e.label, menu=sub, state=state)
        elif e.kind == "radio":
            value = f"{n}:{e.label}"
            if e.checked:
                radio_group.set(value)
            menu.add_radiobutton(label=e.label, variable=radio_group, value=value, command=command, state=state)
        elif e.kind == "check":
            var = tk.BooleanVar(menu, value=bool(e.checked))
            keep.append(var)
            menu.add_checkbutton(label=e.label, variable=var, command=command, state=state)
        elif e.kind == "label":
            menu.add_command(label=e.label, state="disabled")
        else:
            menu.add_command(label=e.label, command=command, state=state)
    return keep


class PopupMenu:
    """Opens the menu ``entries()`` at a screen position, from any thread (:meth:`open`).

    Raises :class:`RuntimeError` when Tk is missing or cannot reach the display (the caller
    then keeps the click-to-toggle fall-back)."""

    def __init__(self, entries: Callable[[], Sequence[Any]], *, class_name: str = "vcam") -> None:
        try:
            import tkinter
        except ImportError as exc:
            raise RuntimeError("tkinter is not installed (Debian/Ubuntu: apt install python3-tk)") from exc
        self._tk = tkinter
        self._entries = entries
        self._class = class_name
        self._requests: queue.Queue[tuple[int, int] | None] = queue.Queue()
        self._started = threading.Event()
        self._error: str | None = None
        self.opened = 0  # menus shown (for tests and the log)
        self._thread = threading.Thread(target=self._loop, name="vcam-tray-menu", daemon=True)
        self._thread.start()
        if not self._started.wait(_START_S):
            raise RuntimeError("the Tk menu did not start")
        if self._error is not None:
            raise RuntimeError(self._error)

    def open(self, x: int, y: int) -> None:
        """Show the menu with its top-left corner at screen position (``x``, ``y``)."""
        self._requests.put((x, y))

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(2.0)

    # -- the Tk thread ----------------------------------------------------------------------

    def _loop(self) -> None:
        tk = self._tk
        # Every Tk object lives in ``held`` only, so all are freed on this thread at the end.
        held: dict[str, Any] = {}
        try:
            held["root"] = tk.Tk(className=self._class)
        except tk.TclError as exc:
            self._error = f"Tk cannot open the display ({exc})"
            self._started.set()
            return
        held["root"].withdraw()
        self._started.set()

        def poll() -> None:
            root = held["root"]
            try:
                while True:
                    req = self._requests.get_nowait()
                    if req is None:
                        root.destroy()
                        return
                    old = held.pop("menu", None)
                    if old is not None:
                        old.unpost()
                        old.destroy()
                    menu = tk.Menu(root, tearoff=False)
                    held["vars"] = fill_tk_menu(menu, list(self._entries()), tk)
                    held["menu"] = menu
                    self.opened += 1
                    log.debug("tray menu opened at %d, %d", *req)
                    menu.tk_popup(*req)  # grabs the pointer: a click elsewhere closes it
            except queue.Empty:
                pass
            except Exception as exc:  # noqa: BLE001 - a menu that fails must not end the tray
                log.error("tray menu: %s: %s", type(exc).__name__, exc)
            root.after(_POLL_MS, poll)

        held["root"].after(_POLL_MS, poll)
        try:
            held["root"].mainloop()
        except Exception as exc:  # noqa: BLE001
            log.error("tray menu stopped: %s: %s", type(exc).__name__, exc)
        finally:
            # Tcl aborts the process when its objects are freed on another thread (at exit):
            # free them here, the widgets' parent/child cycles included.
            held.clear()
            gc.collect()
