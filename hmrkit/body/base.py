"""The one interface every body and hand model in hmrkit implements.

A model owns a :class:`Skeleton` (joint names and parents). ``forward`` takes one rotation
matrix per skeleton joint, expressed SMPL-style: joint ``j``'s rotation acts in world-aligned
axes at rest, relative to its parent (joint 0 is the global orientation). Models differ in
what "shape" means (SMPL betas, Anny phenotypes), so shape is a plain ``(B, S)`` tensor whose
meaning each model names in ``shape_names``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Skeleton:
    """Joint names and parent indices (``-1`` for the root); parents precede children."""

    names: tuple[str, ...]
    parents: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.parents):
            raise ValueError("Skeleton: names and parents differ in length")
        for j, p in enumerate(self.parents):
            if (j == 0) != (p < 0) or p >= j:
                raise ValueError(f"Skeleton: joint {self.names[j]!r} has parent {p}; parents must precede children")

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown joint {name!r}; known: {', '.join(self.names)}") from None

    def children(self, joint: int) -> list[int]:
        return [j for j, p in enumerate(self.parents) if p == joint]

    def subtree(self, joint: int) -> list[int]:
        """``joint`` and all its descendants, in skeleton order."""
        inside = {joint}
        for j in range(joint + 1, len(self.parents)):
            if self.parents[j] in inside:
                inside.add(j)
        return sorted(inside)


@dataclass
class BodyOutput:
    """What a body model returns. ``vertices`` is ``None`` for the keypoints-only forward."""

    joints: torch.Tensor  # (B, J, 3) skeleton joint positions, metres
    transforms: torch.Tensor  # (B, J, 4, 4) world transform of each joint (rest -> posed)
    vertices: torch.Tensor | None = None  # (B, V, 3)
    keypoints: torch.Tensor | None = None  # (B, K, 3) when a keypoint map was asked for


def check_pose_inputs(
    rotations: torch.Tensor, shape: torch.Tensor | None, translation: torch.Tensor | None, num_joints: int, num_shape: int
) -> int:
    """Validate shapes at the model boundary; return the batch size. One clear error per mistake."""
    if rotations.dim() != 4 or rotations.shape[1:] != (num_joints, 3, 3):
        raise ValueError(f"rotations must have shape (B, {num_joints}, 3, 3), got {tuple(rotations.shape)}")
    batch = rotations.shape[0]
    if shape is not None and (shape.dim() != 2 or shape.shape[1] != num_shape or shape.shape[0] not in (1, batch)):
        raise ValueError(f"shape must have shape (B, {num_shape}), got {tuple(shape.shape)}")
    if translation is not None and (translation.dim() != 2 or translation.shape[1] != 3 or translation.shape[0] not in (1, batch)):
        raise ValueError(f"translation must have shape (B, 3), got {tuple(translation.shape)}")
    return batch


class BodyModel(torch.nn.Module):
    """Base class: subclasses set ``skeleton``, ``shape_names``, register ``faces`` and implement ``forward``."""

    skeleton: Skeleton
    shape_names: tuple[str, ...]
    faces: torch.Tensor  # (F, 3) int64 triangles

    @property
    def num_joints(self) -> int:
        return len(self.skeleton)

    @property
    def num_shape(self) -> int:
        return len(self.shape_names)

    def default_shape(self, batch: int = 1) -> torch.Tensor:
        """The neutral shape (zeros for SMPL betas; 0.5 for Anny phenotypes)."""
        ref = self.faces
        return torch.zeros(batch, self.num_shape, device=ref.device)

    def reusing_shape_blend(self) -> AbstractContextManager:
        """A context in which the model may reuse its shape blend for repeated equal shapes
        (no gradient through the shape inside); models with a costly blend override it."""
        return nullcontext()

    def identity_pose(self, batch: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.eye(3, dtype=dtype, device=self.faces.device).expand(batch, self.num_joints, 3, 3).clone()

    def forward(
        self,
        rotations: torch.Tensor,
        shape: torch.Tensor | None = None,
        translation: torch.Tensor | None = None,
        with_vertices: bool = True,
    ) -> BodyOutput:  # pragma: no cover - interface
        raise NotImplementedError
