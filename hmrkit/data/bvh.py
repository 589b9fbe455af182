"""BVH motion files: the hierarchy, the frames, and forward kinematics.

BVH conventions (Biovision, as animation tools write them): a joint's ``OFFSET`` is its place in
the parent's frame at rest; its rotation channels, in the order written (``Zrotation Yrotation
Xrotation``), compose as ``R = R_first R_second R_third`` for column vectors (the last written
axis acts first); angles are degrees. World rotations and positions follow
``G = G_parent R`` and ``p = p_parent + G_parent (offset + position channels)``: position channels
(usually the root's) add to the offset. Tools differ here; adding is what puts the floor at
y = 0 in the iClone files, whose Hip is either a root with offset (0, 105, 0) cm and position
channels near zero, or hangs at that offset under an extra root node. ``End Site`` blocks become
joints named ``<parent>_end``.

Unlike ASF, nothing makes a BVH's zero pose a meaningful rest: rigs often bake their joint
orientations into the offsets, so the zero pose can be any posture. Sources that need a rest pose
take it from a frame (iClone's files start with a T-pose frame, :mod:`hmrkit.data.iclone`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hmrkit.body.base import Skeleton
from hmrkit.body.kinematics import KinematicTree, forward_kinematics
from hmrkit.data.asf_amc import axis_rotation


@dataclass(frozen=True)
class BvhJoint:
    name: str
    parent: int  # index into the joints, -1 for the root
    offset: tuple[float, float, float]  # file units, in the parent's frame
    channels: tuple[str, ...]  # e.g. ("Xposition", "Yposition", "Zposition", "Zrotation", "Yrotation", "Xrotation")


@dataclass(frozen=True)
class BvhMotion:
    """One BVH file as read: joints (parents first), and one row of channel values per frame."""

    joints: tuple[BvhJoint, ...]
    values: np.ndarray  # (T, total channels) float64, in file order
    frame_time: float  # seconds per frame

    @property
    def skeleton(self) -> Skeleton:
        return Skeleton(tuple(j.name for j in self.joints), tuple(j.parent for j in self.joints))

    def __len__(self) -> int:
        return self.values.shape[0]

    def take(self, index: slice | np.ndarray) -> BvhMotion:
        """Some of the frames."""
        return BvhMotion(self.joints, self.values[index], self.frame_time)


def read_bvh(path: str | os.PathLike, max_frames: int | None = None) -> BvhMotion:
    """Parse a BVH file (HIERARCHY and MOTION sections); ``max_frames``: read only the first ones."""
    text = Path(path).read_text(encoding="latin-1")
    head, sep, motion = text.partition("MOTION")
    if not sep or "HIERARCHY" not in head:
        raise ValueError(f"{path}: not a BVH file (no HIERARCHY / MOTION sections)")
    tokens = head.split("HIERARCHY", 1)[1].split()
    joints: list[BvhJoint] = []
    stack: list[int] = []  # open joints
    pending: tuple[str, int] | None = None  # a joint named but its block not yet read
    k = 0
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    channels: tuple[str, ...] = ()
    while k < len(tokens):
        word = tokens[k]
        if word in ("ROOT", "JOINT"):
            pending = (tokens[k + 1], stack[-1] if stack else -1)
            k += 2
        elif word == "End":  # "End Site"
            pending = (f"{joints[stack[-1]].name}_end", stack[-1])
            k += 2
        elif word == "{":
            if pending is None:
                raise ValueError(f"{path}: '{{' without a joint")
            offset, channels = (0.0, 0.0, 0.0), ()
            joints.append(BvhJoint(pending[0], pending[1], offset, channels))
            stack.append(len(joints) - 1)
            pending = None
            k += 1
        elif word == "OFFSET":
            j = stack[-1]
            joints[j] = BvhJoint(joints[j].name, joints[j].parent, tuple(float(t) for t in tokens[k + 1 : k + 4]), joints[j].channels)
            k += 4
        elif word == "CHANNELS":
            n = int(tokens[k + 1])
            j = stack[-1]
            joints[j] = BvhJoint(joints[j].name, joints[j].parent, joints[j].offset, tuple(tokens[k + 2 : k + 2 + n]))
            k += 2 + n
        elif word == "}":
            stack.pop()
            k += 1
        else:
            raise ValueError(f"{path}: unexpected {word!r} in the hierarchy")
    if stack or not joints:
        raise ValueError(f"{path}: unbalanced or empty hierarchy")
    lines = motion.strip().splitlines()
    frames = int(lines[0].split(":")[1])
    frame_time = float(lines[1].split(":")[1])
    if max_frames is not None:
        frames = min(frames, max_frames)
    width = sum(len(j.channels) for j in joints)
    values = np.array(" ".join(lines[2 : 2 + frames]).split(), dtype=np.float64)
    if values.size != frames * width:
        raise ValueError(f"{path}: {frames} frames of {width} channels expected, got {values.size} values")
    return BvhMotion(tuple(joints), values.reshape(frames, width), frame_time)


def bvh_forward_kinematics(motion: BvhMotion, metres_per_unit: float, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """World positions (T, J, 3, metres) and rotations (T, J, 3, 3) of every joint, in the file's axes."""
    joints, frames = motion.joints, len(motion)
    values = torch.from_numpy(motion.values).to(dtype)
    local = torch.eye(3, dtype=dtype).repeat(frames, len(joints), 1, 1)
    translation = torch.tensor([j.offset for j in joints], dtype=dtype).expand(frames, -1, -1).clone()
    column = 0
    for i, joint in enumerate(joints):
        for channel in joint.channels:
            axis, kind = channel[0].lower(), channel[1:]
            if kind == "position":
                translation[:, i, "xyz".index(axis)] += values[:, column]
            elif kind == "rotation":
                local[:, i] = local[:, i] @ axis_rotation(axis, torch.deg2rad(values[:, column]))
            else:
                raise ValueError(f"BVH joint {joint.name}: unknown channel {channel!r}")
            column += 1
    # forward_kinematics reads offsets as differences of rest joints: build rest joints per frame
    tree = KinematicTree([j.parent for j in joints])
    rest = torch.zeros_like(translation)
    for i, joint in enumerate(joints):
        rest[:, i] = translation[:, i] + (rest[:, joint.parent] if joint.parent >= 0 else 0.0)
    world_r, posed = forward_kinematics(local, rest, tree)
    return posed * metres_per_unit, world_r
