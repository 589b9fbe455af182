"""Keypoints of a linear-blend-skinned model without skinning any vertex, shared by every body model.

A keypoint is ``sum_j w_j joint_j + sum_v a_v vertex_v`` (:class:`~hmrkit.body.keypoints.KeypointMap`).
When the rest mesh is linear in the shape coefficients (Anny's phenotype basis, SMPL's betas)
and the skinning weights are fixed, the vertex part can be pre-skinned per joint once:
``sum_v a_v vertex_v = sum_j T_j (sum_v a_v W_vj [rest_v; 1])`` with ``T_j`` joint ``j``'s
rest-to-posed transform. :func:`compile_skinned_keypoints` precomputes the bracket (and its
shape directions); :func:`skinned_keypoint_parts` keeps it split per joint, which is what the
fitter's analytic Jacobians need (every part moves rigidly with its joint).
"""

from __future__ import annotations

import dataclasses

import torch

from hmrkit.body.keypoints import KeypointMap


@dataclasses.dataclass
class KeypointParts:
    """Posed keypoints split per joint: ``keypoints = parts.sum(2)``; a part moves rigidly with its joint."""

    world_rotations: torch.Tensor  # (B, J, 3, 3)
    joints: torch.Tensor  # (B, J, 3) posed joint positions
    parts: torch.Tensor  # (B, K, J, 3)
    weights: torch.Tensor  # (B, K, J): each part's homogeneous weight (how much of the keypoint joint j carries)

    @property
    def keypoints(self) -> torch.Tensor:
        return self.parts.sum(2)


def compile_skinned_keypoints(
    kmap: KeypointMap, skin_weights: torch.Tensor, rest_vertices: torch.Tensor, directions: torch.Tensor
) -> KeypointMap:
    """``kmap`` with ``skinned_base`` and ``skinned_blend`` filled.

    Args:
        skin_weights: (S, J) skinning weights of the map's ``vertex_ids``.
        rest_vertices: (S, 3) their template (zero shape coefficients) positions.
        directions: (C, S, 3) their offsets per unit of each shape coefficient.
    """
    per_joint = kmap.vertex_weights[:, :, None] * skin_weights[None]  # (K, S, J)
    rest = torch.cat([rest_vertices, torch.ones_like(rest_vertices[:, :1])], dim=1)
    base = torch.einsum("ksj,sc->kjc", per_joint, rest)
    blend = torch.einsum("ksj,nsc->nkjc", per_joint, directions)
    return dataclasses.replace(kmap, skinned_base=base, skinned_blend=blend.reshape(blend.shape[0], -1))


def _skinned_points(kmap: KeypointMap, coefficients: torch.Tensor) -> torch.Tensor:
    """(B, K, J, 4) the shaped, pre-skinned homogeneous rest points of a compiled map."""
    if kmap.skinned_base is None:
        raise ValueError("this keypoint map is not compiled: pass it through the model's compile_keypoints")
    k, j = kmap.skinned_base.shape[:2]
    offsets = (coefficients @ kmap.skinned_blend).reshape(-1, k, j, 3)
    base = kmap.skinned_base.expand(offsets.shape[0], -1, -1, -1)
    return torch.cat([base[..., :3] + offsets, base[..., 3:]], dim=-1)


def skinned_keypoints(kmap: KeypointMap, coefficients: torch.Tensor, joints: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """(B, K, 3) keypoints of a compiled map: ``coefficients`` (B or 1, C), posed ``joints``
    (B, J, 3), rest-to-posed ``transforms`` (B, J, 3, 4 or 4, 4). Exact; no vertex is skinned."""
    points = _skinned_points(kmap, coefficients)
    surface = torch.einsum("bjrc,bkjc->bkr", transforms[..., :3, :], points)
    return kmap.joint_weights @ joints + surface


def skinned_keypoint_parts(
    kmap: KeypointMap, coefficients: torch.Tensor, world_rotations: torch.Tensor, joints: torch.Tensor, transforms: torch.Tensor
) -> KeypointParts:
    """:func:`skinned_keypoints` kept split per joint (same arguments, plus the world rotations)."""
    points = _skinned_points(kmap, coefficients)
    surface = torch.einsum("bjrc,bkjc->bkjr", transforms[..., :3, :], points)
    parts = kmap.joint_weights[None, :, :, None] * joints[:, None] + surface
    weights = (kmap.joint_weights[None] + points[..., 3]).expand(joints.shape[0], -1, -1)
    return KeypointParts(world_rotations, joints, parts, weights)
