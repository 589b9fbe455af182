"""Linear blend skinning for SMPL-family models, as plain batched functions.

Sizes: ``B`` batch, ``V`` vertices, ``J`` joints, ``S`` shape coefficients, ``P = 9 (J - 1)`` pose
features. Rotations are matrices, SMPL-style: joint ``j``'s rotation is relative to its parent
and joint 0's is the global orientation. Everything is differentiable and works in float32 or
float64 on any device; the only Python loop is over joints (forward kinematics).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def blend_shapes(coeffs: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Per-vertex offsets ``(B, V, 3)``: coefficients ``(B, S)`` times directions ``(V, 3, S)``.

    Serves both shape blend shapes (betas, expressions) and pose blend shapes (pose features).
    """
    return torch.einsum("bs,vcs->bvc", coeffs, directions)


def vertices2joints(regressor: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """Joints ``(B, J, 3)`` regressed from vertices ``(B, V, 3)`` with a ``(J, V)`` matrix (dense or sparse)."""
    if regressor.is_sparse:
        regressor = regressor.to_dense()
    return torch.einsum("jv,bvc->bjc", regressor, vertices)


def pose_features(rotations: torch.Tensor) -> torch.Tensor:
    """SMPL's pose-corrective input ``(B, 9 (J - 1))``: ``R - I`` of every joint but the root, row-major."""
    eye = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
    return (rotations[:, 1:] - eye).flatten(1)


def _homogeneous(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """``(..., 4, 4)`` rigid transforms from ``(..., 3, 3)`` rotations and ``(..., 3)`` translations."""
    top = torch.cat([rotation, translation.unsqueeze(-1)], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1
    return torch.cat([top, bottom], dim=-2)


def batch_rigid_transform(
    rotations: torch.Tensor, rest_joints: torch.Tensor, parents: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward kinematics: posed joints ``(B, J, 3)`` and rest-to-posed transforms ``(B, J, 4, 4)``.

    ``transforms[:, j]`` maps a rest-pose point rigidly attached to joint ``j`` to its posed
    position (so it is what skinning blends); its rotation block is joint ``j``'s world rotation.
    ``parents[j]`` must precede ``j``; ``parents[0]`` is ignored (the root).
    """
    parent_index = list(parents[1:])
    parent_rest = torch.cat([torch.zeros_like(rest_joints[:, :1]), rest_joints[:, parent_index]], dim=1)
    local = _homogeneous(rotations, rest_joints - parent_rest)
    chain = [local[:, 0]]
    for j, p in enumerate(parent_index, start=1):
        chain.append(chain[p] @ local[:, j])
    world = torch.stack(chain, dim=1)
    posed_joints = world[..., :3, 3]
    world_rotations = world[..., :3, :3]
    shift = posed_joints - (world_rotations @ rest_joints.unsqueeze(-1)).squeeze(-1)
    return posed_joints, _homogeneous(world_rotations, shift)


def skin(vertices: torch.Tensor, transforms: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning: rest vertices ``(B, V, 3)``, transforms ``(B, J, 4, 4)``, weights ``(V, J)``."""
    per_vertex = torch.einsum("vj,bjrc->bvrc", weights, transforms[:, :, :3, :])  # (B, V, 3, 4)
    return (per_vertex[..., :3] @ vertices.unsqueeze(-1)).squeeze(-1) + per_vertex[..., 3]


def lbs(
    shape: torch.Tensor,
    rotations: torch.Tensor,
    v_template: torch.Tensor,
    shapedirs: torch.Tensor,
    posedirs: torch.Tensor,
    joint_regressor: torch.Tensor,
    parents: Sequence[int],
    weights: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The whole SMPL function: ``(vertices (B, V, 3), joints (B, J, 3), transforms (B, J, 4, 4))``.

    ``shape (B, S)``, ``rotations (B, J, 3, 3)``, ``v_template (V, 3)``, ``shapedirs (V, 3, S)``,
    ``posedirs (V, 3, P)`` (the files' layout), ``joint_regressor (J, V)``, ``weights (V, J)``.
    """
    v_shaped = v_template + blend_shapes(shape, shapedirs)
    joints, transforms = batch_rigid_transform(rotations, vertices2joints(joint_regressor, v_shaped), parents)
    v_posed = v_shaped + blend_shapes(pose_features(rotations), posedirs)
    return skin(v_posed, transforms, weights), joints, transforms
