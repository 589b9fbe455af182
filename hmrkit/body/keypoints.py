"""Keypoints of a body model in a named convention, as fixed linear maps.

Every keypoint is a weighted sum of skeleton joints and mesh vertices (a surface point, a
joint centre, or a mix). A model keeps a *library* of such definitions by name; a
:class:`KeypointMap` stacks the ones a :class:`~hmrkit.body.conventions.Convention` asks for,
so that a forward pass can skin only the few vertices it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from hmrkit.body.base import Skeleton
from hmrkit.body.conventions import Convention


@dataclass(frozen=True)
class KeypointSpec:
    """One keypoint: ``sum(w * joint) + sum(w * vertex) + sum(R_j @ offset_j)``; weights sum to 1.

    An offset is a fixed vector (metres, in the joint's rest axes) that turns with the joint's
    world rotation ``R_j``: a marker placed beside a joint, as motion capture places them.
    """

    joints: tuple[tuple[str, float], ...] = ()
    vertices: tuple[tuple[int, float], ...] = ()
    offsets: tuple[tuple[str, tuple[float, float, float]], ...] = ()

    @staticmethod
    def joint(name: str) -> "KeypointSpec":
        return KeypointSpec(joints=((name, 1.0),))

    @staticmethod
    def vertex(index: int) -> "KeypointSpec":
        return KeypointSpec(vertices=((int(index), 1.0),))

    @staticmethod
    def blend(*parts: tuple["KeypointSpec", float]) -> "KeypointSpec":
        """A weighted combination of other keypoints (weights may extrapolate)."""
        joints: dict[str, float] = {}
        vertices: dict[int, float] = {}
        for spec, w in parts:
            for name, a in spec.joints:
                joints[name] = joints.get(name, 0.0) + w * a
            for index, a in spec.vertices:
                vertices[index] = vertices.get(index, 0.0) + w * a
        offsets = tuple((name, tuple(w * v for v in offset)) for spec, w in parts for name, offset in spec.offsets)
        return KeypointSpec(tuple(joints.items()), tuple(vertices.items()), offsets)


@dataclass
class KeypointMap:
    """Keypoints of one convention for one model; ``apply`` is two small matrix products."""

    convention: str
    names: tuple[str, ...]
    joint_weights: torch.Tensor  # (K, J)
    vertex_ids: torch.Tensor  # (S,) mesh vertices the keypoints read
    vertex_weights: torch.Tensor  # (K, S)
    notes: dict[str, str] = field(default_factory=dict)  # name -> how it approximates the convention
    offsets: torch.Tensor | None = None  # (K, J, 3) joint-frame offsets (see KeypointSpec); None: none
    # Optional, set by a model whose rest mesh is linear in its shape coefficients: the vertex
    # part pre-skinned per joint, so keypoints cost no vertex skinning (see AnnyModel). Only the
    # few (keypoint, joint) pairs whose skinning weight is not zero are kept (~125 of 75 x 52).
    skinned_pairs: torch.Tensor | None = None  # (P, 2) long: keypoint index, joint index
    skinned_base: torch.Tensor | None = None  # (P, 4) homogeneous weighted rest points
    skinned_blend: torch.Tensor | None = None  # (C, P * 3) their shape directions

    def to(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> "KeypointMap":
        if self.joint_weights.device == torch.device(device) and self.joint_weights.dtype == dtype:
            return self
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, dtype)

        return KeypointMap(
            self.convention,
            self.names,
            self.joint_weights.to(device, dtype),
            self.vertex_ids.to(device),
            self.vertex_weights.to(device, dtype),
            self.notes,
            move(self.offsets),
            None if self.skinned_pairs is None else self.skinned_pairs.to(device),
            move(self.skinned_base),
            move(self.skinned_blend),
        )

    def apply(self, joints: torch.Tensor, picked_vertices: torch.Tensor | None,
              world_rotations: torch.Tensor | None = None) -> torch.Tensor:
        """(B, J, 3) joints, (B, S, 3) vertices at ``vertex_ids`` and, for a map with offsets,
        (B, J, 3, 3) world rotations (or (B, J, 3, 4) transforms) -> (B, K, 3)."""
        out = self.joint_weights @ joints
        if self.vertex_ids.numel():
            out = out + self.vertex_weights @ picked_vertices
        if self.offsets is not None:
            if world_rotations is None:
                raise ValueError(f"the {self.convention} keypoints need the joints' world rotations (they hold offsets)")
            out = out + torch.einsum("kjc,bjrc->bkr", self.offsets, world_rotations[..., :3, :3])
        return out

    def from_mesh(self, joints: torch.Tensor, vertices: torch.Tensor, world_rotations: torch.Tensor | None = None) -> torch.Tensor:
        return self.apply(joints, vertices[:, self.vertex_ids], world_rotations)


def build_keypoint_map(
    library: dict[str, KeypointSpec],
    skeleton: Skeleton,
    convention: Convention,
    prefix: str = "",
    notes: dict[str, str] | None = None,
) -> KeypointMap:
    """Stack ``library[prefix + name]`` for each name of ``convention``; an entry named
    ``"<convention>:<prefix><name>"`` (e.g. ``"lsp14:left_hip"``) takes precedence: that
    convention's own definition of a joint other conventions share."""
    keys = [f"{convention.name}:{prefix}{n}" if f"{convention.name}:{prefix}{n}" in library else prefix + n
            for n in convention.names]
    missing = [n for n, key in zip(convention.names, keys) if key not in library]
    if missing:
        raise KeyError(f"no keypoint definition for {convention.name} joints: {', '.join(missing)}")
    specs = [library[key] for key in keys]
    ids = sorted({i for s in specs for i, _ in s.vertices})
    slot = {v: k for k, v in enumerate(ids)}
    # filled in numpy (float32, the same sums): thousands of element updates, ~10 us each as tensor ops
    jw = np.zeros((len(specs), len(skeleton)), np.float32)
    vw = np.zeros((len(specs), len(ids)), np.float32)
    offsets = np.zeros((len(specs), len(skeleton), 3), np.float32)
    for k, spec in enumerate(specs):
        for name, w in spec.joints:
            jw[k, skeleton.index(name)] += w
        for index, w in spec.vertices:
            vw[k, slot[index]] += w
        for name, offset in spec.offsets:
            offsets[k, skeleton.index(name)] += np.asarray(offset, np.float32)
    notes = notes or {}
    return KeypointMap(
        convention.name,
        convention.names,
        torch.from_numpy(jw),
        torch.tensor(ids, dtype=torch.long),
        torch.from_numpy(vw),
        {n: notes[key] for n, key in zip(convention.names, keys) if key in notes},
        torch.from_numpy(offsets) if offsets.any() else None,
    )


def fingertip_vertex(vertices: torch.Tensor, owners: torch.Tensor, joints: torch.Tensor, last: int, previous: int) -> int:
    """Index of the rest vertex skinned (mostly) to joint ``last`` that lies farthest along the
    bone ``previous -> last``: a fingertip, for hand models without tip joints."""
    direction = joints[last] - joints[previous]
    candidates = torch.nonzero(owners == last)[:, 0]
    if candidates.numel() == 0:
        raise ValueError(f"no vertex is skinned to joint {last}: cannot place its fingertip")
    return int(candidates[((vertices[candidates] - joints[last]) @ direction).argmax()])


def keypoint_owners(kmap: KeypointMap, skin_weights: torch.Tensor) -> torch.Tensor:
    """(K,) the joint that moves each keypoint most (used to tell which keypoints a collapse removes)."""
    influence = kmap.joint_weights.abs() + kmap.vertex_weights.abs() @ skin_weights[kmap.vertex_ids].to(kmap.vertex_weights)
    return influence.argmax(dim=1)
