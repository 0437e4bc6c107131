"""The evaluation metrics on hand-made arrays whose answers are worked out by hand."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from vcam.tools.evaluation import ClipScorer, clip_metrics, gradient_magnitude, luma

# Two frames of 1x4 pixels; the expected values are worked out in the comments.
P = np.array([[[0, 0.5, 1, 0.25]], [[1, 1, 0, 0]]], np.float32)
G = np.array([[[0, 1, 1, 0]], [[1, 0, 0, 0]]], np.float32)
Y = np.array([[[0, 0, 0, 0]], [[1.9, 2.0, 0, 100]]], np.float32)


def test_mad_mse_iou_dtssd_flicker_by_hand() -> None:
    m = clip_metrics(P, Y, G)
    # |p - g|: 0 .5 0 .25 | 0 1 0 0 -> 1.75 / 8 pixels
    assert m["MAD"] == pytest.approx(1.75 / 8 * 1e3)
    # (p - g)^2: 0 .25 0 .0625 | 0 1 0 0 -> 1.3125 / 8
    assert m["MSE"] == pytest.approx(1.3125 / 8 * 1e3)
    # p > .5 (0.5 itself is not): {2} then {0, 1}; g > .5: {1, 2} then {0}: 2 shared of 4
    assert m["IoU"] == pytest.approx(0.5)
    # dp = 1 .5 -1 -.25, dg = 1 -1 -1 0 -> differences 0 1.5 0 -.25 -> 2.3125 / 4
    assert m["dtSSD"] == pytest.approx(math.sqrt(2.3125 / 4) * 1e2)
    # luma changed by 1.9, 2.0, 0, 100: still pixels 0 and 2 (< 2 levels), |dp| = 1 and 1
    assert m["flicker"] == pytest.approx(1.0 * 1e3)


def test_without_ground_truth_only_flicker() -> None:
    m = clip_metrics(P, Y)
    assert m == {"MAD": None, "MSE": None, "Grad": None, "dtSSD": None, "IoU": None, "flicker": 1000.0}


def test_single_frame_has_no_temporal_metrics_and_perfect_scores() -> None:
    m = clip_metrics(G[:1], Y[:1], G[:1])
    assert m == {"MAD": 0.0, "MSE": 0.0, "Grad": 0.0, "dtSSD": None, "IoU": 1.0, "flicker": None}


def test_iou_is_one_when_both_are_empty() -> None:
    z = np.zeros((2, 3, 3), np.float32)
    assert clip_metrics(z, z, z)["IoU"] == 1.0


def test_flicker_is_none_when_no_pixel_is_still() -> None:
    y = np.stack([np.zeros((1, 4), np.float32), np.full((1, 4), 2.0, np.float32)])
    assert clip_metrics(P, y)["flicker"] is None


def test_gradient_of_a_ramp_is_eight_times_its_slope_away_from_the_border() -> None:
    ramp = np.tile(np.arange(40, dtype=np.float32) * 0.01, (40, 1))
    mag = gradient_magnitude(ramp)
    # Gaussian keeps a ramp (radius 6 at sigma 1.4), Sobel x is (1, 2, 1) x (-1, 0, 1): 8 * 0.01
    assert mag[8:32, 8:32] == pytest.approx(np.full((24, 24), 0.08), abs=1e-6)


def test_grad_of_a_step_edge_against_the_gaussian_weights() -> None:
    # g steps from 0 to 1 at column 20 of a 3 x 40 image; p = 0 has no gradient.
    g = np.zeros((1, 3, 40), np.float32)
    g[..., 20:] = 1.0
    w = cv2.getGaussianKernel(13, 1.4).ravel()  # the kernel GaussianBlur uses for sigma 1.4
    # blurred b(x+1) - b(x-1) is w[j-1] + w[j] along the step; Sobel multiplies it by 1+2+1
    per_row = sum((4 * (w[j - 1] + w[j])) ** 2 for j in range(1, 13)) + (4 * w[0]) ** 2 + (4 * w[12]) ** 2
    m = clip_metrics(np.zeros_like(g), np.zeros_like(g), g)
    assert m["Grad"] == pytest.approx(3 * per_row * 1e-3, rel=1e-5)


def test_grad_is_zero_for_an_offset_and_scales_with_the_gradient() -> None:
    rng = np.random.default_rng(0)
    g = cv2.GaussianBlur(rng.random((24, 32), dtype=np.float32), (0, 0), 2)
    assert clip_metrics((g + 0.2)[None], np.zeros((1, 24, 32)), g[None])["Grad"] == pytest.approx(0, abs=1e-9)
    # |grad(2g)| - |grad(g)| = |grad(g)|
    expected = float(np.square(gradient_magnitude(g).astype(np.float64)).sum()) * 1e-3
    m = clip_metrics(np.stack([2 * g, 2 * g]), np.zeros((2, 24, 32)), np.stack([g, g]))
    assert m["Grad"] == pytest.approx(expected, rel=1e-5)


def test_luma_bt601() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    assert luma(rgb) == pytest.approx(np.array([[76.245, 149.685, 29.07, 0.299 * 10 + 0.587 * 20 + 0.114 * 30]]))


def test_scorer_rejects_mixed_ground_truth_and_bad_shapes() -> None:
    s = ClipScorer()
    s.add(P[0], Y[0], G[0])
    with pytest.raises(ValueError, match="ground truth on every frame or on none"):
        s.add(P[1], Y[1], None)
    with pytest.raises(ValueError, match="same"):
        ClipScorer().add(P[0], Y[0][:, :2], None)
