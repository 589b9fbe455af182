"""The body fit's compiled kernels against independent computations: roma's exponential map, the
model's PyTorch forward and autograd, and the landmark terms written out in PyTorch."""

import numpy as np
import roma
import torch

from hmrkit.body.anny_keypoints import anny_keypoint_library
from hmrkit.body.anny_model import load_anny_body
from hmrkit.body.keypoints import build_keypoint_map
from hmrkit.fitting.body_fit import centring_matrix
from hmrkit.fitting.keypoint_kernels import LandmarkTerms, _exp_and_right, landmark_residuals
from hmrkit.fitting.targets import FIT_KEYPOINTS
from hmrkit.geometry.cameras import PerspectiveCamera, perspective_project

from jacobian_check import assert_kernels_match_autograd


def test_exponential_and_right_jacobian_match_roma():
    torch.manual_seed(0)
    theta = torch.randn(1, 5, 3, dtype=torch.float64) * torch.tensor([[0.0], [1e-5], [0.3], [1.5], [3.0]], dtype=torch.float64)
    d = torch.randn(1, 5, 3, dtype=torch.float64) * 1e-6
    rotation, right = (torch.from_numpy(a) for a in _exp_and_right(theta.numpy()))
    assert torch.allclose(rotation, roma.rotvec_to_rotmat(theta), atol=1e-14)
    exact = roma.rotvec_to_rotmat(theta + d)
    linear = rotation @ roma.rotvec_to_rotmat((right @ d[..., None])[..., 0])  # exp(t + d) ~ exp(t) exp(Jr d)
    assert (exact - linear).abs().max() < 1e-11


def test_anny_keypoints_and_jacobian_match_the_forward_and_autograd():
    model = load_anny_body().double()  # a private float64 copy (construction is cheap)
    kmap = model.compile_keypoints(build_keypoint_map(anny_keypoint_library(), model.skeleton, FIT_KEYPOINTS))
    g = torch.Generator().manual_seed(1)
    rotations = roma.rotvec_to_rotmat(torch.randn(2, model.num_joints, 3, generator=g, dtype=torch.float64) * 0.4)
    shape = 0.1 + 0.8 * torch.rand(2, 6, generator=g, dtype=torch.float64)
    scales = torch.ones(2, model.num_joints, dtype=torch.float64)
    scales[0, model.skeleton.index("left_elbow")] = 1.2
    scales[1, model.skeleton.index("right_knee")] = 0.8
    scaled = [model.skeleton.index(n) for n in ("left_shoulder", "left_elbow", "right_knee")]
    assert_kernels_match_autograd(model, kmap, rotations, shape, scales, scaled)


def _landmark_case(batch: int = 2, k: int = len(FIT_KEYPOINTS), columns: int = 7, seed: int = 2):
    g = np.random.default_rng(seed)
    points = np.concatenate([g.normal(0, 0.5, (batch, k, 2)), g.uniform(3, 5, (batch, k, 1))], axis=2)
    d_points = g.normal(size=(batch, k, 3, columns))
    camera = PerspectiveCamera(900.0, 880.0, 300.0, 200.0)
    xy_weight, world_weight = g.uniform(0, 1, (batch, k)), g.uniform(0, 1, (batch, k))
    xy_weight[:, :5] = 0  # unseen landmarks weigh nothing
    terms = LandmarkTerms(xy=g.uniform(0, 600, (batch, k, 2)), xy_weight=xy_weight, world=g.normal(0, 0.3, (batch, k, 3)),
                          world_weight=world_weight, box_size=np.array([400.0, 250.0]),
                          intrinsics=np.tile([900.0, 880.0, 300.0, 200.0], (batch, 1)), centring=centring_matrix().double().numpy())
    return points, d_points, camera, terms


def test_landmark_residuals_match_a_pytorch_statement_of_the_objective():
    points, d_points, camera, terms = _landmark_case()
    weight_2d, weight_3d, sigma = 1.0, 2.0, 0.1
    cost, residual, jacobian = landmark_residuals(terms, points, d_points, weight_2d, weight_3d, sigma)

    p, dp = torch.from_numpy(points), torch.from_numpy(d_points)
    error = perspective_project(p, camera) - torch.from_numpy(terms.xy)
    d2 = error.square().sum(-1)
    s2 = (sigma * torch.from_numpy(terms.box_size)[:, None]).square()
    w = weight_2d * torch.from_numpy(terms.xy_weight)
    scale = (w * s2).sqrt() / (d2 + s2)
    full = torch.autograd.functional.jacobian(lambda q: perspective_project(q, camera), p)  # (B, K, 2, B, K, 3)
    projection = torch.stack([torch.stack([full[b, k, :, b, k] for k in range(p.shape[1])]) for b in range(p.shape[0])])
    root = (weight_3d * torch.from_numpy(terms.world_weight)).sqrt()[..., None]
    centring = centring_matrix().double()
    error_3d = root * (centring @ p - torch.from_numpy(terms.world))
    expected_cost = (w * d2 / (d2 + s2)).sum(1) + error_3d.square().sum((1, 2))
    expected_residual = torch.cat([(scale[..., None] * error).flatten(1), error_3d.flatten(1)], dim=1)
    expected_jacobian = torch.cat([(scale[..., None, None] * (projection @ dp)).flatten(1, 2),
                                   (root[..., None] * torch.einsum("kl,blcp->bkcp", centring, dp)).flatten(1, 2)], dim=1)
    np.testing.assert_allclose(cost, expected_cost.numpy(), rtol=1e-12)
    np.testing.assert_allclose(residual, expected_residual.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jacobian, expected_jacobian.numpy(), rtol=1e-10, atol=1e-12)
    # without the 2D term (the fit's first stage) only the 3D rows remain; without a Jacobian, the same values
    cost_3d, residual_3d, none = landmark_residuals(terms, points, None, 0.0, weight_3d, sigma)
    assert none is None
    np.testing.assert_allclose(residual_3d, error_3d.flatten(1).numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cost_3d, error_3d.square().sum((1, 2)).numpy(), rtol=1e-12)

