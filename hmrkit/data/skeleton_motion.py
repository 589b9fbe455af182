"""Posed frames of any source skeleton, in the one form the retargeting reads.

Every motion source (CMU exponential maps, ASF/AMC, BVH) ends in a :class:`SkeletonMotion`:
joint positions and the world rotation of each joint's segment, in hmrkit's canonical body frame
(y up, the subject's left +x, toes +z at rest; metres), with the source's own rest pose. Keeping
the sources apart from the solver lets one direction-matching retargeting serve them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hmrkit.body.base import Skeleton


@dataclass
class SkeletonMotion:
    """Frames of one source skeleton after forward kinematics.

    Joint ``j`` sits at the start of the segment it is named after and ``rotations[:, j]`` turns
    that segment. Rotations are relative to the source's rest pose and act in world-aligned axes
    (identity at rest), hmrkit's SMPL-style convention; ``rest`` is where the joints sit in that
    rest pose, root at the origin. The retargeting reads limb rest directions from ``rest`` and
    carries our rest directions by ``rotations``, so the rest pose must face +z with y up.
    """

    skeleton: Skeleton
    positions: torch.Tensor  # (T, J, 3) joint positions, metres, root translation included
    rotations: torch.Tensor  # (T, J, 3, 3) world rotation of each joint's segment (rest -> posed)
    rest: torch.Tensor  # (J, 3) rest joint positions, root at the origin, metres

    def __post_init__(self) -> None:
        joints = len(self.skeleton)
        if self.positions.ndim != 3 or self.positions.shape[1:] != (joints, 3):
            raise ValueError(f"positions must have shape (T, {joints}, 3), got {tuple(self.positions.shape)}")
        if self.rotations.shape != (*self.positions.shape, 3):
            raise ValueError(f"rotations must have shape (T, {joints}, 3, 3), got {tuple(self.rotations.shape)}")
        if self.rest.shape != (joints, 3):
            raise ValueError(f"rest must have shape ({joints}, 3), got {tuple(self.rest.shape)}")

    def __len__(self) -> int:
        return self.positions.shape[0]

    def frames(self, index: slice | torch.Tensor) -> SkeletonMotion:
        """The same motion restricted to some frames."""
        return SkeletonMotion(self.skeleton, self.positions[index], self.rotations[index], self.rest)
