"""pystray's plain X11 (xorg) backend, made whole: a square, transparent icon that keeps its
size, clicks delivered, a menu on click (see :func:`xorg_icon`)."""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from PIL import Image

__all__ = ["fit_icon", "xorg_icon"]

log = logging.getLogger(__name__)


def fit_icon(icon: Image.Image, size: tuple[int, int], backdrop: Image.Image | None = None) -> Image.Image:
    """``icon`` (RGBA) as an RGB picture of ``size`` for a window without transparency: scaled
    to a square of the smaller side (never stretched), centred, and blended by its alpha over
    ``backdrop`` (what lies behind the window: the tray's own background; black if None)."""
    w, h = size
    out = backdrop.convert("RGB").resize(size) if backdrop is not None else Image.new("RGB", size)
    side = max(1, min(w, h))
    square = icon.convert("RGBA").resize((side, side), Image.Resampling.LANCZOS)
    out.paste(square, ((w - side) // 2, (h - side) // 2), square)
    return out


def xorg_icon(base: Any, popup: Any = None) -> Any:
    """pystray's xorg icon class with fixes (pystray 0.19.5, python-xlib 0.33).

    * pystray creates the X11 icon window without ``ButtonPressMask``, so X never delivers
      the click that should run the default action (pystray issue #151): select it.
    * A click (left or right; on the button's release) opens ``popup`` (a :class:`~vcam.live.popup.PopupMenu`) at
      the pointer: the xorg backend has no menu of its own. Without one a click runs the
      default action.
    * Every icon change asked the tray to dock the window again; trays such as trayer and
      stalonetray then re-embed it and may size it anew (seen: 1 px wide, flipping between
      1 and 24 px). A docked icon is only redrawn.
    * The picture was stretched to the window (an ellipse in a 24x30 slot) and pasted onto
      black without its alpha (black corners): it is now drawn square, centred, blended
      over the tray's background (the window's background is its parent's, ParentRelative),
      read back for each size and parent (before docking it is the root's).
    * Updates from other threads are run on the event loop, but pystray asked for them, and
      flushed, on the icon's own connection from the calling thread while the loop read from
      it or waited for a reply; python-xlib is not safe for that: requests were left unsent
      (a hang at quit: the window's destroy request never sent) and the loop waited for a
      reply for good (get_selection_owner or get_image while another thread flushed: the
      icon never shown, about 1 start in 10 under trayer). Other threads now ask over a
      connection of their own (:meth:`_poke`), so only the loop uses the icon's connection.
    * pystray asks the tray to dock the window once, when shown. A tray that owns its
      selection but is not yet listening drops that request (seen with trayer started a
      moment before vcam: about 1 start in 10 never docked), and a tray started after vcam,
      or restarted, is never asked. Until the tray has embedded the window (ReparentNotify
      into a window other than the root) vcam asks again, after 1, 2, 4 and then every 8 s.
    """
    if not hasattr(base, "_create_window"):
        return base

    import Xlib.display
    import Xlib.error
    import Xlib.X

    class XorgIcon(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)  # calls _rewrite_implementation below
            self._message_handlers[Xlib.X.ButtonRelease] = self._on_button_release
            self._message_handlers[Xlib.X.ReparentNotify] = self._on_reparent
            self._systray_manager: Any = self._systray_manager  # (typed: pystray's own, set in its __init__)
            self._icon_data: Any = self._icon_data
            self._embedded = False
            self._parent = 0  # the window's parent once reparented (the tray's)
            self._icon_key: tuple[int, int, int] | None = None  # what self._icon_data was drawn for
            self._unwatch = threading.Event()
            self._watcher: threading.Thread | None = None

        # -- calls from other threads: run in the event loop, asked over a connection of their own

        def _rewrite_implementation(self, *methods: Callable[[], None]) -> None:
            """pystray's, made safe for threads (the class notes): ``_show``, ``_hide``,
            ``_update_icon``, ``_update_title`` and ``_stop`` called from another thread are
            handed to the event loop by a client message sent over a second connection
            (:meth:`_poke`), each with its own answer; only the loop uses the icon's own
            connection, and it flushes after each call."""
            self._calls: dict[int, tuple[Callable[[], None], queue.Queue[Any]]] = {}
            self._call_ids = itertools.count(1)
            self._call_atom = self._display.intern_atom("_VCAM_CALL")
            self._redock_atom = self._display.intern_atom("_VCAM_REDOCK")
            self._poke_lock = threading.Lock()
            self._poke_display: Any = None
            self._loop_over = False
            for method in methods:
                setattr(self, method.__name__, self._in_loop(method))
            self._message_handlers[Xlib.X.ClientMessage] = self._on_client_message

        def _in_loop(self, method: Callable[[], None]) -> Callable[[], None]:
            def call() -> None:
                loop = getattr(self, "_thread", None)
                if loop is not None and threading.current_thread().ident == loop.ident:
                    method()
                    return
                answer: queue.Queue[Any] = queue.Queue(1)
                key = next(self._call_ids)
                self._calls[key] = (method, answer)
                # checked after registering: a loop ending now either sees this call (and
                # answers it on its way out) or has set _loop_over already
                if self._loop_over:  # the icon is gone: nothing to show, hide or stop
                    self._calls.pop(key, None)
                    return
                self._poke(self._call_atom, key)
                result = answer.get()
                if result is not True:
                    raise result

            call.__name__ = method.__name__
            return call

        def _poke(self, atom: int, value: int = 0) -> None:
            """A client message to the icon's window, from the calling thread's side; nothing
            once the event loop has ended (its finish closes this connection, under the same lock)."""
            with self._poke_lock:
                if self._loop_over:
                    return
                if self._poke_display is None:
                    self._poke_display = Xlib.display.Display(self._display.get_display_name())
                window = self._poke_display.create_resource_object("window", self._window.id)
                message = Xlib.display.event.ClientMessage(
                    type=Xlib.X.ClientMessage, client_type=atom, window=self._window.id,
                    data=(32, (Xlib.X.CurrentTime, value, 0, 0, 0)),
                )
                window.send_event(message, event_mask=Xlib.X.NoEventMask)  # to the window's own client
                self._poke_display.flush()

        def _on_client_message(self, event: Any) -> None:
            if event.client_type == self._call_atom:
                method, answer = self._calls.pop(event.data[1][1], (None, None))
                if method is None or answer is None:
                    return
                try:
                    method()
                    answer.put(True)
                except Exception as exc:  # noqa: BLE001 - re-raised in the calling thread
                    answer.put(exc)
                with contextlib.suppress(Exception):  # the window may be gone (after _stop)
                    self._display.flush()
            elif event.client_type == self._redock_atom:
                self._redock()

        def _mainloop(self) -> None:
            try:
                super()._mainloop()
            finally:
                self._loop_over = True
                self._unwatch.set()
                for _method, answer in list(self._calls.values()):  # callers waiting: the loop is gone
                    answer.put(True)
                self._calls.clear()
                # under the lock: a thread in _poke finishes its flush first (closing the
                # connection under it left python-xlib's buffer None: a TypeError traceback
                # from vcam-tray when the tray went away while the icon was being stopped)
                with self._poke_lock:
                    if self._poke_display is not None:
                        with contextlib.suppress(Exception):
                            self._poke_display.close()
                        self._poke_display = None

        def _create_window(self) -> Any:
            window = super()._create_window()
            window.change_attributes(
                event_mask=(
                    Xlib.X.ExposureMask | Xlib.X.StructureNotifyMask | Xlib.X.ButtonPressMask | Xlib.X.ButtonReleaseMask
                ),
                background_pixmap=Xlib.X.ParentRelative,
            )
            return window

        def _show(self) -> None:  # in the event loop (pystray's dispatcher sends it there)
            super()._show()
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch_docking, name="vcam-tray-dock", daemon=True)
                self._watcher.start()

        def _on_reparent(self, event: Any) -> None:
            if event.window.id == self._window.id:
                self._parent = event.parent.id
                self._embedded = event.parent.id != self._display.screen().root.id

        def _watch_docking(self) -> None:
            """Ask the tray again while the window is not embedded (the class notes)."""
            delay = 1.0
            while not self._unwatch.wait(delay):
                if self._embedded:
                    delay = 1.0
                    continue
                with contextlib.suppress(Exception):  # the display may be closing
                    self._poke(self._redock_atom)
                delay = min(2 * delay, 8.0)

        def _redock(self) -> None:
            """In the event loop: the dock request again, to whichever tray owns the selection now."""
            if self._embedded or not self.visible:
                return
            log.debug("tray icon not embedded yet: asking the tray to dock it again")
            with contextlib.suppress(Exception):  # no tray yet: the next round asks again
                self._dock_window()

        def _on_destroy_notify(self, event: Any) -> None:
            # pystray looks for a new tray at once and logs an error when none is there yet
            # (a panel restarting); the watcher asks the next one instead
            if self._systray_manager is not None and event.window.id == self._systray_manager.id:
                self._systray_manager, self._embedded = None, False
                log.info("the system tray went away: the icon docks again when a tray is back")

        def _on_button_press(self, event: Any) -> None:
            if popup is None:
                super()._on_button_press(event)

        def _on_button_release(self, event: Any) -> None:
            # On release, not press: until then X grabs the pointer for this window, and the
            # menu's own grab (which closes it on a click elsewhere) would fail.
            if popup is not None and event.detail in (1, 3):
                popup.open(event.root_x, event.root_y)

        def _update_icon(self) -> None:
            if not self._systray_manager:  # not docked yet: dock, then draw
                with contextlib.suppress(Exception):
                    self._dock_window()
                if not self._systray_manager:  # no tray at the moment (pystray logged an error
                    return  # here): every draw once docked shows the icon of then
            self._icon_data = None
            self._draw()
            self._icon_valid = True

        def _draw(self) -> None:
            """pystray's draw, with the picture kept for its size and parent (the class notes)."""
            try:
                dim = self._window.get_geometry()
                key = (dim.width, dim.height, self._parent)
                if self._icon_data is None or self._icon_key != key:
                    data: Any = fit_icon(self._icon, (dim.width, dim.height), self._backdrop(dim.width, dim.height))
                    data.tostring = data.tobytes  # what python-xlib's put_pil_image calls
                    self._icon_data, self._icon_key = data, key
                self._window.put_pil_image(self._gc, 0, 0, self._icon_data)
            except (Xlib.error.BadDrawable, Xlib.error.BadWindow):
                pass  # the window is gone

        def _backdrop(self, width: int, height: int) -> Image.Image | None:
            """The tray's pixels behind the icon: the window cleared to its parent's background."""
            try:
                self._window.clear_area(0, 0, width, height)
                raw = self._window.get_image(0, 0, width, height, Xlib.X.ZPixmap, 0xFFFFFFFF).data
                return Image.frombytes("RGB", (width, height), raw, "raw", "BGRX")
            except Exception:  # noqa: BLE001 - not viewable yet, or an unusual visual: black
                return None

    return XorgIcon
