"""Keypoints of a linear-blend-skinned model without skinning any vertex, shared by every body model.

A keypoint is ``sum_j w_j joint_j + sum_v a_v vertex_v`` (:class:`~hmrkit.body.keypoints.KeypointMap`),
plus any offsets fixed in a joint's frame (pre-skinned points of homogeneous weight 0).
When the rest mesh is linear in the shape coefficients (Anny's phenotype basis, SMPL's betas)
and the skinning weights are fixed, the vertex part can be pre-skinned per joint once:
``sum_v a_v vertex_v = sum_j T_j (sum_v a_v W_vj [rest_v; 1])`` with ``T_j`` joint ``j``'s
rest-to-posed transform. :func:`compile_skinned_keypoints` precomputes the bracket (and its
shape directions); :func:`skinned_keypoint_parts` keeps it split per joint, which is what the
fitter's analytic Jacobians need (every part moves rigidly with its joint).
At a fixed pose the keypoints are linear in the shape coefficients and the rest joints
(forward kinematics is linear in the bone offsets): :func:`skinned_keypoint_directions` maps
a change of those to the keypoints' change without a forward pass.
"""

from __future__ import annotations

import dataclasses

import torch

from hmrkit.body.keypoints import KeypointMap
from hmrkit.body.kinematics import KinematicTree


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
    """``kmap`` with ``skinned_pairs``, ``skinned_base`` and ``skinned_blend`` filled.

    Args:
        skin_weights: (S, J) skinning weights of the map's ``vertex_ids``.
        rest_vertices: (S, 3) their template (zero shape coefficients) positions.
        directions: (C, S, 3) their offsets per unit of each shape coefficient.
    """
    per_joint = kmap.vertex_weights[:, :, None] * skin_weights[None]  # (K, S, J)
    offsets = torch.zeros(per_joint.shape[0], per_joint.shape[2], 3) if kmap.offsets is None else kmap.offsets.to(per_joint)
    pairs = torch.nonzero((per_joint.abs().sum(1) > 0) | (offsets.abs().sum(-1) > 0))  # (P, 2): keypoint, joint
    per_pair = per_joint[pairs[:, 0], :, pairs[:, 1]]  # (P, S)
    rest = torch.cat([rest_vertices, torch.ones_like(rest_vertices[:, :1])], dim=1)
    # an offset is a pre-skinned point of homogeneous weight 0: it turns with the joint, no shift
    base = per_pair @ rest + torch.cat([offsets[pairs[:, 0], pairs[:, 1]], torch.zeros(len(pairs), 1)], dim=1)
    blend = torch.einsum("ps,nsc->npc", per_pair, directions)
    return dataclasses.replace(kmap, skinned_pairs=pairs, skinned_base=base, skinned_blend=blend.reshape(blend.shape[0], -1))


def _skinned_surface(kmap: KeypointMap, coefficients: torch.Tensor, transforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The posed vertex part of each (keypoint, joint) pair of a compiled map, (B, P, 3), and the
    pairs' homogeneous weights (B or 1, P)."""
    if kmap.skinned_base is None:
        raise ValueError("this keypoint map is not compiled: pass it through the model's compile_keypoints")
    pairs = kmap.skinned_pairs
    offsets = (coefficients @ kmap.skinned_blend).reshape(coefficients.shape[0], -1, 3)
    points = kmap.skinned_base[:, :3] + offsets  # (B or 1, P, 3)
    pair_transforms = transforms[:, pairs[:, 1], :3, :]  # (B, P, 3, 4)
    surface = (pair_transforms[..., :3] @ points[..., None])[..., 0] + pair_transforms[..., 3] * kmap.skinned_base[:, 3:]
    return surface, kmap.skinned_base[None, :, 3]


def skinned_keypoints(kmap: KeypointMap, coefficients: torch.Tensor, joints: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """(B, K, 3) keypoints of a compiled map: ``coefficients`` (B or 1, C), posed ``joints``
    (B, J, 3), rest-to-posed ``transforms`` (B, J, 3, 4 or 4, 4). Exact; no vertex is skinned."""
    surface, _ = _skinned_surface(kmap, coefficients, transforms)
    return (kmap.joint_weights @ joints).index_add(1, kmap.skinned_pairs[:, 0], surface)


def skinned_keypoint_parts(
    kmap: KeypointMap, coefficients: torch.Tensor, world_rotations: torch.Tensor, joints: torch.Tensor, transforms: torch.Tensor
) -> KeypointParts:
    """:func:`skinned_keypoints` kept split per joint (same arguments, plus the world rotations)."""
    surface, pair_weights = _skinned_surface(kmap, coefficients, transforms)
    k, j = kmap.skinned_pairs.unbind(1)
    parts = kmap.joint_weights[None, :, :, None] * joints[:, None]
    parts = parts.index_put((torch.arange(parts.shape[0])[:, None], k, j), surface, accumulate=True)
    weights = kmap.joint_weights.index_put((k, j), pair_weights[0], accumulate=True).expand(joints.shape[0], -1, -1)
    return KeypointParts(world_rotations, joints, parts, weights)


def skinned_keypoint_directions(kmap: KeypointMap, tree: KinematicTree, world_rotations: torch.Tensor,
                                d_coefficients: torch.Tensor, d_rest_joints: torch.Tensor) -> torch.Tensor:
    """(B, K, 3, S): how the keypoints of a compiled map move, pose held, along S shape directions.

    Args:
        world_rotations: (B, J, 3, 3) the pose's world rotations (scaled, as forward kinematics
            gives them: :attr:`KeypointParts.world_rotations`).
        d_coefficients: (B, S, C) each direction's change of the shape coefficients.
        d_rest_joints: (B, S, J, 3) the rest joints' change that goes with it.
    Exact for the keypoints-only forward: a posed joint is the sum of its path's bone offsets,
    each turned by its parent's world rotation; a surface part is its joint's transform applied
    to a rest point.
    """
    batch, directions = d_coefficients.shape[:2]
    device, dtype = world_rotations.device, world_rotations.dtype
    has_parent = tree.has_parent.to(device, dtype)
    parent = tree.parent_index.to(device)
    eye = torch.eye(3, dtype=dtype, device=device)
    parent_rotations = torch.where(has_parent[:, :, None] > 0, world_rotations[:, parent], eye)  # root: no parent turn
    d_offsets = d_rest_joints - d_rest_joints[:, :, parent] * has_parent
    turned = torch.einsum("bjcd,bsjd->bsjc", parent_rotations, d_offsets)
    d_posed = torch.einsum("ja,bsac->bsjc", tree.path.to(device, dtype), turned)
    d_shift = d_posed - torch.einsum("bjcd,bsjd->bsjc", world_rotations, d_rest_joints)  # of each transform's t
    k, j = kmap.skinned_pairs.unbind(1)
    d_base = (d_coefficients @ kmap.skinned_blend).reshape(batch, directions, -1, 3)
    d_surface = torch.einsum("bpcd,bspd->bspc", world_rotations[:, j], d_base) + d_shift[:, :, j] * kmap.skinned_base[:, 3:]
    d_keypoints = torch.einsum("kj,bsjc->bskc", kmap.joint_weights, d_posed).index_add(2, k, d_surface)
    return d_keypoints.permute(0, 2, 3, 1)
