"""Levenberg-Marquardt pieces: closed-form Jacobians against autograd, and the damped step."""

import roma
import torch

from hmrkit.body.anny_keypoints import anny_keypoint_library
from hmrkit.body.anny_model import load_anny_body
from hmrkit.body.keypoints import build_keypoint_map
from hmrkit.fitting.levenberg import damped_step, projection_jacobian, levers, rotation_jacobian, so3_right_jacobian, subtree_matrix
from hmrkit.fitting.targets import FIT_KEYPOINTS
from hmrkit.geometry.cameras import PerspectiveCamera, perspective_project

from jacobian_check import assert_rotation_jacobian_matches_autograd


def test_right_jacobian_matches_exponential_map():
    torch.manual_seed(0)
    theta = torch.randn(5, 3, dtype=torch.float64) * torch.tensor([[0.0], [1e-5], [0.3], [1.5], [3.0]], dtype=torch.float64)
    d = torch.randn(5, 3, dtype=torch.float64) * 1e-6
    exact = roma.rotvec_to_rotmat(theta + d)
    linear = roma.rotvec_to_rotmat(theta) @ roma.rotvec_to_rotmat((so3_right_jacobian(theta) @ d[..., None])[..., 0])
    assert (exact - linear).abs().max() < 1e-11


def test_subtree_matrix_of_a_small_tree():
    #   0 -> 1 -> 2, 0 -> 3
    m = subtree_matrix((-1, 0, 1, 0), [0, 1, 3])
    assert m.tolist() == [[1, 1, 1, 1], [0, 1, 1, 0], [0, 0, 0, 1]]


def test_rotation_jacobian_matches_autograd():
    model = load_anny_body().double()  # a private float64 copy (construction is cheap)
    kmap = model.compile_keypoints(build_keypoint_map(anny_keypoint_library(), model.skeleton, FIT_KEYPOINTS))
    torch.manual_seed(1)
    batch, joints = 2, [0, 1, 4, 16, 18, 20]
    base = roma.rotvec_to_rotmat(torch.randn(batch, model.num_joints, 3, dtype=torch.float64) * 0.3)
    theta = torch.randn(batch, len(joints), 3, dtype=torch.float64) * 0.5
    shape = torch.rand(batch, 6, dtype=torch.float64)

    assert_rotation_jacobian_matches_autograd(model, kmap, base, theta, shape, joints)


def test_projection_jacobian_matches_autograd():
    camera = PerspectiveCamera(900.0, 880.0, 300.0, 200.0)
    points = torch.tensor([[[0.1, -0.2, 3.0], [-0.5, 0.4, 2.0]]], dtype=torch.float64)
    full = torch.autograd.functional.jacobian(lambda p: perspective_project(p, camera), points)
    reference = torch.stack([full[0, k, :, 0, k] for k in range(2)])[None]
    assert torch.allclose(projection_jacobian(points, camera), reference)


def test_damped_step_solves_a_linear_problem_and_leaves_fixed_unknowns():
    torch.manual_seed(2)
    a = torch.randn(3, 10, 4, dtype=torch.float64)
    a[:, :, 3] = 0  # an unknown held fixed: its column is zero
    x_true = torch.randn(3, 4, dtype=torch.float64)
    x_true[:, 3] = 0
    residual = -(a @ x_true[..., None])[..., 0]  # r(x) = a x + residual, zero at x_true
    step = damped_step(a, residual, torch.zeros(3, dtype=torch.float64))
    assert torch.allclose(step, x_true, atol=1e-5)
    damped = damped_step(a, residual, torch.full((3,), 10.0, dtype=torch.float64))
    assert (damped.norm(dim=1) < step.norm(dim=1)).all()
