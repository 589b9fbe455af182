"""Crops and boxes of the perception front end, checked against direct pixel arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from hmrkit.perception.geometry import (
    Crop,
    clip_box,
    cut,
    halve_to,
    hand_crop,
    iou,
    overlap,
    person_crop_from_face,
    pixel_box,
    square_tiles,
)


def _coordinate_image(h: int = 120, w: int = 200) -> np.ndarray:
    """Channel 0 holds x, channel 1 holds y: a pixel says where it came from."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([xx, yy, np.full_like(xx, 255)]).astype(np.uint8)


def test_cut_inside_is_the_window() -> None:
    im = _coordinate_image()
    patch, scale = cut(im, Crop(30, 20, 50, 40), max_side=100)
    assert scale == 1.0 and patch.shape == (40, 50, 3) and patch.flags.c_contiguous
    np.testing.assert_array_equal(patch, im[20:60, 30:80])


def test_cut_past_the_border_pads_black_and_keeps_coordinates() -> None:
    im = _coordinate_image()
    patch, scale = cut(im, Crop(-10, 100, 40, 40), max_side=100)
    assert scale == 1.0 and patch.shape == (40, 40, 3)
    assert (patch[:, :10] == 0).all() and (patch[20:] == 0).all()
    # inside part: patch pixel (r, c) is image pixel (100 + r, -10 + c)
    np.testing.assert_array_equal(patch[:20, 10:, 0], np.tile(np.arange(0, 30), (20, 1)))
    np.testing.assert_array_equal(patch[:20, 10:, 1], np.tile(np.arange(100, 120)[:, None], (1, 30)))


def test_cut_inside_is_never_resampled() -> None:
    im = _coordinate_image()
    patch, scale = cut(im, Crop(10, 10, 160, 80), max_side=40)
    assert scale == 1.0
    np.testing.assert_array_equal(patch, im[10:90, 10:170])


@pytest.mark.parametrize("crop", [Crop(-40, 30, 160, 160), Crop(100, -20, 160, 80)])
def test_cut_downscaled_maps_back(crop: Crop) -> None:
    im = _coordinate_image()
    patch, scale = cut(im, crop, max_side=40)
    assert max(patch.shape[:2]) == 40 and scale == pytest.approx(40 / 160)
    # patch pixel centre (c + 0.5) / scale + x0 is where it came from (+- interpolation blur)
    for r, c in [(3, 5), (10, 20), (15, 30)]:
        x = crop.x0 + (c + 0.5) / scale - 0.5
        y = crop.y0 + (r + 0.5) / scale - 0.5
        if 0 <= x < im.shape[1] - 2 and 0 <= y < im.shape[0] - 2:
            assert abs(int(patch[r, c, 0]) - x) <= 2.5 and abs(int(patch[r, c, 1]) - y) <= 2.5


@pytest.mark.parametrize("shape", [(120, 200), (121, 201), (37, 900)])
def test_halve_to_takes_two_by_two_means_until_it_fits(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    im = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    small, scale = halve_to(im, max_side=60)
    halvings = int(np.ceil(np.log2(max(shape) / 60)))
    assert scale == 0.5**halvings and max(small.shape[:2]) <= 60
    # independent: means of 2^k x 2^k blocks (the odd last rows / columns of each level dropped)
    k = 2**halvings
    h, w = small.shape[:2]
    blocks = im[: h * k, : w * k].reshape(h, k, w, k, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(small.astype(np.float64) - blocks).max() <= halvings  # one rounding per level
    same, one = halve_to(im, max_side=max(shape))
    assert same is im and one == 1.0


def test_boxes() -> None:
    assert clip_box((-5, -5, 500, 50), 100, 80) == (0.0, 0.0, 100.0, 50.0)
    assert clip_box((120, 10, 130, 20), 100, 80) == (100.0, 10.0, 100.0, 20.0)
    assert pixel_box((0.5, 1.2, 9.1, 9.9), 8, 8) == (0, 1, 8, 8)
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0


@pytest.mark.parametrize("w,h,side", [(1862, 611, 611), (1862, 611, 305), (500, 500, 500), (300, 900, 150)])
def test_square_tiles_cover_the_image(w: int, h: int, side: int) -> None:
    tiles = square_tiles(w, h, side)
    covered = np.zeros((h, w), bool)
    for t in tiles:
        assert t.width == t.height == min(side, w, h)
        assert t.x0 >= 0 and t.y0 >= 0 and t.x0 + t.width <= w and t.y0 + t.height <= h
        covered[int(t.y0): int(t.y0 + t.height), int(t.x0): int(t.x0 + t.width)] = True
    assert covered.all()


def test_hand_crop_lies_past_the_wrist() -> None:
    shoulder, elbow, wrist = np.array([0.0, 0.0]), np.array([0.0, 100.0]), np.array([0.0, 180.0])
    knuckles = np.array([0.0, 200.0])
    crop = hand_crop(shoulder, elbow, wrist, knuckles, scale=3.0)
    assert crop is not None
    length = max(80.0, 0.9 * 100.0, 2 * 20.0)  # forearm, upper arm, knuckles rule
    assert crop.width == crop.height == pytest.approx(3.0 * length)
    np.testing.assert_allclose(crop.centre, wrist + [0.0, 0.35 * length])
    # a bent wrist pulls the centre towards the knuckles
    bent = hand_crop(shoulder, elbow, wrist, np.array([20.0, 180.0]), scale=3.0)
    assert bent is not None and bent.centre[0] > 0 and bent.centre[1] > wrist[1]
    # a collapsed arm gives no crop
    p = np.array([5.0, 5.0])
    assert hand_crop(p, p, p, p, scale=3.0) is None


def test_person_crop_from_face() -> None:
    crop = person_crop_from_face((90, 50, 110, 70))  # 20 px face
    assert crop.box == pytest.approx((50, 30, 150, 230))


def test_overlap_is_the_intersection_over_the_smaller_box() -> None:
    """Against counted pixels: the share of the smaller box's pixels that the other covers."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        a, b = (tuple(float(v) for v in np.r_[np.sort(rng.integers(0, 40, 2)), np.sort(rng.integers(0, 40, 2))][[0, 2, 1, 3]])
                for _ in range(2))
        masks = []
        for x0, y0, x1, y1 in (a, b):
            m = np.zeros((40, 40), bool)
            m[int(y0):int(y1), int(x0):int(x1)] = True
            masks.append(m)
        smaller = min(m.sum() for m in masks)
        expected = (masks[0] & masks[1]).sum() / smaller if smaller else 0.0
        assert overlap(a, b) == pytest.approx(expected) == pytest.approx(overlap(b, a))
    assert overlap((0, 0, 10, 10), (2, 2, 4, 4)) == 1.0 and iou((0, 0, 10, 10), (2, 2, 4, 4)) == pytest.approx(0.04)
