"""Shared check: the fitter's closed-form rotation Jacobian of a model's keypoints vs autograd."""

import roma
import torch

from hmrkit.fitting.levenberg import levers, rotation_jacobian, subtree_matrix


def assert_rotation_jacobian_matches_autograd(model, kmap, base: torch.Tensor, theta: torch.Tensor, shape: torch.Tensor,
                                              joints: list[int]) -> None:
    """``base``: (B, J, 3, 3) float64 pose whose ``joints`` are replaced by ``exp(theta)`` (B, N, 3)."""
    batch = base.shape[0]

    def keypoints(t: torch.Tensor) -> torch.Tensor:
        rot = base.clone()
        rot[:, joints] = roma.rotvec_to_rotmat(t)
        return model(rot, shape, with_vertices=False, keypoints=kmap).keypoints

    rot = base.clone()
    rot[:, joints] = roma.rotvec_to_rotmat(theta)
    parts = model.keypoint_parts(rot, shape, kmap)
    assert torch.allclose(parts.keypoints, keypoints(theta), atol=1e-10)
    ours = rotation_jacobian(parts, levers(parts, subtree_matrix(model.skeleton.parents, joints), joints), joints, theta)
    full = torch.autograd.functional.jacobian(keypoints, theta)  # (B, K, 3, B, N, 3)
    reference = torch.stack([full[b, :, :, b] for b in range(batch)])
    assert torch.allclose(ours, reference, atol=1e-9)
