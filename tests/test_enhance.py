"""Auto-framing and low-light correction: the person box, the crop window, the follower, the
tone curve and the slow gain, on synthetic alpha with known answers and on a dev portrait."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from tests.helpers import evaldata
from tests.helpers.fakes import FakeEngine
from vcam.compositing import BlurCompositor, ColorCompositor, PassThrough, ReplaceCompositor
from vcam.compositing.blend import packed_rgba
from vcam.compositing.enhance import Enhancer, _aligned_span, enhancer_for, refine_region
from vcam.compositing.framing import (
    Follower,
    FramingSettings,
    crop_rect,
    person_box,
    target_window,
)
from vcam.compositing.light import LightCorrector, LightSettings, person_luma, tone_lut, wanted_gain
from vcam.compositing.lowres import LowRes
from vcam.config import validate_config
from vcam.errors import ConfigError
from vcam.frames import Frame, enlarge
from vcam.pipeline.stages import Stages

SIZE = (1280, 720)


def person_alpha() -> np.ndarray:
    """160x90 alpha: a 40x60 "person" at columns 60..99, rows 30..89, and a 10x10 "hand"."""
    a = np.zeros((90, 160), np.float32)
    a[30:90, 60:100] = 1.0
    a[60:70, 140:150] = 1.0
    return a


# -- the person box --------------------------------------------------------------------------


def test_box_ignores_a_small_blob() -> None:
    box = person_box(person_alpha())
    assert box is not None
    assert (box.left, box.top, box.right, box.bottom, box.cx, box.cy) == (60.0, 30.0, 100.0, 90.0, 80.0, 60.0)
    assert box.mass == pytest.approx(2400 / 14400)


def test_box_keeps_a_second_person_of_half_the_mass() -> None:
    a = person_alpha()
    a[40:90, 5:35] = 1.0  # 1500 px of alpha against the person's 2400: both are framed
    assert person_box(a).left == 6.0  # type: ignore[union-attr]  # every second column: 6, not 5
    box = person_box(a, step=1)
    assert box is not None
    assert (box.left, box.top, box.right, box.bottom) == (5.0, 30.0, 100.0, 90.0)
    a[40:90, 5:35] = 0.0
    a[50:90, 5:35] = 1.0  # 1200 px = exactly half: still kept
    assert person_box(a, step=1).left == 5.0  # type: ignore[union-attr]
    a[51:90, 5:35] = 1.0
    a[50, 5:35] = 0.0  # 1170 px: less than half, a stranger at the edge
    assert person_box(a, step=1).left == 60.0  # type: ignore[union-attr]


def test_box_centre_ignores_an_arm_held_out() -> None:
    a = np.zeros((90, 160), np.float32)
    a[30:90, 60:100] = 1.0
    a[50:56, 100:150] = 1.0  # an arm attached to the body, 6 rows of 60
    box = person_box(a)
    assert box is not None
    # the box grows to hold it, less its last 2 columns (0.5 % of the mass: 13.5 px, at 6 px a column) ...
    assert box.right == 148.0
    # ... the centre across moves half as far as the box's middle (104): halfway between that
    # and the body's axis (80, the median of the rows' centroids)
    assert box.cx == 92.0


def test_nobody_is_no_box() -> None:
    assert person_box(np.zeros((90, 160), np.float32)) is None
    a = np.zeros((90, 160), np.float32)
    a[0:10, 0:10] = 1.0  # 100 px < 1 % of 14400: matte noise
    assert person_box(a) is None
    assert person_box(np.full((90, 160), 0.4, np.float32)) is None  # nothing over one half


def test_box_from_uint8_alpha_matches_float() -> None:
    a = person_alpha()
    assert person_box((a * 255).astype(np.uint8)) == person_box(a)


# -- the crop window -------------------------------------------------------------------------


def test_target_window_frames_head_and_shoulders() -> None:
    box = person_box(person_alpha())
    assert box is not None
    big = box.scaled(8, 8)  # 1280x720: person 320x480 at (480..800, 240..720)
    # height 480 / 0.8 = 600; top 240 - 0.1 * 600 = 180, so centre y 180 + 300 = 480, but
    # the window must end at 720: centre 420. Centre x 640 (the person's centroid).
    assert target_window(big, SIZE, FramingSettings()) == (640.0, 420.0, 600.0)
    settings = FramingSettings(person_height=0.5, headroom=0.2)
    assert target_window(big, SIZE, settings) == (640.0, 360.0, 720.0)  # 960 > 720: the whole frame


def test_target_window_never_enlarges_more_than_max_zoom() -> None:
    a = np.zeros((90, 160), np.float32)
    a[20:35, 20:30] = 1.0  # 10x15: 150 px (1.04 %), small and off-centre
    box = person_box(a, step=1)
    assert box is not None
    big = box.scaled(8, 8)  # 80x120 at (160..240, 160..280)
    win = target_window(big, SIZE, FramingSettings())  # would be 150 px high: zoom 4.8
    # 720 / 2 high; centred where the 150-px window would be (y 160 - 15 + 75 = 220), moved
    # right to stay inside the frame (x >= 320)
    assert win == (320.0, 220.0, 360.0)
    assert target_window(big, SIZE, FramingSettings(max_zoom=4.0))[2] == 180.0


def test_target_window_is_the_whole_frame_without_a_person() -> None:
    assert target_window(None, SIZE, FramingSettings()) == (640.0, 360.0, 720.0)


def test_crop_rect_keeps_the_aspect_and_stays_inside() -> None:
    assert crop_rect((640.0, 420.0, 600.0), SIZE) == (106, 120, 1067, 600)  # 640 - 533.5 rounds to even
    assert crop_rect((0.0, 0.0, 360.0), SIZE) == (0, 0, 640, 360)
    assert crop_rect((640.0, 360.0, 720.0), SIZE) == (0, 0, 1280, 720)


# -- the follower ----------------------------------------------------------------------------


def test_follower_is_still_inside_the_dead_zone() -> None:
    f = Follower(SIZE, FramingSettings())
    f.reset((640.0, 420.0, 600.0))
    for i in range(60):  # sway of 40 px (< 8 % of 600) and a 50 px height wobble (< 10 %)
        sway = 40 * math.sin(i / 5)
        assert f.update((640.0 + sway, 420.0, 600.0 + 50 * math.cos(i / 7))) == (640.0, 420.0, 600.0)
    assert not f.moving


def test_follower_glides_without_jumps_and_arrives() -> None:
    settings = FramingSettings(speed=0.3, fps=30.0)
    f = Follower(SIZE, settings)
    f.reset((400.0, 360.0, 360.0))  # zoom 2: 640 wide, so x may be 320..960
    target = (880.0, 360.0, 360.0)  # 480 px to the right
    xs = [f.update(target)[0] for _ in range(120)]
    steps = np.diff([400.0, *xs])
    assert steps.min() >= 0.0  # never backwards
    assert steps.max() == pytest.approx(0.3 * 1280 / 30)  # the speed cap: 12.8 px per frame
    assert steps[0] == pytest.approx(12.8 / 9)  # a gentle start: top speed after 0.3 s (9 frames)
    assert np.abs(np.diff(steps)).max() <= 12.8 / 9 + 1e-9
    assert abs(xs[-1] - 880.0) <= 3.6  # within 1 % of the height: resting there
    assert not f.moving
    assert f.update((885.0, 360.0, 360.0))[0] == xs[-1]  # and it rests


# -- the enhancer on frames ------------------------------------------------------------------


def frame_and_alpha() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    small = person_alpha()
    image = np.zeros((720, 1280, 3), np.uint8)
    image[..., 0] = (np.arange(1280) // 5).astype(np.uint8)[None, :]
    image[..., 1] = (np.arange(720) // 3).astype(np.uint8)[:, None]
    full = cv2.resize((small * 255).astype(np.uint8), SIZE, interpolation=cv2.INTER_NEAREST)
    return image, full, small


def test_enhancer_off_hands_back_the_same_arrays() -> None:
    image, full, small = frame_and_alpha()
    enh = Enhancer(SIZE)
    assert not enh.active
    out = enh(image, full, small, None)
    assert out.image is image and out.alpha is full


def test_enhancer_frames_the_person() -> None:
    image, full, small = frame_and_alpha()
    enh = Enhancer(SIZE, FramingSettings(fps=30.0), framing_on=True)
    for _ in range(150):
        out = enh(image, full, small, None)
    # the window has come to rest near the target (640, 420, 600), within 1 % of its height
    assert max(abs(a - b) for a, b in zip(enh.window, (640.0, 420.0, 600.0), strict=True)) <= 6.0
    x0, y0, w, h = crop_rect(enh.window, SIZE)
    assert (x0, y0, w, h) == (102, 115, 1076, 605)
    assert np.array_equal(out.image, enlarge(image[y0 : y0 + h, x0 : x0 + w], SIZE))
    assert np.array_equal(out.alpha, enlarge(full[y0 : y0 + h, x0 : x0 + w], SIZE))
    # off again: back to the whole frame, gliding, then the picture is passed untouched
    enh.configure(framing_on=False)
    heights = [enh(image, full, small, None) and enh.window[2] for _ in range(150)]
    assert max(np.diff(heights)) <= 0.3 * 1280 / 30 + 1e-9
    assert crop_rect(enh.window, SIZE) == (0, 0, 1280, 720)
    assert not enh.active
    assert enh(image, full, small, None).image is image


def test_enhancer_waits_before_zooming_out_when_the_person_is_lost() -> None:
    image, full, small = frame_and_alpha()
    enh = Enhancer(SIZE, framing_on=True)
    for _ in range(150):
        enh(image, full, small, None)
    resting = enh.window
    empty = np.zeros_like(small)
    for _ in range(14):  # under half a second without a person: the window stays
        enh(image, full, empty, None)
    assert enh.window == resting
    for _ in range(200):
        enh(image, full, empty, None)
    assert crop_rect(enh.window, SIZE) == (0, 0, 1280, 720)


# -- light -----------------------------------------------------------------------------------


def test_tone_lut_values() -> None:
    assert np.array_equal(tone_lut(1.0), np.arange(256, dtype=np.uint8))
    lut = tone_lut(2.4)
    assert lut.dtype == np.uint8
    assert lut[[0, 4, 8, 12, 16, 24, 40, 64, 128, 200, 255]].tolist() == [0, 4, 9, 15, 23, 41, 79, 114, 180, 229, 255]
    # 128 at gain 2.4 by hand: u = 128/255, 2.4 u / (1 + 1.4 u) = 0.7058 -> 180
    assert np.all(np.diff(lut.astype(int)) >= 0)  # monotonic
    assert np.diff(lut.astype(int))[:12].max() <= 2  # near black: slope at most 2 (the plain curve: 2.4)


def test_near_black_noise_is_not_lifted_like_the_mid_tones() -> None:
    rng = np.random.default_rng(1)
    noise = np.clip(rng.normal(6, 2, 100_000).round(), 0, 255).astype(np.uint8)
    mid = np.clip(rng.normal(80, 2, 100_000).round(), 0, 255).astype(np.uint8)
    lut = tone_lut(2.4)
    near_black = lut[noise].std() / noise.std()
    mid_tones = lut[mid].std() / mid.std()
    plain = 2.4 * np.arange(256) / 255 / (1 + 1.4 * np.arange(256) / 255)  # the curve without its toe
    plain_black = np.rint(255 * plain)[noise].std() / noise.std()
    assert (round(near_black, 2), round(mid_tones, 2), round(plain_black, 2)) == (1.27, 1.21, 2.26)


def test_wanted_gain() -> None:
    s = LightSettings(target=140.0, max_gain=5.0)
    assert wanted_gain(120.0, s) == 1.0  # >= 0.8 of the target: left alone
    assert wanted_gain(112.0, s) == 1.0
    m, t = 60 / 255, 140 / 255
    assert wanted_gain(60.0, s) == pytest.approx(t * (1 - m) / (m * (1 - t)))  # <= half: all the way
    assert wanted_gain(10.0, s) == 5.0  # capped
    m = 91 / 255
    assert wanted_gain(91.0, s) == pytest.approx(t * (1 - m) / (m * (1 - t)))  # 0.65 of it: all the way
    g = wanted_gain(100.0, s)  # in between: a partial lift, continuous at both ends
    assert 1.0 < g < wanted_gain(91.0, s)
    assert wanted_gain(111.9, s) == pytest.approx(1.0, abs=0.01)


def test_person_luma_is_the_persons_upper_quartile() -> None:
    image = np.zeros((40, 40, 3), np.uint8)
    image[:, :20] = 200  # a bright window behind: not the person
    image[:, 20:] = np.arange(20, dtype=np.uint8)[None, :, None] * 4  # the person: 0, 4, ..., 76
    alpha = np.zeros((40, 40), np.float32)
    alpha[:, 20:] = 1.0
    # every second column of the person: 0, 8, ..., 72; the upper quartile of those ten is 56
    assert person_luma(image, alpha) == 56.0
    assert person_luma(image, np.zeros_like(alpha)) is None


def test_gain_changes_slowly_and_holds_without_a_person() -> None:
    s = LightSettings(target=140.0, settle_s=1.0, fps=30.0)
    c = LightCorrector(s)
    want = wanted_gain(50.0, s)
    c.update(50.0)
    rate = 1 - math.exp(-1 / 30)
    assert c.gain == pytest.approx(math.exp(math.log(want) * rate))
    for _ in range(199):
        c.update(50.0)
    assert c.gain == pytest.approx(want, rel=0.003)  # 6.7 time constants later
    settled = c.gain
    assert c.update(None) is not None and c.gain == settled  # nobody there: the gain holds
    lut = c.update(50.0)
    assert lut is c.update(50.0)  # the same LUT while the gain moves by less than 0.5 %


def test_well_lit_frames_are_left_alone() -> None:
    c = LightCorrector(LightSettings())
    assert all(c.update(130.0) is None for _ in range(100))
    assert c.gain == 1.0


def test_light_hands_its_curve_to_the_compositor() -> None:
    image = np.full((720, 1280, 3), 50, np.uint8)
    small = np.full((216, 384, 3), 50, np.uint8)
    alpha_small = np.ones((216, 384), np.float32)
    full = np.full((720, 1280), 255, np.uint8)
    enh = Enhancer(SIZE, light=LightSettings(), light_on=True)
    out = enh(image, full, alpha_small, LowRes(small, alpha_small))
    assert out.lut is not None and np.array_equal(out.lut, tone_lut(enh.light.gain)) and out.lut[50] > 50
    assert out.image is image and out.low is not None and out.low.image is small  # nothing written
    assert image[0, 0, 0] == 50


@pytest.mark.parametrize("mode", ["blur", "color", "replace", "passthrough"])
def test_compositors_read_the_picture_through_the_curve(mode: str) -> None:
    """Through the curve inside the compositor, or by the stages first (a compositor that
    cannot): the same picture as the curve applied to the camera's picture beforehand."""
    rng = np.random.default_rng(3)
    size = (160, 90)
    image = rng.integers(0, 120, (90, 160, 3), dtype=np.uint8)
    alpha = np.zeros((90, 160), np.uint8)
    alpha[20:80, 40:120] = 255
    alpha[20:80, 38:42] = 128  # a soft edge
    small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA)
    low = LowRes(small, cv2.resize(alpha, (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32) / 255)
    lut = tone_lut(3.0)
    bg = rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)

    class Still:  # a background image
        def frame(self, n: int, t: float | None = None) -> np.ndarray:
            return bg

    comp = {"blur": lambda: BlurCompositor(20), "color": lambda: ColorCompositor((0, 200, 0)),
            "replace": lambda: ReplaceCompositor(Still()),  # type: ignore[arg-type]
            "passthrough": lambda: PassThroughWithAlpha()}[mode]
    if mode == "passthrough":
        assert not getattr(comp(), "takes_lut", False)
    else:
        got = comp()(image, alpha, low, None, lut=lut)
        want = comp()(cv2.LUT(image, lut), alpha, LowRes(cv2.LUT(small, lut), low.alpha))
        assert np.array_equal(got, want)
    # the same through the stages, with the light on (a fake engine: the person is the red-free rows)
    engine = FakeEngine(size)
    enh = Enhancer(size, light=LightSettings(fps=30.0), light_on=True)
    stages = Stages(engine, comp(), output_size=size, enhancer=enh)
    dark = np.full((90, 160, 3), 30, np.uint8)
    dark[30:90, 60:100, 0] = 200  # the fake engine's person (red over 127), dim
    for i in range(60):
        out = stages.render(stages.matte(stages.prepare(Frame(dark, i, i / 30))))
    assert enh.light.gain > 1.5
    lut = tone_lut(enh.light.gain)
    person = out[40:80, 70:90]
    assert np.all(person == np.array([lut[200], lut[30], lut[30]], np.uint8)) and lut[30] > 30


# -- in the stages, and from the config -----------------------------------------------------


def test_stages_render_the_framed_picture() -> None:
    size = (160, 90)
    engine = FakeEngine(size)
    image = np.zeros((90, 160, 3), np.uint8)
    image[30:90, 60:100, 0] = 255  # the fake engine's "person": red
    enh = Enhancer(size, FramingSettings(fps=30.0), framing_on=True)
    stages = Stages(engine, PassThroughWithAlpha(), output_size=size, enhancer=enh)
    for i in range(150):
        out = stages.render(stages.matte(stages.prepare(Frame(image, i, i / 30))))
    # the person's box: rows 30..90, so the target is 60 / 0.8 = 75 rows high, centred at
    # x 80 and y 30 - 7.5 + 37.5 = 60 ... kept inside: y <= 90 - 37.5 = 52.5
    box = person_box(engine.infer(image))
    assert target_window(box, size, FramingSettings()) == (80.0, 52.5, 75.0)
    assert max(abs(a - b) for a, b in zip(enh.window, (80.0, 52.5, 75.0), strict=True)) <= 0.75  # at rest
    x0, y0, w, h = crop_rect(enh.window, size)
    assert (x0, y0, w, h) == (12, 14, 135, 76)
    assert np.array_equal(out, enlarge(image[y0 : y0 + h, x0 : x0 + w], size))
    assert "enhance" in stages.stats.summary()["stage_ms"]  # type: ignore[operator]


class PassThroughWithAlpha(PassThrough):
    needs_alpha = True  # type: ignore[misc]


def test_config_keys() -> None:
    cfg = validate_config({"effect": {"framing": "auto", "light": False}, "framing": {"max_zoom": 3}})
    assert (cfg.effect.framing, cfg.effect.light, cfg.framing.max_zoom) == ("auto", "off", 3.0)
    assert validate_config({"effect": {"framing": True}}).effect.framing == "auto"  # YAML `on`
    enh = enhancer_for(cfg)
    assert (enh.framing_on, enh.light_on, enh.follower.settings.max_zoom) == (True, False, 3.0)
    with pytest.raises(ConfigError) as err:
        validate_config({"effect": {"framing": "on-ish"}, "framing": {"max_zoom": 0.5}, "light": {"target": 300}})
    text = str(err.value)
    assert "effect.framing: must be 'off' or 'auto', got 'on-ish'" in text
    assert "framing.max_zoom: must be greater than or equal to 1, got 0.5" in text
    assert "light.target: must be less than or equal to 220, got 300" in text


# -- a dev portrait (the real alpha) ---------------------------------------------------------


def test_box_and_window_on_a_dev_portrait() -> None:
    src = evaldata() / "sources" / "portraits"
    alpha = cv2.imread(str(src / "p_09ba26b4.alpha.png"), cv2.IMREAD_GRAYSCALE)
    small = cv2.resize(alpha, (384, 216), interpolation=cv2.INTER_AREA)
    box = person_box(small)
    assert box is not None
    # the matte's box is columns 67..205 and rows 4..216 at this size; the mass percentiles
    # trim the wisps
    assert (box.left, box.top, box.right, box.bottom) == (72.0, 8.0, 200.0, 216.0)  # on every 2nd row and column
    assert round(box.cx, 2) == 121.85  # between the box's middle (136) and the body's axis (107.7)
    full = person_box(small, step=1)
    assert full is not None and (full.left, full.top, full.right, full.bottom) == (72.0, 8.0, 199.0, 215.0)
    assert round(full.cx, 2) == 121.35
    # 207 rows / 0.8 is more than the frame: the whole frame is the window
    assert target_window(box.scaled(1280 / 384, 720 / 216), SIZE, FramingSettings()) == (640.0, 360.0, 720.0)
    image = cv2.resize(cv2.imread(str(src / "p_09ba26b4.jpg")), (384, 216), interpolation=cv2.INTER_AREA)
    assert person_luma(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), small) == 148.0


# -- the live controls: vcam ctl, the socket, the tray ----------------------------------------


def test_ctl_commands_switch_framing_and_light() -> None:
    from tests.helpers.desktop import make_rig
    from vcam.live.control import ControlError, run_command

    rig = make_rig({"mode": "blur"})
    enh = rig.controller.stages.enhancer
    assert (enh.framing_on, enh.light_on) == (False, False)
    run_command(rig.controller, "framing", "auto")
    run_command(rig.controller, "light", "auto")
    assert (enh.framing_on, enh.light_on) == (True, True)
    st = rig.controller.status()
    assert (st["framing"], st["light"]) == ("auto", "auto")
    rig.frame()  # runs with both on
    run_command(rig.controller, "framing", "off")
    assert (enh.framing_on, rig.controller.status()["framing"]) == (False, "off")
    with pytest.raises(ControlError, match=r"^light: use one of auto, off, got 'on'$"):
        rig.controller.set_light("on")


def test_socket_and_parser_take_auto_or_off() -> None:
    import json

    from vcam.cli import build_parser
    from vcam.live.control_socket import ControlError, parse_request

    assert parse_request(json.dumps({"command": "framing", "value": "auto"}).encode()).value == "auto"
    with pytest.raises(ControlError, match=r"bad request: light needs one of auto, off, got 'bright'"):
        parse_request(json.dumps({"command": "light", "value": "bright"}).encode())
    args = build_parser().parse_args(["ctl", "framing", "off"])
    assert (args.action, args.value) == ("framing", "off")


def test_tray_has_the_two_toggles() -> None:
    from tests.helpers.desktop import make_rig
    from vcam.live.tray import TrayView, find_entry

    rig = make_rig({"mode": "blur"})
    model = TrayView(rig.controller, which=lambda name: None)
    entry = find_entry(model.entries(), "Auto-framing")
    assert (entry.kind, entry.checked) == ("check", False)
    assert entry.action is not None
    entry.action()
    assert rig.controller.effect.framing == "auto"
    assert find_entry(model.entries(), "Auto-framing").checked is True
    light = find_entry(model.entries(), "Low-light correction")
    assert light.checked is False
    assert light.action is not None
    light.action()
    assert rig.controller.status()["light"] == "auto"


def test_light_on_a_darkened_dev_portrait() -> None:
    src = evaldata() / "sources" / "portraits"
    rgb = cv2.cvtColor(cv2.imread(str(src / "p_07141906.jpg")), cv2.COLOR_BGR2RGB)
    alpha = cv2.imread(str(src / "p_07141906.alpha.png"), cv2.IMREAD_GRAYSCALE)
    image = cv2.resize(rgb, (720, 720), interpolation=cv2.INTER_AREA)
    matte = cv2.resize(alpha, (720, 720), interpolation=cv2.INTER_AREA)
    dark = np.rint(255 * 0.45 * (image / 255.0) ** 1.3).astype(np.uint8)  # a dim sensor, without noise
    small, small_alpha = cv2.resize(dark, (240, 240), interpolation=cv2.INTER_AREA), cv2.resize(matte, (240, 240)) / 255.0
    small_alpha = small_alpha.astype(np.float32)
    assert (person_luma(image, matte), person_luma(dark, matte)) == (191.0, 79.0)
    enh = Enhancer((720, 720), light=LightSettings(), light_on=True)
    for _ in range(200):
        out = enh(dark, matte, small_alpha, LowRes(small, small_alpha))
    # measured on the small copy (77 there): gain 0.549 (1 - 0.302) / (0.302 (1 - 0.549))
    assert person_luma(small, small_alpha) == 77.0
    assert round(enh.light.gain, 3) == 2.811
    assert out.lut is not None
    lit = BlurCompositor(20)(out.image, out.alpha, out.low, lut=out.lut)
    assert person_luma(lit, matte) == 141.0  # the target 140, within a level
    # the background's darkest corner: near-black stays near black
    assert int(dark[matte == 0].min()) == 0 and int(cv2.LUT(dark, out.lut)[matte == 0].min()) == 0


def test_vcam_process_frames_the_person(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers.media import decode_rgb, write_video
    from vcam.files.process import FileOptions, process_file

    # a small red "person" (the fake engine's alpha: red > 127) left of centre on grey
    frame = np.full((180, 320, 3), 90, np.uint8)
    frame[60:150, 100:160] = (230, 40, 40)  # 60 wide, 90 high
    inp = write_video(tmp_path / "in.mp4", [frame] * 90)
    cfg = validate_config({"effect": {"mode": "color", "color": [0, 0, 255], "framing": "auto"}})
    plain = validate_config({"effect": {"mode": "color", "color": [0, 0, 255]}})
    process_file(cfg, inp, tmp_path / "framed.mp4", FileOptions(), engine=FakeEngine((160, 90)))
    process_file(plain, inp, tmp_path / "plain.mp4", FileOptions(), engine=FakeEngine((160, 90)))

    def red_box(img: np.ndarray) -> tuple[int, int, int, int]:
        ys, xs = np.where((img[..., 0] > 150) & (img[..., 2] < 100))
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1

    last_plain, last_framed = decode_rgb(tmp_path / "plain.mp4")[-1], decode_rgb(tmp_path / "framed.mp4")[-1]
    assert red_box(last_plain) == (100, 60, 160, 150)  # where the camera has it
    x0, y0, x1, y1 = red_box(last_framed)
    # framed: 90 / 0.8 = 112.5 rows of 180 -> enlarged 1.6x: the person 144 rows high,
    # centred across (160), its top 0.1 of the height down (18 px). Within 5 %: the box is
    # measured on every second row of the model's 160x90 alpha (92 rows, not 90), the crop
    # rests within 1 % of its target, and the codec softens the red square's edges.
    assert abs((x0 + x1) / 2 - 160) <= 3, (x0, x1)
    assert abs((y1 - y0) - 144) <= 7 and abs(y0 - 18) <= 4, (y0, y1)


def test_config_reload_switches_and_retunes_the_effects() -> None:
    from tests.helpers.desktop import SIZE as RIG_SIZE
    from tests.helpers.desktop import make_rig

    rig = make_rig({"mode": "blur"})
    enh = rig.controller.stages.enhancer
    new = validate_config({
        "camera": {"size": list(RIG_SIZE), "fps": 30},
        "effect": {"mode": "blur", "color": [255, 0, 255], "framing": "auto"},
        "framing": {"max_zoom": 3.0, "person_height": 0.6},
        "light": {"target": 120},
    })
    changed = rig.controller.apply_config(new)
    assert changed == ["effect", "framing", "light"]
    assert (enh.framing_on, enh.light_on, rig.controller.status()["framing"]) == (True, False, "auto")
    rig.frame()  # the new settings are taken on the rendering thread
    assert (enh.follower.settings.max_zoom, enh.follower.settings.person_height) == (3.0, 0.6)
    assert enh.light.settings.target == 120.0


# -- enlarging a framed picture only around the person ---------------------------------------


def test_aligned_span_values() -> None:
    # 853 -> 1280 px (a 1.5x crop): widened by 2 to 298 and 602, then out to the ends that
    # land nearest a whole output pixel (290 * 1280 / 853 = 435.17, 609 -> 913.86)
    assert _aligned_span(300, 600, 853, 1280) == (290, 609, 435, 914)
    assert _aligned_span(5, 470, 480, 720) == (2, 472, 3, 708)  # 1.5 exactly: even ends land exactly
    assert _aligned_span(1, 850, 853, 1280) == (0, 853, 0, 1280)  # near the edges: the whole span


def soft_person() -> tuple[np.ndarray, np.ndarray, LowRes]:
    """A 1280x720 frame (a random texture of a few pixels' grain) with a soft-edged "person" (an ellipse, blurred edge) and
    the model's 384x216 view of it."""
    rng = np.random.default_rng(3)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (720, 1280, 3)).astype(np.float32), (0, 0), 2)
    image = np.clip(128 + noise * (60 / noise.std()), 0, 255).astype(np.uint8)  # texture of a few pixels
    small = np.zeros((216, 384), np.float32)
    cv2.ellipse(small, (200, 150), (60, 110), 0, 0, 360, 1.0, -1)
    small = cv2.GaussianBlur(small, (0, 0), 3)
    full = np.rint(cv2.resize(small, SIZE, interpolation=cv2.INTER_LINEAR) * 255).astype(np.uint8)
    return image, full, LowRes(cv2.resize(image, (384, 216), interpolation=cv2.INTER_AREA), small)


def framed(enh: Enhancer, zoom: float) -> Enhancer:
    enh.follower = Follower(SIZE, enh.follower.settings, dead_zone=10.0, dead_zone_size=10.0)
    enh.follower.reset((653.3, 371.7, 720 / zoom))  # held there, at a window of no whole pixel
    return enh


@pytest.mark.parametrize("zoom", [1.5, 1.9])
def test_framing_enlarges_only_around_the_person_for_a_compositor_that_shows_no_more(zoom: float) -> None:
    image, full, low = soft_person()
    comp = BlurCompositor(20)
    assert comp.picture_under_alpha_only(SIZE, low)
    whole = framed(Enhancer(SIZE, framing_on=True), zoom)(image, full, low.alpha, low)
    enh = framed(Enhancer(SIZE, framing_on=True), zoom)
    enh._bufs["framed rgba"] = np.full((720, 1280, 4), 7, np.uint8)  # marks what is not written
    part = enh(image, full, low.alpha, low, sparse=comp.picture_under_alpha_only)
    # picture and alpha come back as the channels of one RGBA buffer, which the blend reads whole
    assert packed_rgba(part.image, part.alpha) is enh._bufs["framed rgba"]
    assert not (enh._bufs["framed rgba"] == 7).all(axis=2).any()  # every pixel written
    # away from the person, picture and alpha are zeroed, not enlarged
    assert not part.image[:, :150].any() and not part.alpha[:, :150].any()
    assert part.image[300:400, 600:700].any(axis=2).all()
    # the alpha within a level of enlarging the whole crop (the span lands up to 0.17 px off;
    # measured: 1 level at most), and the picture under it within a level on average
    assert np.abs(part.alpha.astype(int) - whole.alpha).max() <= 2
    person = part.alpha > 0
    assert person.mean() > 0.4  # the person is in the picture, enlarged
    assert np.abs(part.image[person].astype(int) - whole.image[person]).mean() < 1.0  # measured 0.51 / 0.11
    out_part, out_whole = comp(part.image, part.alpha, part.low), comp(whole.image, whole.alpha, whole.low)
    background = ~person & (whole.alpha == 0)
    assert np.array_equal(out_part[background], out_whole[background])
    assert np.abs(out_part.astype(int) - out_whole).mean() < 0.3  # measured 0.18 / 0.06


def test_framing_after_a_move_leaves_nothing_of_the_frame_before() -> None:
    # the RGBA buffer is zeroed only where the last frame wrote: after the person moved, or
    # left, it must hold what a fresh enhancer gives for that frame alone
    image, full, low = soft_person()
    sparse = BlurCompositor(20).picture_under_alpha_only
    moved = np.roll(full, (-120, 260), axis=(0, 1))  # up and to the right
    moved_small = np.roll(low.alpha, (-36, 78), axis=(0, 1))
    enh = framed(Enhancer(SIZE, framing_on=True), 1.5)
    steps = [(full, low.alpha), (moved, moved_small), (full * 0, low.alpha * 0), (full, low.alpha)]
    for k, (a, small) in enumerate(steps):
        got = enh(image, a, small, LowRes(low.image, small), sparse=sparse)
        fresh = framed(Enhancer(SIZE, framing_on=True), 1.5)(image, a, small, LowRes(low.image, small), sparse=sparse)
        assert np.array_equal(got.alpha, fresh.alpha), k
        assert np.array_equal(got.image, fresh.image), k
        assert got.alpha.any() == bool(a.any()), k


def test_framing_enlarges_everything_when_the_compositor_shows_more() -> None:
    image, full, low = soft_person()
    weak = BlurCompositor(3)  # too weak to blur the model's small picture: it blurs this one
    assert not weak.picture_under_alpha_only(SIZE, low)
    assert ReplaceCompositor(ColorBackground()).picture_under_alpha_only(SIZE, None)
    assert ColorCompositor((0, 255, 0)).picture_under_alpha_only(SIZE, None)
    whole = framed(Enhancer(SIZE, framing_on=True), 1.5)(image, full, low.alpha, low)
    asked = framed(Enhancer(SIZE, framing_on=True), 1.5)(image, full, low.alpha, low, sparse=weak.picture_under_alpha_only)
    assert np.array_equal(asked.image, whole.image) and np.array_equal(asked.alpha, whole.alpha)


def test_framing_with_nobody_there_sets_the_alpha_to_zero() -> None:
    image, full, low = soft_person()
    nobody = np.zeros_like(full)
    enh = framed(Enhancer(SIZE, framing_on=True), 1.5)
    out = enh(image, nobody, low.alpha * 0, LowRes(low.image, low.alpha * 0), sparse=BlurCompositor(20).picture_under_alpha_only)
    assert out.alpha.shape == (720, 1280) and not out.alpha.any()


class ColorBackground:
    def frame(self, n: int, t: float | None = None) -> np.ndarray:
        return np.full((720, 1280, 3), 9, np.uint8)

    def close(self) -> None:
        pass


def test_stages_ask_the_compositor_whether_the_picture_shows_only_under_alpha() -> None:
    asked: list[object] = []

    class Spy(Enhancer):
        def apply(self, *args, sparse=None, **kw):  # type: ignore[no-untyped-def, override]
            asked.append(sparse)
            return super().apply(*args, sparse=sparse, **kw)

    size = (160, 90)
    image = np.zeros((90, 160, 3), np.uint8)
    image[30:90, 60:100, 0] = 255
    colour = ColorCompositor((0, 255, 0))
    for comp, expect in ((colour, colour.picture_under_alpha_only), (PassThroughWithAlpha(), None)):
        asked.clear()
        stages = Stages(FakeEngine(size), comp, output_size=size, enhancer=Spy(size, framing_on=True))
        stages.render(stages.matte(stages.prepare(Frame(image, 0, 0.0))))
        assert asked == [expect]


# -- refining only the part of the frame the crop shows -----------------------------------------


def test_refine_region_values() -> None:
    # 1280x720 over a 384x216 alpha: 3 model pixels are 10 frame pixels; the crop 213..1066 x
    # 120..600 touches model columns 63..320 and rows 36..180; 6 more on each side, out to
    # multiples of 3
    assert refine_region((213, 120, 853, 480), (1280, 720), (384, 216)) == ((190, 100, 1090, 620), (57, 30, 327, 186))
    assert refine_region((0, 0, 853, 480), (1280, 720), (384, 216)) == ((0, 0, 880, 500), (0, 0, 264, 150))
    assert refine_region((100, 50, 1100, 620), (1280, 720), (384, 216)) is None  # most of the frame
    assert refine_region((400, 200, 640, 360), (1366, 768), (384, 216)) is None  # 683 frame px per 192 model px


@pytest.mark.parametrize("refiner", ["bilinear", "band"])
@pytest.mark.parametrize("window", [(653.3, 371.7, 480.0), (420.0, 250.0, 380.0), (1000.0, 500.0, 420.0)])
def test_refining_the_crop_region_gives_the_frame_refinements_crop(refiner: str, window: tuple[float, float, float]) -> None:
    from vcam.compositing.edges import EdgeBandRefiner
    from vcam.compositing.refine import BilinearRefiner

    image, _, low = soft_person()
    ref = EdgeBandRefiner() if refiner == "band" else BilinearRefiner()

    def refine(alpha: np.ndarray, picture: np.ndarray, small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return ref.refine(alpha, picture, small) if isinstance(ref, EdgeBandRefiner) else (ref(alpha, picture), picture)

    enh = framed(Enhancer(SIZE, framing_on=True), 1.0)
    enh.follower.reset(window)
    step = enh.step(SIZE, low.alpha, low)
    assert step.rect is not None
    region = refine_region(step.rect, SIZE, (384, 216))
    assert region is not None
    (x0, y0, x1, y1), (k0, j0, k1, j1) = region
    whole = enh.apply(step, *refine(low.alpha, image, low.image)[::-1], low)
    whole_alpha, whole_image = whole.alpha.copy(), whole.image.copy()  # the enhancer's buffers, written again below
    full_r, image_r = refine(np.ascontiguousarray(low.alpha[j0:j1, k0:k1]), image[y0:y1, x0:x1], low.image[j0:j1, k0:k1])
    assert full_r.shape == (y1 - y0, x1 - x0)
    part = enh.apply(step, image_r, full_r, low, origin=(x0, y0))
    assert np.array_equal(part.alpha, whole_alpha) and np.array_equal(part.image, whole_image)


def test_stages_refine_only_the_part_a_framed_crop_shows() -> None:
    """With the framing zoomed in, Stages refines the part of the frame around the crop, and
    the output is the one refining the whole frame gives."""
    from vcam.compositing.edges import EdgeBandRefiner

    seen: list[tuple[int, ...]] = []

    class Recording(EdgeBandRefiner):
        def refine(self, alpha, image, small=None):  # type: ignore[no-untyped-def, override]
            seen.append(image.shape)
            return super().refine(alpha, image, small)

    image = np.zeros((720, 1280, 3), np.uint8)
    cv2.ellipse(image, (700, 500), (150, 260), 0, 0, 360, (255, 120, 60), -1)
    image = cv2.GaussianBlur(image, (0, 0), 6)  # soft edges: the band has work to do
    outs = []
    for refiner in (Recording(), EdgeBandRefiner()):
        enh = framed(Enhancer(SIZE, framing_on=True), 1.0)
        enh.follower.reset((653.3, 371.7, 480.0))
        stages = Stages(FakeEngine((384, 216)), BlurCompositor(20), output_size=SIZE, refiner=refiner, enhancer=enh)
        outs.append(stages.render(stages.matte(stages.prepare(Frame(image, 0, 0.0)))))
    rect = crop_rect((653.3, 371.7, 480.0), SIZE)
    region = refine_region(rect, SIZE, (384, 216))
    assert region is not None
    (x0, y0, x1, y1), _ = region
    assert seen == [(y1 - y0, x1 - x0, 3)] and (y1 - y0) * (x1 - x0) < 0.6 * 1280 * 720
    # the same frame through the old order: the whole frame refined, then the crop enlarged
    engine = FakeEngine((384, 216))
    small_picture = engine.shrink(image)
    small_alpha = engine.infer(image)
    full, picture = EdgeBandRefiner().refine(small_alpha, image, small_picture)
    enh = framed(Enhancer(SIZE, framing_on=True), 1.0)
    enh.follower.reset((653.3, 371.7, 480.0))
    low = LowRes(small_picture, small_alpha)
    done = enh(picture, full, small_alpha, low, sparse=BlurCompositor(20).picture_under_alpha_only)
    expect = BlurCompositor(20)(done.image, done.alpha, done.low)
    assert np.array_equal(outs[0], expect) and np.array_equal(outs[1], expect)
