"""Edge-band refinement: the band is exactly the unsure pixels grown by ``grow``; outside it the
output is the bilinear one bit for bit, inside it the guided filter's; edge colours are
decontaminated to the foreground's own colour."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.helpers.media import portrait_frames
from vcam.compositing.edges import EdgeBandRefiner, _starts, band_mask
from vcam.compositing.refine import BilinearRefiner, GuidedRefiner, make_refiner
from vcam.frames import Frame
from vcam.matting import MattingEngine
from vcam.pipeline.stages import Stages


def _expected_band(a8: np.ndarray, lo: int, hi: int, grow: int) -> np.ndarray:
    unsure = ((a8 > lo) & (a8 < hi)).astype(np.uint8)
    if grow == 0:
        return unsure
    k = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
    out: np.ndarray = cv2.dilate(unsure, k, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return out


def test_band_mask_is_exact_on_a_synthetic_alpha() -> None:
    a8 = np.zeros((20, 30), np.uint8)
    a8[:, 15:] = 255
    a8[:, 14] = 128  # one unsure column
    a8[0, 0] = 9  # unsure corner pixel (just above lo = 8)
    a8[19, 29] = 246  # unsure, just below hi = 247
    a8[10, 3] = 8  # sure (not above lo)
    a8[5, 25] = 247  # sure (not below hi)
    for grow in (0, 1, 2):
        got = band_mask(a8, 8, 247, grow)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, _expected_band(a8, 8, 247, grow))
    # the column grown by one: columns 13..15, all rows; the corners' 2x2 / 2x2 squares
    g1 = band_mask(a8, 8, 247, 1)
    assert np.flatnonzero(g1.any(axis=0)).tolist() == [0, 1, 13, 14, 15, 28, 29]
    assert int(g1.sum()) == 20 * 3 + 4 + 4
    # float alpha in 0..1 gives the same band as its uint8 levels
    np.testing.assert_array_equal(band_mask(a8.astype(np.float32) / 255), band_mask(a8))


def test_a_sure_alpha_has_no_band_and_is_the_bilinear_result() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    alpha = np.zeros((27, 48), np.float32)
    alpha[:, 24:] = 1.0
    assert int(band_mask(alpha).sum()) == 0
    out, img = EdgeBandRefiner().refine(alpha, image)
    np.testing.assert_array_equal(out, BilinearRefiner()(alpha, image))
    assert img is image


@pytest.fixture(scope="module")
def real(model_path):  # type: ignore[no-untyped-def]
    """A real portrait frame at 640x360 with the real model's alpha at 192x108 and its model view."""
    frames, _ = portrait_frames(4, (640, 360))
    engine = MattingEngine(model_path, providers=("cpu",), threads=1, input_size=(192, 108), downsample_ratio=0.5)
    for f in frames[:-1]:
        engine.infer(f)
    small = engine.shrink(frames[-1])
    return frames[-1], engine.infer(small), small


def test_outside_the_band_bilinear_exactly_inside_it_the_guided_filter(real) -> None:  # type: ignore[no-untyped-def]
    image, alpha, small = real
    band = band_mask(alpha)
    h, w = alpha.shape
    big_h, big_w = image.shape[:2]
    # each output pixel belongs to its nearest model pixel
    full_band = np.repeat(np.repeat(band, np.diff(_starts(h, big_h)), axis=0), np.diff(_starts(w, big_w)), axis=1) > 0
    assert 0.01 < full_band.mean() < 0.5  # an outline: neither empty nor the whole picture
    out, _ = EdgeBandRefiner().refine(alpha, image, small)
    bil = BilinearRefiner()(alpha, image)
    gui = GuidedRefiner()(alpha, image)
    np.testing.assert_array_equal(out[~full_band], bil[~full_band])
    # the guided filter's result in the band (it reflects at the picture's border, the band clamps)
    diff = np.abs(out[full_band].astype(np.int16) - gui[full_band])
    assert int(diff.max()) <= 2 and float(diff.mean()) < 0.2
    assert int(np.abs(out[full_band].astype(np.int16) - bil[full_band]).max()) > 20  # and it did change something
    # the alpha-only face gives the same alpha, also when it makes the model view itself
    np.testing.assert_array_equal(EdgeBandRefiner()(alpha, image), out)
    assert make_refiner("band").name == "band"


def test_decontamination_takes_the_old_background_out_of_edge_pixels() -> None:
    """A picture made as alpha * F + (1 - alpha) * B with flat F and B and a 3-pixel soft edge
    (as wide as the model's): the edge pixels' colour moves most of the way from the mix to F."""
    h, w = 54, 96
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    alpha = np.clip((xx - 40) / 3 + 0.3 * np.sin(yy / 3), 0, 1).astype(np.float32)
    fg, bg = np.array([200, 60, 40], np.float32), np.array([20, 90, 230], np.float32)
    image = np.clip(alpha[..., None] * fg + (1 - alpha[..., None]) * bg + 0.5, 0, 255).astype(np.uint8)
    out_alpha, out_img = EdgeBandRefiner().refine(alpha, image)
    edge = (alpha > 0.1) & (alpha < 0.9)
    # the picture is affine in alpha, so the guided filter gives alpha back
    assert int(np.abs(out_alpha.astype(np.int16) - np.round(alpha * 255))[edge].max()) <= 3
    before = float(np.abs(image[edge].astype(np.float32) - fg).mean())
    after = float(np.abs(out_img[edge].astype(np.float32) - fg).mean())
    assert before > 50 and after < before / 4
    plain, _ = EdgeBandRefiner(decontaminate=False).refine(alpha, image)
    np.testing.assert_array_equal(plain, out_alpha)  # the colour step leaves alpha alone
    sure = alpha >= 0.999  # untouched outside the band
    band = band_mask(alpha) > 0
    np.testing.assert_array_equal(out_img[sure & ~band], image[sure & ~band])
    assert out_img is not image


class _Keep:
    needs_alpha = True

    def __init__(self) -> None:
        self.seen: list[tuple[np.ndarray, np.ndarray]] = []

    def __call__(self, image: np.ndarray, alpha: np.ndarray, low: object = None, pts: object = None) -> np.ndarray:
        self.seen.append((image, alpha))
        return image


def test_stages_composite_the_decontaminated_picture_and_leave_the_frame_alone(real, model_path) -> None:  # type: ignore[no-untyped-def]
    image, _, _ = real
    engine = MattingEngine(model_path, providers=("cpu",), threads=1, input_size=(192, 108), downsample_ratio=0.5)
    keep = _Keep()
    stages = Stages(engine, keep, output_size=(640, 360), refiner=EdgeBandRefiner())  # type: ignore[arg-type]
    original = image.copy()
    item = stages.matte(stages.prepare(Frame(image, 0, 0.0)))
    stages.render(item)
    shown, alpha = keep.seen[0]
    assert item.small is not None and item.alpha is not None
    want_alpha, want_img = EdgeBandRefiner().refine(item.alpha, item.frame.image, item.small)
    np.testing.assert_array_equal(alpha, want_alpha)
    np.testing.assert_array_equal(shown, want_img)
    assert not np.array_equal(shown, image)
    np.testing.assert_array_equal(image, original)  # the frame itself is not written to


def test_a_compositor_that_shows_the_picture_unchanged_gets_it_unchanged(real, model_path) -> None:  # type: ignore[no-untyped-def]
    """Mode off with mattes (AlphaOnly): the output is the input picture, not its
    decontaminated copy; the matte is band's."""
    from vcam.compositing.cutout import AlphaOnly

    image, _, _ = real
    engine = MattingEngine(model_path, providers=("cpu",), threads=1, input_size=(192, 108), downsample_ratio=0.5)
    mattes: list[np.ndarray] = []
    stages = Stages(engine, AlphaOnly(), output_size=(640, 360), refiner=EdgeBandRefiner(),
                    on_alpha=lambda f, a: mattes.append(a))
    item = stages.matte(stages.prepare(Frame(image, 0, 0.0)))
    out = stages.render(item)
    np.testing.assert_array_equal(out, image)
    assert item.alpha is not None
    np.testing.assert_array_equal(mattes[0], EdgeBandRefiner()(item.alpha, image))
