"""Linear blend skinning for SMPL-family models, as plain batched functions.

Sizes: ``B`` batch, ``V`` vertices, ``J`` joints, ``S`` shape coefficients, ``P = 9 (J - 1)`` pose
features. Rotations are matrices, SMPL-style: joint ``j``'s rotation is relative to its parent
and joint 0's is the global orientation. Everything is differentiable and works in float32 or
float64 on any device; forward kinematics and skinning are :mod:`hmrkit.body.kinematics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hmrkit.body import kinematics
from hmrkit.body.kinematics import forward_kinematics, homogeneous, skinning_transforms, tree_of


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


def batch_rigid_transform(
    rotations: torch.Tensor, rest_joints: torch.Tensor, parents: Sequence[int], scales: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward kinematics: posed joints ``(B, J, 3)`` and rest-to-posed transforms ``(B, J, 4, 4)``.

    ``transforms[:, j]`` maps a rest-pose point rigidly attached to joint ``j`` to its posed
    position (so it is what skinning blends); its rotation block is joint ``j``'s world rotation.
    ``parents[j]`` must precede ``j``; ``parents[0]`` is ignored (the root). The chain itself is
    :func:`hmrkit.body.kinematics.forward_kinematics`, shared with every body model.
    """
    world_rotations, posed_joints = forward_kinematics(rotations, rest_joints, tree_of(tuple(int(p) for p in parents)), scales)
    return posed_joints, homogeneous(skinning_transforms(world_rotations, posed_joints, rest_joints))


def skin(vertices: torch.Tensor, transforms: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning: rest vertices ``(B, V, 3)``, transforms ``(B, J, 4, 4)``, weights ``(V, J)``."""
    return kinematics.skin(vertices, weights, transforms[..., :3, :])


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
