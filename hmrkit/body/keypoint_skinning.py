"""Keypoints of a linear-blend-skinned model without skinning any vertex, shared by every body model.

A keypoint is ``sum_j w_j joint_j + sum_v a_v vertex_v`` (:class:`~hmrkit.body.keypoints.KeypointMap`),
plus any offsets fixed in a joint's frame (pre-skinned points of homogeneous weight 0).
When the rest mesh is linear in the shape coefficients (Anny's phenotype basis, SMPL's betas)
and the skinning weights are fixed, the vertex part can be pre-skinned per joint once:
``sum_v a_v vertex_v = sum_j T_j (sum_v a_v W_vj [rest_v; 1])`` with ``T_j`` joint ``j``'s
rest-to-posed transform. :func:`compile_skinned_keypoints` precomputes the bracket (and its
shape directions). The body fit reads the same compiled map in its numba kernels
(:mod:`hmrkit.fitting.keypoint_kernels`), which keep it split per joint for exact Jacobians.
"""

from __future__ import annotations

import dataclasses

import torch

from hmrkit.body.keypoints import KeypointMap


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
