"""Shared check: the fit's compiled keypoints and their Jacobian against the model's PyTorch
forward and autograd (any body model with ``compile_keypoints`` and ``shape_blend``)."""

import numpy as np
import roma
import torch

from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.body.kinematics import tree_of
from hmrkit.fitting.keypoint_kernels import KernelSkeleton, keypoint_jacobian, pose


def _per_person(full: torch.Tensor) -> torch.Tensor:
    """(B, K, 3, B, ...) autograd Jacobian of a batched function -> (B, K, 3, ...) of each person."""
    return torch.stack([full[b, :, :, b] for b in range(full.shape[0])])


def assert_kernels_match_autograd(model, kmap, rotations: torch.Tensor, shape: torch.Tensor, scales: torch.Tensor,
                                  scaled: list[int]) -> None:
    """``rotations`` (B, J, 3, 3), ``shape`` (B, S), ``scales`` (B, J), all float64 on a float64 model;
    ``scaled``: core joints whose log-scale is an unknown."""
    batch = rotations.shape[0]
    skeleton = KernelSkeleton.build(tree_of(tuple(model.skeleton.parents)), kmap, NUM_BODY_CORE)
    theta = roma.rotmat_to_rotvec(rotations[:, :NUM_BODY_CORE])
    coefficients, rest = model.shape_blend(shape)

    def forward(t: torch.Tensor, s: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        rot = torch.cat([roma.rotvec_to_rotmat(t), rotations[:, NUM_BODY_CORE:]], dim=1)
        sc = scales.clone()
        sc[:, scaled] = log_scale.exp()
        return model(rot, s, with_vertices=False, keypoints=kmap, scales=sc).keypoints

    log_scale = scales[:, scaled].log()
    root = np.broadcast_to(np.eye(3), (batch, 3, 3))
    posed = pose(skeleton, root, theta.numpy(), rotations[:, NUM_BODY_CORE:].numpy(), scales.numpy(), rest.numpy(),
                 coefficients.numpy())
    np.testing.assert_allclose(posed.keypoints, forward(theta, shape, log_scale).numpy(), atol=1e-10)
    np.testing.assert_allclose(posed.core_rotations, roma.rotvec_to_rotmat(theta).numpy(), atol=1e-12)

    # shape directions: one per shape parameter, the blend's own derivative (autograd)
    blend = torch.autograd.functional.jacobian(lambda s: model.shape_blend(s), shape)
    d_coefficients = torch.stack([blend[0][b, :, b] for b in range(batch)]).permute(0, 2, 1)  # (B, S, C)
    d_rest = torch.stack([blend[1][b, :, :, b] for b in range(batch)]).permute(0, 3, 1, 2)  # (B, S, J, 3)
    ours = keypoint_jacobian(skeleton, posed, d_coefficients.numpy(), d_rest.numpy(), np.asarray(scaled))
    d_theta, d_shape, d_scale = (_per_person(j) for j in torch.autograd.functional.jacobian(forward, (theta, shape, log_scale)))
    n, s = 3 * NUM_BODY_CORE, shape.shape[1]
    np.testing.assert_allclose(ours[..., :n], d_theta.flatten(3).numpy(), atol=1e-9)
    np.testing.assert_allclose(ours[..., n : n + 3], np.broadcast_to(np.eye(3), ours[..., n : n + 3].shape), atol=0)
    np.testing.assert_allclose(ours[..., n + 3 : n + 3 + s], d_shape.numpy(), atol=1e-9)
    np.testing.assert_allclose(ours[..., n + 3 + s :], d_scale.numpy(), atol=1e-9)
