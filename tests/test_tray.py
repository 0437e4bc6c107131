"""The tray menu as data (no display): entries, checked states, and what the callbacks do."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.desktop import SIZE, make_rig
from vcam.errors import VcamError
from vcam.live.tray import (
    CONFIG_TEMPLATE,
    MODE_COLORS,
    PAUSED_COLOR,
    Entry,
    TrayView,
    find_entry,
    icon_image,
    probe_tray,
    run_tray,
    to_pystray,
)


def view_for(rig, tmp_path: Path, *, programs: tuple[str, ...] = (), **kw) -> TrayView:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "HOME": str(tmp_path)}
    return TrayView(
        rig.controller,
        env=env,
        which=lambda name: f"/usr/bin/{name}" if name in programs else None,
        start_thread=lambda body: body(),  # run the dialog flow inline
        **kw,
    )


def shape(entries: list[Entry]) -> list[tuple[object, ...]]:
    return [(e.label, e.kind, e.checked, e.enabled, e.visible) for e in entries]


def test_menu_lists_every_item_with_its_state(tmp_path: Path) -> None:
    rig = make_rig({"mode": "blur"})
    view = view_for(rig, tmp_path)
    entries = view.entries()
    assert shape(entries) == [
        ("Blur · 0 fps · fake", "label", None, False, True),
        ("", "separator", None, True, True),
        ("Blur", "radio", True, True, True),
        ("Replace", "radio", False, False, True),  # no background chosen yet
        ("Colour", "radio", False, True, True),
        ("Off", "radio", False, True, True),
        ("Backgrounds", "submenu", None, True, True),
        ("", "separator", None, True, True),
        ("Mirror", "check", False, True, True),
        ("Auto-framing", "check", False, True, True),
        ("Low-light correction", "check", False, True, True),
        ("Pause", "action", None, True, True),
        ("", "separator", None, True, True),
        ("Open config", "action", None, False, True),  # no xdg-open
        ("Reload config", "action", None, True, True),
        ("", "separator", None, True, True),
        ("Quit", "action", None, True, True),
        ("Effect on/off", "action", None, True, False),
    ]
    assert [e.label for e in entries if e.default] == ["Effect on/off"]
    folder = tmp_path / "cfg" / "vcam" / "backgrounds"
    assert shape(list(find_entry(entries, "Backgrounds").children)) == [
        (f"(no images or videos in {folder})", "label", None, False, True),
    ]


def test_menu_callbacks_change_the_controller(tmp_path: Path) -> None:
    rig = make_rig({"mode": "blur"})
    view = view_for(rig, tmp_path)
    c = rig.controller

    def click(label: str) -> None:
        action = find_entry(view.entries(), label).action
        assert action is not None
        action()

    click("Colour")
    assert c.status()["mode"] == "color"
    assert find_entry(view.entries(), "Colour").checked is True
    assert find_entry(view.entries(), "Blur").checked is False
    click("Mirror")
    assert c.status()["mirror"] is True
    assert find_entry(view.entries(), "Mirror").checked is True
    click("Pause")
    assert c.status()["paused"] is True
    click("Resume")
    assert c.status()["paused"] is False
    click("Effect on/off")
    assert c.status()["mode"] == "off"
    click("Effect on/off")
    assert c.status()["mode"] == "color"
    click("Quit")
    assert rig.stop.is_set()


def test_backgrounds_submenu_lists_the_folder_and_picks_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "bgs"
    folder.mkdir()
    for name, rgb in (("b-office.jpg", (1, 2, 3)), ("a-beach.png", (9, 8, 7))):
        Image.new("RGB", SIZE, rgb).save(folder / name)
    (folder / "notes.txt").write_text("not a background")
    (folder / "clip.mp4").write_bytes(b"")  # listed by name; loaded only when picked
    rig = make_rig({"mode": "blur", "backgrounds_dir": str(folder)})
    view = view_for(rig, tmp_path, programs=("zenity",))
    sub = find_entry(view.entries(), "Backgrounds")
    assert [(e.label, e.kind, e.checked) for e in sub.children] == [
        ("a-beach.png", "radio", False),
        ("b-office.jpg", "radio", False),
        ("clip.mp4", "radio", False),
        ("", "separator", None),
        ("Choose…", "action", None),
    ]
    action = sub.find("b-office.jpg").action
    assert action is not None
    action()
    st = rig.controller.status()
    assert (st["mode"], st["background"]) == ("replace", str(folder / "b-office.jpg"))
    sub = find_entry(view.entries(), "Backgrounds")
    assert sub.find("b-office.jpg").checked is True
    assert find_entry(view.entries(), "Replace").enabled is True


def test_choose_uses_the_file_dialog_and_reports_a_bad_file(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    Image.new("RGB", SIZE, (5, 5, 5)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    answers = [str(good), str(bad), None]
    asked: list[list[str]] = []
    notes: list[str] = []

    def ask(cmd: list[str]) -> str | None:
        asked.append(cmd)
        return answers.pop(0)

    rig = make_rig({"mode": "blur"})
    view = view_for(rig, tmp_path, programs=("kdialog",), ask=ask, notify=notes.append)
    choose = find_entry(view.entries(), "Backgrounds").find("Choose…").action
    assert choose is not None
    choose()
    assert rig.controller.status()["background"] == str(good)
    assert asked[0][:4] == ["kdialog", "--title", "vcam: choose a background", "--getopenfilename"]
    choose()  # an unreadable file: notified, nothing changes
    assert notes == [f"background image {bad}: not an image vcam can read (PNG, JPEG, WebP, BMP, ...)"]
    assert rig.controller.status()["background"] == str(good)
    choose()  # cancelled
    assert rig.controller.status()["background"] == str(good)


def test_choose_is_offered_only_with_a_dialog_program(tmp_path: Path) -> None:
    rig = make_rig()
    labels = [e.label for e in find_entry(view_for(rig, tmp_path).entries(), "Backgrounds").children]
    assert "Choose…" not in labels


def test_open_config_creates_the_file_and_opens_it(tmp_path: Path) -> None:
    spawned: list[list[str]] = []
    rig = make_rig()
    cfg = tmp_path / "cfg" / "vcam" / "config.yaml"
    view = view_for(rig, tmp_path, programs=("xdg-open",), spawn=spawned.append, config_path=cfg)
    entry = find_entry(view.entries(), "Open config")
    assert entry.enabled is True and entry.action is not None
    entry.action()
    assert cfg.read_text() == CONFIG_TEMPLATE
    assert spawned == [["/usr/bin/xdg-open", str(cfg)]]


def test_failed_action_is_notified_not_raised(tmp_path: Path) -> None:
    rig = make_rig()  # started without a config file to reload
    notes: list[str] = []
    view = view_for(rig, tmp_path, notify=notes.append)
    action = find_entry(view.entries(), "Reload config").action
    assert action is not None
    action()
    assert notes == ["this daemon was started without a config file to reload"]


def test_title_shows_mode_fps_provider_and_trouble(tmp_path: Path) -> None:
    rig = make_rig({"mode": "color"})
    view = view_for(rig, tmp_path)
    assert view.title() == "vcam: Colour · 0 fps · fake"
    rig.controller.set_paused(True)
    rig.controller.report_config_error(VcamError("x.yaml: effect.mode: bad"))
    assert view.title() == "vcam: Colour · 0 fps · fake · paused · config error"


@pytest.mark.parametrize("mode", ["blur", "replace", "color", "off"])
def test_icon_colour_shows_the_mode(mode: str) -> None:
    img = icon_image(mode)
    assert img.size == (64, 64)
    assert img.getpixel((8, 32)) == (*MODE_COLORS[mode], 255)
    assert img.getpixel((0, 0)) == (0, 0, 0, 0)
    assert icon_image(mode, paused=True).getpixel((8, 32)) == (*PAUSED_COLOR, 255)


def _pystray_base():
    if "pystray" not in sys.modules:
        os.environ.setdefault("PYSTRAY_BACKEND", "dummy")
    import pystray

    return pystray


def test_menu_converts_to_pystray(tmp_path: Path) -> None:
    pystray = _pystray_base()
    rig = make_rig({"mode": "blur"})
    view = view_for(rig, tmp_path)
    menu = to_pystray(view.entries, pystray)
    items = list(menu)  # visible items only
    assert [i.text for i in items if i is not pystray.Menu.SEPARATOR] == [
        "Blur · 0 fps · fake", "Blur", "Replace", "Colour", "Off", "Backgrounds", "Mirror", "Auto-framing",
        "Low-light correction", "Pause",
        "Open config", "Reload config", "Quit",
    ]
    blur, colour = items[2], items[4]
    assert (blur.checked, blur.radio, colour.checked, colour.radio) == (True, True, False, True)
    colour(None)  # what the backend calls when the item is clicked
    assert rig.controller.status()["mode"] == "color"
    assert [i.checked for i in list(to_pystray(view.entries, pystray))[2:6]] == [False, False, True, False]
    menu(None)  # a click on the icon (backends without a menu) runs the hidden default item
    assert rig.controller.status()["mode"] == "off"


def test_no_display_means_no_tray_and_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    if sys.platform.startswith("linux"):
        assert probe_tray({}) == (None, "no graphical session (DISPLAY and WAYLAND_DISPLAY are not set)")
    rig = make_rig()
    probe: Callable[[object], tuple[None, str]] = lambda env: (None, "no graphical session (test)")  # noqa: E731
    with caplog.at_level(logging.INFO, logger="vcam.live.tray"):
        assert run_tray(rig.controller, rig.stop, probe=probe) is False
    assert [r.getMessage() for r in caplog.records] == [
        "no tray icon: no graphical session (test); running headless (--no-tray hides this message)"
    ]


def test_no_tray_flag_overrides_the_config() -> None:
    from vcam.cli import _overrides, build_parser

    assert _overrides(build_parser().parse_args(["run", "--no-tray"])) == {"tray": {"enabled": False}}
    assert _overrides(build_parser().parse_args(["run"])) == {}


def test_a_missing_system_tray_is_looked_for_again_until_stop(caplog: pytest.LogCaptureFixture) -> None:
    """B4 (issue 17): no tray owner yet (the panel starts after vcam) is said once, then the
    probe repeats until stop; a reason that cannot change (no display at all) is not retried."""
    rig = make_rig()
    calls: list[object] = []

    def probe(env: object) -> tuple[None, str]:
        calls.append(env)
        if len(calls) == 3:
            rig.stop.set()
        return None, "no system tray on this X display (nothing owns _NET_SYSTEM_TRAY_S0)"

    with caplog.at_level(logging.INFO, logger="vcam.live.tray"):
        assert run_tray(rig.controller, rig.stop, probe=probe, retry_s=(0.01, 0.02)) is False  # type: ignore[arg-type]
    assert len(calls) == 3
    assert [r.getMessage() for r in caplog.records] == [
        "no tray icon: no system tray on this X display (nothing owns _NET_SYSTEM_TRAY_S0); running headless "
        "until a system tray appears (--no-tray hides this message)"
    ]


def test_fit_icon_draws_a_square_disc_over_the_backdrop_in_a_tall_slot() -> None:
    from PIL import Image

    from vcam.live.tray import MODE_COLORS, fit_icon, icon_image

    backdrop = Image.new("RGB", (24, 30), (220, 218, 213))
    out = fit_icon(icon_image("blur"), (24, 30), backdrop)
    assert out.mode == "RGB" and out.size == (24, 30)
    assert out.getpixel((0, 3)) == (220, 218, 213)  # the square's corner: transparent, the tray shows
    assert out.getpixel((12, 1)) == (220, 218, 213)  # above the square: not a stretched disc
    assert out.getpixel((12, 28)) == (220, 218, 213)
    assert out.getpixel((3, 15)) == MODE_COLORS["blur"]  # inside the disc, clear of the letter
    assert out.getpixel((20, 15)) == MODE_COLORS["blur"]
