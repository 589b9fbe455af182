import math

import cv2
import numpy as np
import pytest
import torch

from hmrkit.geometry.cameras import (
    PerspectiveCamera,
    WeakPerspectiveCamera,
    default_focal_length,
    perspective_project,
    perspective_to_weak,
    weak_perspective_project,
    weak_to_perspective_translation,
)
from hmrkit.geometry.crops import CropBox, normalized_to_image


def test_default_focal_length():
    assert default_focal_length(480, 640, fov_degrees=90.0) == pytest.approx(320.0)  # tan(45) = 1
    assert default_focal_length(640, 480) == pytest.approx(640 * math.sqrt(3) / 2)  # 60 deg: 0.866 * max side
    cam = PerspectiveCamera.from_image_size(480, 640)
    assert (cam.cx, cam.cy) == (319.5, 239.5)
    with pytest.raises(ValueError):
        default_focal_length(0, 640)


def test_perspective_project_by_hand():
    cam = PerspectiveCamera(100.0, 100.0, 50.0, 40.0)
    pts = torch.tensor([[[1.0, -0.5, 2.0]]])
    assert torch.allclose(perspective_project(pts, cam), torch.tensor([[[100.0, 15.0]]]))
    shifted = perspective_project(torch.tensor([[[1.0, -0.5, 0.0]]]), cam, translation=torch.tensor([[0.0, 0.0, 2.0]]))
    assert torch.allclose(shifted, torch.tensor([[[100.0, 15.0]]]))


def test_perspective_project_matches_opencv_batched_intrinsics():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1, 1, (2, 7, 3)) + [0, 0, 4]
    fx, fy = np.array([500.0, 900.0]), np.array([510.0, 880.0])
    cx, cy = np.array([320.0, 100.0]), np.array([240.0, 300.0])
    cam = PerspectiveCamera(*(torch.from_numpy(v) for v in (fx, fy, cx, cy)))
    ours = perspective_project(torch.from_numpy(pts), cam)
    for b in range(2):
        K = np.array([[fx[b], 0, cx[b]], [0, fy[b], cy[b]], [0, 0, 1]])
        ref, _ = cv2.projectPoints(pts[b], np.zeros(3), np.zeros(3), K, None)
        assert np.allclose(ours[b].numpy(), ref[:, 0], atol=1e-9)
    assert torch.equal(cam.matrix()[1], torch.from_numpy(K))


def test_weak_perspective_project_by_hand():
    cam = WeakPerspectiveCamera.from_vector(torch.tensor([[0.5, 0.2, -0.1]]))
    out = weak_perspective_project(torch.tensor([[[1.0, 1.0, 5.0]]]), cam)
    assert torch.allclose(out, torch.tensor([[[0.6, 0.45]]]))  # 0.5 * (1.2, 0.9); depth ignored


def test_weak_to_perspective_by_hand():
    box = CropBox(torch.tensor([[300.0, 200.0]]), torch.tensor([100.0]))
    cam = PerspectiveCamera(1000.0, 1000.0, 320.0, 240.0)
    T = weak_to_perspective_translation(WeakPerspectiveCamera(0.8, 0.1, 0.2), box, cam)
    # tz = 2 f / (s b) = 2000 / 80 = 25; tx = 0.1 + 2 (300 - 320) / 80; ty = 0.2 + 2 (200 - 240) / 80
    assert torch.allclose(T, torch.tensor([[0.1 - 0.5, 0.2 - 1.0, 25.0]]))


def _setup():
    torch.manual_seed(0)
    box = CropBox(torch.tensor([[300.0, 200.0], [900.0, 650.0]], dtype=torch.float64),
                  torch.tensor([220.0, 480.0], dtype=torch.float64))
    cam = PerspectiveCamera.from_image_size(1080, 1920)
    weak = WeakPerspectiveCamera(torch.tensor([0.9, 1.1]), torch.tensor([0.05, -0.1]), torch.tensor([0.2, 0.0]))
    return box, cam, weak


def test_weak_and_perspective_agree_on_the_plane_and_near_it():
    box, cam, weak = _setup()
    T = weak_to_perspective_translation(weak, box, cam)
    body = torch.rand(2, 30, 3, dtype=torch.float64) - 0.5  # a 1 m body
    flat = body * torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    weak_px = normalized_to_image(weak_perspective_project(flat, weak), box)
    assert torch.allclose(perspective_project(flat, cam, T), weak_px, atol=1e-9)  # exact at Z = 0
    # +-5 cm of depth (bodies 6-17 m away here): the two differ, by under 2 % of the box
    near = flat + body * torch.tensor([0.0, 0.0, 0.1], dtype=torch.float64)
    diff = (perspective_project(near, cam, T) - weak_px).norm(dim=-1).amax(-1)
    assert (diff < 0.02 * box.size).all() and (diff > 0).all()


def test_weak_perspective_round_trip():
    box, cam, weak = _setup()
    back = perspective_to_weak(weak_to_perspective_translation(weak, box, cam), box, cam)
    for a, b in ((back.s, weak.s), (back.tx, weak.tx), (back.ty, weak.ty)):
        assert torch.allclose(a.double(), b.double(), atol=1e-12)


def test_bad_shapes_raise():
    cam = PerspectiveCamera(100.0, 100.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        perspective_project(torch.ones(5, 3), cam)
    with pytest.raises(ValueError, match="camera field fx"):
        perspective_project(torch.ones(2, 5, 3), PerspectiveCamera(torch.ones(3), 1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        WeakPerspectiveCamera.from_vector(torch.ones(3))
    with pytest.raises(ValueError, match="crop box center"):
        perspective_to_weak(torch.ones(2, 3), CropBox(torch.zeros(3, 2), torch.ones(3)), cam)
