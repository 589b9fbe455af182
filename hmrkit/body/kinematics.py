"""Forward kinematics and linear blend skinning, batched, shared by every body model.

Rotations follow SMPL: joint ``j`` rotates its subtree about its rest position, in axes that
are world-aligned at rest, after its parent's rotation. The chain is evaluated one tree depth
at a time (one batched product per level, not per joint).
"""

from __future__ import annotations

from functools import lru_cache

import torch


class KinematicTree:
    """Depth levels of a skeleton, precomputed once from its parent list."""

    def __init__(self, parents: tuple[int, ...] | list[int]):
        parents = [int(p) for p in parents]
        depth = [0] * len(parents)
        for j, p in enumerate(parents):
            depth[j] = 0 if p < 0 else depth[p] + 1
        self.parents = parents
        levels: list[list[int]] = []
        self.parent_slots: list[torch.Tensor] = []  # each joint's parent's position within the level before
        slot_in_level: dict[int, int] = {}
        for d in range(max(depth) + 1):
            joints = [j for j in range(len(parents)) if depth[j] == d]
            levels.append(joints)
            self.parent_slots.append(torch.tensor([slot_in_level.get(parents[j], 0) for j in joints], dtype=torch.long))
            slot_in_level = {j: k for k, j in enumerate(joints)}
        self.order = torch.tensor([j for level in levels for j in level], dtype=torch.long)  # joints level by level
        self.level_sizes = [len(level) for level in levels]
        self.inverse_order = torch.argsort(self.order)
        self.parent_index = torch.tensor([max(p, 0) for p in parents], dtype=torch.long)
        self.has_parent = torch.tensor([[float(p >= 0)] for p in parents])  # (J, 1)

    def __len__(self) -> int:
        return len(self.parents)


@lru_cache(maxsize=32)
def tree_of(parents: tuple[int, ...]) -> KinematicTree:
    """The (cached) tree of a parent list; ``parents[0]`` is taken as the root whatever it says."""
    return KinematicTree((-1,) + parents[1:])


def forward_kinematics(
    rotations: torch.Tensor,
    rest_joints: torch.Tensor,
    tree: KinematicTree,
    scales: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posed world rotations and joint positions.

    Args:
        rotations: (B, J, 3, 3) per-joint rotations (joint 0: global orientation).
        rest_joints: (B or 1, J, 3) rest joint positions.
        scales: optional (B, J) scale of each joint's local transform. A zero collapses the
            joint's subtree onto the joint (AJAHR's amputation); gradients stay finite.
    Returns:
        world "rotations" (B, J, 3, 3; scaled where ``scales`` says) and posed joint positions
        (B, J, 3), without translation.
    """
    batch = rotations.shape[0]
    if scales is not None:
        rotations = rotations * scales[..., None, None]
    device = rotations.device
    rest_joints = rest_joints.expand(batch, -1, -1)
    offsets = rest_joints - rest_joints.index_select(1, tree.parent_index.to(device)) * tree.has_parent.to(rest_joints)
    # one 4x4 product per tree level, joints sorted level by level so each level is a slice:
    # this small-batch loop is bound by the number of tensor calls, not by arithmetic
    bottom = torch.zeros(1, 1, 1, 4, dtype=rotations.dtype, device=device)
    bottom[..., 3] = 1.0
    local = torch.cat([torch.cat([rotations, offsets[..., None]], dim=-1), bottom.expand(batch, rotations.shape[1], 1, 4)], dim=-2)
    local = local.index_select(1, tree.order.to(device))
    world = [local[:, : tree.level_sizes[0]]]
    start = tree.level_sizes[0]
    for size, slots in zip(tree.level_sizes[1:], tree.parent_slots[1:]):
        world.append(world[-1].index_select(1, slots.to(device)) @ local[:, start : start + size])  # parents all sit in the level before
        start += size
    done = torch.cat(world, dim=1).index_select(1, tree.inverse_order.to(device))
    return done[..., :3, :3], done[..., :3, 3]


def skinning_transforms(
    world_rotations: torch.Tensor, posed_joints: torch.Tensor, rest_joints: torch.Tensor
) -> torch.Tensor:
    """(B, J, 3, 4) transforms taking a rest-pose point skinned to joint j to its posed place."""
    rest_joints = rest_joints.expand(posed_joints.shape[0], -1, -1)
    t = posed_joints - (world_rotations @ rest_joints[..., None])[..., 0]
    return torch.cat([world_rotations, t[..., None]], dim=-1)


def homogeneous(transforms: torch.Tensor) -> torch.Tensor:
    """(..., 3, 4) -> (..., 4, 4)."""
    bottom = torch.zeros(transforms.shape[:-2] + (1, 4), dtype=transforms.dtype, device=transforms.device)
    bottom[..., 0, 3] = 1.0
    return torch.cat([transforms, bottom], dim=-2)


def skin(rest_vertices: torch.Tensor, weights: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning.

    Args:
        rest_vertices: (B or 1, V, 3).
        weights: (V, J) skinning weights, rows summing to 1.
        transforms: (B, J, 3, 4) from :func:`skinning_transforms`.
    """
    batch, joints = transforms.shape[:2]
    blended = (weights @ transforms.reshape(batch, joints, 12)).reshape(batch, -1, 3, 4)
    # an elementwise product and sum: far faster on CPU than a batched matmul of 3x3 blocks
    return (blended[..., :3] * rest_vertices[:, :, None, :]).sum(-1) + blended[..., 3]
