"""The controller changes a running pipeline on the next frame, and refuses bad requests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.desktop import BACKGROUND, COLOR, PERSON, SIZE, make_rig, split_frame
from vcam.errors import InputError
from vcam.frames import placeholder_image
from vcam.live.control import STATUS_FIELDS, ControlError


def test_mode_change_applies_to_the_next_frame() -> None:
    rig = make_rig({"mode": "blur"})
    rig.frame()
    rig.controller.set_mode("color")
    out = rig.frame()
    src = split_frame(1)
    assert (out[BACKGROUND] == COLOR).all()
    assert np.array_equal(out[PERSON], src[PERSON])
    assert rig.controller.status()["mode"] == "color"


def test_mode_off_passes_frames_through_without_matting() -> None:
    rig = make_rig({"mode": "color"})
    rig.frame()
    calls = rig.engine.calls
    rig.controller.set_mode("off")
    out = rig.frame()
    assert np.array_equal(out, split_frame(1))
    assert rig.engine.calls == calls


def test_unknown_mode_and_replace_without_background_are_refused() -> None:
    rig = make_rig({"mode": "blur"})
    with pytest.raises(ControlError) as exc:
        rig.controller.set_mode("sparkle")
    assert str(exc.value) == "unknown mode 'sparkle'; use one of: blur, replace, color, off"
    with pytest.raises(ControlError) as exc:
        rig.controller.set_mode("replace")
    assert str(exc.value) == (
        "mode replace needs a background: choose one first ('vcam ctl background PATH', "
        "the tray's Backgrounds menu or effect.background)"
    )
    assert rig.controller.status()["mode"] == "blur"


def test_background_is_loaded_and_switches_to_replace(tmp_path: Path) -> None:
    bg = tmp_path / "wall.png"
    Image.new("RGB", SIZE, (10, 20, 30)).save(bg)
    rig = make_rig({"mode": "off"})
    rig.controller.set_background(bg)
    out = rig.frame()
    assert (out[BACKGROUND] == (10, 20, 30)).all()
    assert np.array_equal(out[PERSON], split_frame(0)[PERSON])
    st = rig.controller.status()
    assert (st["mode"], st["background"]) == ("replace", str(bg))


def test_bad_background_keeps_the_current_effect(tmp_path: Path) -> None:
    rig = make_rig({"mode": "color"})
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(InputError) as exc:
        rig.controller.set_background(bad)
    assert str(exc.value) == f"background image {bad}: not an image vcam can read (PNG, JPEG, WebP, BMP, ...)"
    with pytest.raises(ControlError) as exc2:
        rig.controller.set_background("relative.png")
    assert str(exc2.value) == "background relative.png: give an absolute path"
    assert (rig.controller.status()["mode"], rig.controller.status()["background"]) == ("color", None)
    assert (rig.frame()[BACKGROUND] == COLOR).all()


def test_toggle_effect_switches_between_off_and_the_last_effect() -> None:
    rig = make_rig({"mode": "color"})
    rig.controller.toggle_effect()
    assert rig.controller.status()["mode"] == "off"
    rig.controller.toggle_effect()
    assert rig.controller.status()["mode"] == "color"


def test_mirror_flips_the_next_frame() -> None:
    rig = make_rig({"mode": "off"})
    rig.controller.set_mirror(True)
    assert np.array_equal(rig.frame(), split_frame(0)[:, ::-1])
    assert rig.controller.status()["mirror"] is True


def test_pause_releases_the_camera_and_sends_the_paused_picture() -> None:
    rig = make_rig({"mode": "color"})
    rig.frame()
    calls = rig.engine.calls
    rig.controller.set_paused(True)
    out = rig.frame()
    assert np.array_equal(out, placeholder_image(SIZE, "paused"))
    assert rig.cameras.log == ["open 0", "close 0"]
    assert rig.engine.calls == calls
    st = rig.controller.status()
    assert (st["paused"], st["camera"]) == (True, "released (paused)")

    resets = rig.engine.resets
    rig.controller.set_paused(False)
    out = rig.frame()
    assert rig.cameras.log == ["open 0", "close 0", "open 0"]
    assert (out[BACKGROUND] == COLOR).all()
    assert rig.engine.resets == resets + 1  # recurrent state starts over after the pause
    assert rig.controller.status()["camera"] == "open"


def test_status_has_every_field() -> None:
    rig = make_rig({"mode": "blur"}, config_path=Path("/x/config.yaml"))
    for _ in range(3):
        rig.frame()
    st = rig.controller.status()
    assert tuple(st) == STATUS_FIELDS
    assert {k: st[k] for k in ("mode", "background", "mirror", "paused", "provider", "frames_in", "frames_out",
                               "frames_dropped", "config_path", "config_error", "pending_restart", "camera",
                               "on_demand", "consumers")} == {
        "mode": "blur", "background": None, "mirror": False, "paused": False, "provider": "fake",
        "frames_in": 3, "frames_out": 3, "frames_dropped": 0, "config_path": "/x/config.yaml",
        "config_error": None, "pending_restart": [], "camera": "open", "on_demand": False, "consumers": None,
    }


def test_quit_sets_the_stop_event() -> None:
    rig = make_rig()
    rig.controller.quit()
    assert rig.stop.is_set()


def test_the_camera_is_released_while_the_virtual_camera_is_being_reopened() -> None:
    rig = make_rig({"mode": "color"})
    rig.frame()
    rig.sink.available = False  # as ResilientSink reports it
    out = rig.frame()
    assert np.array_equal(out, placeholder_image(SIZE, "virtual camera unavailable"))
    assert rig.cameras.log == ["open 0", "close 0"]
    assert rig.controller.status()["camera"] == "released (virtual camera unavailable)"
    rig.sink.available = True
    out = rig.frame()
    assert rig.cameras.log == ["open 0", "close 0", "open 0"]
    assert (out[BACKGROUND] == COLOR).all()
