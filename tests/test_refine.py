"""Alpha refinement: bilinear and guided upsampling keep shape, dtype and range; guided follows
the full-resolution picture."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vcam.compositing.refine import (
    REFINE_METHODS,
    BilinearRefiner,
    GuidedRefiner,
    guided_upsample,
    make_refiner,
    upsample_alpha,
)
from vcam.presets import RefineMethod


@pytest.mark.parametrize("method", REFINE_METHODS)
@pytest.mark.parametrize(("small", "big"), [((48, 27), (160, 90)), ((64, 36), (64, 36)), ((40, 30), (97, 61))])
def test_shape_dtype_and_range(method: str, small: tuple[int, int], big: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    alpha = (rng.random((small[1], small[0]), dtype=np.float32) * 1.4 - 0.2).astype(np.float32)
    image = rng.integers(0, 256, (big[1], big[0], 3), dtype=np.uint8)
    out = make_refiner(method)(alpha, image)
    assert out.shape == (big[1], big[0])
    assert out.dtype == np.uint8
    assert int(out.min()) == 0 and int(out.max()) == 255  # the alpha spans below 0 and above 1
    assert make_refiner(method).name == method


def test_constant_alpha_stays_constant() -> None:
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    out = guided_upsample(np.full((27, 48), 0.25, np.float32), image)
    assert out == pytest.approx(np.full((90, 160), 0.25), abs=1e-5)


def test_alpha_linear_in_the_colour_is_rebuilt_at_full_resolution() -> None:
    # Alpha that is a linear function of the colour at model size must come out as the same
    # function of the full-size colour: detail bilinear resizing cannot recover.
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)
    small = cv2.resize(image, (40, 24), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = (0.1 + 0.5 * small[..., 0] / 255 + 0.2 * small[..., 2] / 255).astype(np.float32)
    truth = 0.1 + 0.5 * image[..., 0].astype(np.float32) / 255 + 0.2 * image[..., 2].astype(np.float32) / 255
    guided = GuidedRefiner(radius=1, eps=1e-7)(alpha, image).astype(np.float32) / 255
    bilinear = BilinearRefiner()(alpha, image).astype(np.float32) / 255
    # (not exact: the refiner shrinks the frame for its guide a little differently, and rounds to 1/255)
    assert float(np.abs(guided - truth).mean()) < 4e-3
    assert float(np.abs(bilinear - truth).mean()) > 0.1


def test_sharp_edge_is_sharper_than_bilinear() -> None:
    # A person (bright) against a dark background; the model-size alpha is the blurred edge.
    h, w = 90, 160
    truth = np.zeros((h, w), np.float32)
    truth[:, 83:] = 1.0
    image = np.where(truth[..., None] > 0.5, 200, 40).astype(np.uint8).repeat(3, axis=2)
    alpha = cv2.resize(truth, (48, 27), interpolation=cv2.INTER_AREA)
    err_guided = float(np.abs(guided_upsample(alpha, image) - truth).mean())
    err_bilinear = float(np.abs(upsample_alpha(alpha, (w, h)) - truth).mean())
    assert err_guided < 0.6 * err_bilinear


def test_bilinear_refiner_matches_float_upsampling_within_a_level() -> None:
    rng = np.random.default_rng(4)
    alpha = cv2.GaussianBlur(rng.random((27, 48), dtype=np.float32), (0, 0), 2)
    image = np.zeros((90, 160, 3), np.uint8)
    exact = upsample_alpha(alpha, (160, 90)) * 255
    diff = np.abs(BilinearRefiner()(alpha, image).astype(np.float32) - exact)
    assert float(diff.max()) <= 1.5  # rounded once at model size, once after interpolating
    assert float(diff.mean()) <= 0.5


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown refine method 'bicubic'; expected one of bilinear, guided"):
        make_refiner("bicubic")
    with pytest.raises(ValueError, match="radius must be >= 1 and eps > 0"):
        GuidedRefiner(radius=0)
    with pytest.raises(ValueError, match="uint8 RGB"):
        guided_upsample(np.zeros((9, 16), np.float32), np.zeros((18, 32, 3), np.float32))


def test_method_names_match_the_config_schema() -> None:
    assert set(RefineMethod.__args__) == set(REFINE_METHODS)  # type: ignore[attr-defined]
