import numpy as np
import pytest
import torch

from hmrkit.geometry.crops import (
    CropBox,
    box_from_keypoints,
    crop_affine,
    crop_to_image,
    image_to_crop,
    image_to_normalized,
    normalized_to_image,
    warp_to_crop,
)


def test_box_from_keypoints_by_hand():
    kp = torch.tensor([[10.0, 20.0], [30.0, 60.0], [500.0, 500.0]])
    box = box_from_keypoints(kp, visible=torch.tensor([True, True, False]), padding=1.2)
    assert torch.allclose(box.center, torch.tensor([20.0, 40.0]))  # centre of the 20 x 40 rectangle
    assert box.size.item() == pytest.approx(48.0)  # 1.2 * longer side


def test_box_from_keypoints_batched_and_one_point():
    kp = torch.zeros(3, 4, 2)
    box = box_from_keypoints(kp, min_size=5.0)
    assert box.center.shape == (3, 2) and torch.all(box.size == 5.0)


def test_point_maps_by_hand():
    box = CropBox(torch.tensor([100.0, 100.0]), torch.tensor(50.0))
    pts = torch.tensor([[100.0, 100.0], [75.0, 75.0], [125.0, 100.0]])
    # crop 25 px: scale 1/2, box centre -> (25 - 1) / 2 = 12, box edge -> outer pixel edge -0.5 / 24.5
    assert torch.allclose(image_to_crop(pts, box, 25), torch.tensor([[12.0, 12.0], [-0.5, -0.5], [24.5, 12.0]]))
    assert torch.allclose(image_to_normalized(pts, box), torch.tensor([[0.0, 0.0], [-1.0, -1.0], [1.0, 0.0]]))


def test_round_trips_exact_and_numpy_in_numpy_out():
    rng = np.random.default_rng(0)
    box = CropBox(rng.uniform(0, 500, (4, 2)), rng.uniform(20, 300, 4))
    pts = rng.uniform(-100, 600, (4, 17, 2))
    crop = image_to_crop(pts, box, 256)
    assert isinstance(crop, np.ndarray) and crop.shape == pts.shape
    assert np.allclose(crop_to_image(crop, box, 256), pts, atol=1e-10)
    assert np.allclose(normalized_to_image(image_to_normalized(pts, box), box), pts, atol=1e-10)


def test_affine_matches_point_map():
    box = CropBox(torch.tensor([[40.0, 70.0], [300.0, 20.0]], dtype=torch.float64), torch.tensor([33.0, 410.0]))
    pts = torch.rand(2, 9, 2, dtype=torch.float64) * 400
    M = crop_affine(box, 64)
    via_matrix = pts @ M[..., :2].transpose(-1, -2) + M[..., None, :, 2]
    assert torch.allclose(via_matrix, image_to_crop(pts, box, 64), atol=1e-10)


def test_warp_puts_pixels_where_the_point_map_says():
    image = np.zeros((100, 120, 3), dtype=np.uint8)
    image[52, 37] = (255, 128, 7)  # row y = 52, column x = 37
    # scale 1 and an integer shift: bilinear sampling is exact
    box = CropBox(torch.tensor([40.5, 50.5], dtype=torch.float64), torch.tensor(32.0, dtype=torch.float64))
    crop = warp_to_crop(image, box, 32)
    assert crop.shape == (32, 32, 3) and crop.dtype == np.uint8
    x, y = image_to_crop(np.array([[37.0, 52.0]]), box, 32)[0]
    assert (x, y) == (12.0, 17.0)
    assert tuple(crop[17, 12]) == (255, 128, 7) and crop.sum() == 255 + 128 + 7


def test_warp_downscale_and_border():
    image = np.full((64, 64), 200, dtype=np.uint8)
    # box twice the image: the image fills the middle half of the crop, the rest is the border value
    crop = warp_to_crop(image, CropBox([32.0 - 0.5, 32.0 - 0.5], 128.0), 32, border_value=9)
    assert crop.shape == (32, 32)
    assert (crop[10:22, 10:22] == 200).all() and crop[0, 0] == 9 and crop[31, 31] == 9


def test_bad_boxes_and_points_raise():
    with pytest.raises(ValueError, match=r"center must have shape \(\.\.\., 2\)"):
        CropBox(torch.zeros(3), torch.tensor(1.0))
    with pytest.raises(ValueError, match="size must have shape"):
        CropBox(torch.zeros(2, 2), torch.ones(3))
    with pytest.raises(ValueError, match="positive"):
        CropBox(torch.zeros(2), torch.tensor(0.0))
    box = CropBox(torch.zeros(2), torch.tensor(10.0))
    with pytest.raises(ValueError, match="points must have shape"):
        image_to_crop(torch.zeros(5, 3), box, 32)
    with pytest.raises(ValueError, match="one box"):
        warp_to_crop(np.zeros((8, 8, 3), np.uint8), CropBox(torch.zeros(2, 2), torch.ones(2)), 4)
    with pytest.raises(ValueError, match="no visible keypoint"):
        box_from_keypoints(torch.zeros(4, 2), visible=torch.zeros(4, dtype=torch.bool))
