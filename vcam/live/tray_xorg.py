"""pystray's plain X11 (xorg) backend, made whole: a square, transparent icon that keeps its
size, clicks delivered, a menu on click (see :func:`xorg_icon`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from PIL import Image

__all__ = ["fit_icon", "xorg_icon"]


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
      over the tray's background (the window's background is its parent's, ParentRelative).
    * Updates from other threads are run on the event loop; when that loop flushes while the
      calling thread is still flushing its own request, python-xlib can leave the loop's
      requests unsent, and the loop then waits for an event that never comes (seen as a
      hang at quit: the window's destroy request was never sent). Flush once more after
      each such call.
    """
    if not hasattr(base, "_create_window"):
        return base

    import Xlib.X

    class XorgIcon(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            for name in ("_show", "_hide", "_update_icon", "_update_title", "_stop"):
                setattr(self, name, self._flushing(getattr(self, name)))
            self._message_handlers[Xlib.X.ButtonRelease] = self._on_button_release

        def _flushing(self, call: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                call()
                with contextlib.suppress(Exception):  # the connection may be closing
                    self._display.flush()

            return run

        def _create_window(self) -> Any:
            window = super()._create_window()
            window.change_attributes(
                event_mask=(
                    Xlib.X.ExposureMask | Xlib.X.StructureNotifyMask | Xlib.X.ButtonPressMask | Xlib.X.ButtonReleaseMask
                ),
                background_pixmap=Xlib.X.ParentRelative,
            )
            return window

        def _on_button_press(self, event: Any) -> None:
            if popup is None:
                super()._on_button_press(event)

        def _on_button_release(self, event: Any) -> None:
            # On release, not press: until then X grabs the pointer for this window, and the
            # menu's own grab (which closes it on a click elsewhere) would fail.
            if popup is not None and event.detail in (1, 3):
                popup.open(event.root_x, event.root_y)

        def _update_icon(self) -> None:
            if not self._systray_manager:
                super()._update_icon()  # not docked yet: dock, then draw
                return
            self._icon_data = None
            self._draw()
            self._icon_valid = True

        def _assert_icon_data(self, width: int, height: int) -> None:
            if self._icon_data and self._icon_data.size == (width, height):
                return
            data: Any = fit_icon(self._icon, (width, height), self._backdrop(width, height))
            data.tostring = data.tobytes  # what python-xlib's put_pil_image calls
            self._icon_data = data

        def _backdrop(self, width: int, height: int) -> Image.Image | None:
            """The tray's pixels behind the icon: the window cleared to its parent's background."""
            try:
                self._window.clear_area(0, 0, width, height)
                raw = self._window.get_image(0, 0, width, height, Xlib.X.ZPixmap, 0xFFFFFFFF).data
                return Image.frombytes("RGB", (width, height), raw, "raw", "BGRX")
            except Exception:  # noqa: BLE001 - an unusual visual: fall back to black
                return None

    return XorgIcon
