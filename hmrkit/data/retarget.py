"""Mocap on hmrkit's 22 core body joints, by matching bone directions.

Any source works that gives, as a :class:`~hmrkit.data.skeleton_motion.SkeletonMotion`, the
CMU ASF segments the core bones read (:func:`source_segments`): CMU's exponential-map files,
HDM05's ASF/AMC, iClone BVH after renaming its bones. Source and target use world-aligned axes
at rest in the same canonical frame (x = the body's left, y up, z forward), so each of our
joints is driven by one source segment (named here by its CMU name):

- *Limbs* (hips, knees, shoulders, elbows, wrists) are matched exactly: our bone is pointed
  along its CMU counterpart (e.g. our knee->ankle along CMU's knee->ankle). Positions alone
  leave a bone's twist free (a straight arm can spin), so the twist comes from a secondary
  direction carried by the CMU segment: "forward" for thighs, shins and upper arms (the knee
  and elbow bend that way), the radial side of the hand (index minus little knuckle on
  Anny, the thumb side on CMU) for forearms and hands. The forearm follows CMU's ``lwrist``
  segment, which holds the pronation.
- *Torso, neck, head, collars, feet* follow their CMU segment's rotation as a whole. Their
  rest bones differ by anatomy, not by pose (Anny's spine is S-curved, CMU's nearly
  straight; the rigs place the ankle differently), so matching them exactly would bend a
  standing body. The pelvis is CMU's root: its frame is the hips line and the pelvis's up.
- Fingers and toes stay at rest (CMU has no finger motion to speak of).

Limb rest directions come from the source's own rest pose, so any limb rest works (T-pose,
legs apart or not), as long as the rest body stands upright facing +z (torso, head and feet
rotations are carried over as a whole) and its limb segments' rest +z is "forward" for thighs,
shins and upper arms and the thumb side for forearms and hands (a T-pose with palms down).

The solver itself is generic: each joint's world rotation takes a rest (primary, secondary)
direction pair onto a target pair (primary exact, secondary projected perpendicular), and
local rotations follow SMPL-style (``R_j = G_parent^T G_j``). :func:`rotations_from_positions`
runs it on our own skeleton's joint positions, which is how it is tested.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from hmrkit.body.anny_rig import BODY_JOINTS, NUM_BODY_CORE, skeleton_of
from hmrkit.body.conventions import sides_swapped
from hmrkit.data.cmu import (
    CMU_SKELETON,
    CmuMotion,
    cmu_forward_kinematics,
    cmu_rest_joints,
    cmu_sequence_files,
    read_cmu_values,
)
from hmrkit.data.skeleton_motion import SkeletonMotion
from hmrkit.paths import cache_dir

BODY = skeleton_of(BODY_JOINTS)  # 52 joints: the 22 core ones, then the fingers
CORE_PARENTS = BODY.parents[:NUM_BODY_CORE]
CORE_NAMES = BODY.names[:NUM_BODY_CORE]
X, Y, Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


@dataclass(frozen=True)
class CoreBone:
    """How one core joint's rotation is found."""

    joint: str
    primary: str | tuple[float, float, float]  # our child joint the rotation points at, or a fixed rest axis (leaves)
    twist: tuple[str, str] | tuple[float, float, float]  # our rest secondary: a joint pair (from, to) or an axis
    segment: str  # the CMU segment that drives the joint
    cmu_bone: tuple[str, str] | None = None  # limbs: the CMU bone ours is matched to exactly; None: follow the segment
    cmu_twist: tuple[float, float, float] = Z  # CMU rest secondary, carried by the segment (limbs only)


def _sided(side: str) -> list[CoreBone]:
    s = side[0]
    radial = (f"{side}_pinky1", f"{side}_index1")  # towards the thumb side of the palm
    return [
        CoreBone(f"{side}_hip", f"{side}_knee", Z, f"{s}femur", (f"{s}femur", f"{s}tibia")),
        CoreBone(f"{side}_knee", f"{side}_ankle", Z, f"{s}tibia", (f"{s}tibia", f"{s}foot")),
        CoreBone(f"{side}_ankle", f"{side}_foot", Y, f"{s}foot"),
        CoreBone(f"{side}_foot", Z, Y, f"{s}toes"),
        CoreBone(f"{side}_collar", f"{side}_shoulder", Z, f"{s}clavicle"),
        CoreBone(f"{side}_shoulder", f"{side}_elbow", Z, f"{s}humerus", (f"{s}humerus", f"{s}radius")),
        CoreBone(f"{side}_elbow", f"{side}_wrist", radial, f"{s}wrist", (f"{s}radius", f"{s}wrist")),
        CoreBone(f"{side}_wrist", f"{side}_middle1", radial, f"{s}hand", (f"{s}hand", f"{s}fingers")),
    ]


def _core_bones() -> tuple[CoreBone, ...]:
    bones = [
        CoreBone("pelvis", "spine1", ("right_hip", "left_hip"), "root"),
        CoreBone("spine1", "spine2", Z, "lowerback"),
        CoreBone("spine2", "spine3", Z, "upperback"),
        CoreBone("spine3", "neck", ("right_collar", "left_collar"), "thorax"),
        CoreBone("neck", "head", Z, "lowerneck"),
        CoreBone("head", Y, Z, "head"),
    ]
    bones += _sided("left") + _sided("right")
    by_name = {b.joint: b for b in bones}
    return tuple(by_name[name] for name in CORE_NAMES)


CORE_BONES = _core_bones()


# -- the solver --------------------------------------------------------------------------------


def _unit(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp(min=eps)


def direction_frame(primary: torch.Tensor, secondary: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) orthonormal frame: columns = primary, secondary made perpendicular, their cross.

    A secondary (nearly) parallel to the primary falls back on the world axis least aligned with it.
    """
    a = _unit(primary)
    b = secondary - (secondary * a).sum(-1, keepdim=True) * a
    degenerate = b.norm(dim=-1, keepdim=True) < 1e-6 * secondary.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    axes = torch.eye(3, dtype=a.dtype, device=a.device)
    fallback = axes[a.abs().argmin(dim=-1)]
    fallback = fallback - (fallback * a).sum(-1, keepdim=True) * a
    b = _unit(torch.where(degenerate, fallback, b))
    return torch.stack([a, b, torch.linalg.cross(a, b)], dim=-1)


def solve_world_rotations(
    rest_primary: torch.Tensor, rest_secondary: torch.Tensor, primary: torch.Tensor, secondary: torch.Tensor
) -> torch.Tensor:
    """Rotations taking each rest direction pair onto its target pair: ``F(target) F(rest)^T``.

    Shapes broadcast: rest (J, 3), targets (N, J, 3) -> (N, J, 3, 3). The primary is matched
    exactly; the secondary only fixes the twist about it.
    """
    return direction_frame(primary, secondary) @ direction_frame(rest_primary, rest_secondary).transpose(-1, -2)


def world_to_local(world: torch.Tensor, parents: tuple[int, ...] | list[int]) -> torch.Tensor:
    """(N, J, 3, 3) world rotations -> SMPL-style local ones (joint 0 keeps its world rotation)."""
    parent_index = torch.tensor([max(p, 0) for p in parents], device=world.device)
    local = world[:, parent_index].transpose(-1, -2) @ world
    return torch.cat([world[:, :1], local[:, 1:]], dim=1)


# -- our skeleton's rest directions ------------------------------------------------------------


def _rest_direction(bone: CoreBone, rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    j = BODY.index(bone.joint)
    if isinstance(bone.primary, str):
        primary = rest[BODY.index(bone.primary)] - rest[j]
    else:
        primary = torch.tensor(bone.primary, dtype=rest.dtype)
    if isinstance(bone.twist[0], str):
        a, b = bone.twist
        secondary = rest[BODY.index(b)] - rest[BODY.index(a)]
    else:
        secondary = torch.tensor(bone.twist, dtype=rest.dtype)
    return _unit(primary), secondary


def rest_directions(rest_joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(22, 3) rest primary and secondary directions of the core joints, from (52, 3) rest joints."""
    if rest_joints.shape != (len(BODY), 3):
        raise ValueError(f"rest_joints must have shape ({len(BODY)}, 3) (the 52-joint body), got {tuple(rest_joints.shape)}")
    pairs = [_rest_direction(b, rest_joints) for b in CORE_BONES]
    return torch.stack([p for p, _ in pairs]), torch.stack([s for _, s in pairs])


@lru_cache(maxsize=1)
def anny_rest_joints() -> torch.Tensor:
    """(52, 3) rest joints of Anny's neutral body (float64): the skeleton CMU is retargeted to."""
    from hmrkit.body.anny_model import load_anny_body  # heavy; only when no rest is given

    model = load_anny_body().double()
    return model.rest_joints(model.blend_coefficients(model.default_shape(1)))[0].detach()


# -- any source skeleton -> core ----------------------------------------------------------------


def source_segments() -> tuple[str, ...]:
    """The source joints (CMU ASF segment names) the retargeting reads, in first-use order."""
    names: list[str] = []
    for bone in CORE_BONES:
        for name in (bone.segment, *(bone.cmu_bone or ())):
            if name not in names:
                names.append(name)
    return tuple(names)


def direction_targets(motion: SkeletonMotion, rest_joints: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Rest and target (primary, secondary) directions of the 22 core joints for a source's frames.

    ``motion`` names its joints like the CMU ASF segments (:func:`source_segments`); its own rest
    pose gives the limb bones' rest directions, so any skeleton that provides these segments works.
    """
    dtype = motion.rotations.dtype
    rest_primary, rest_secondary = rest_directions(rest_joints.to(dtype))
    source_rest = motion.rest
    index = motion.skeleton.index
    segments = [index(b.segment) for b in CORE_BONES]
    seg_rot = motion.rotations[:, segments]  # (T, 22, 3, 3)
    # torso & co: carry our rest directions by the source segment (the joint takes its rotation)
    primary = (seg_rot @ rest_primary[:, :, None])[..., 0]
    secondary = (seg_rot @ rest_secondary[:, :, None])[..., 0]
    rest_primary, rest_secondary = rest_primary.clone(), rest_secondary.clone()
    for j, bone in enumerate(CORE_BONES):
        if bone.cmu_bone is None:
            continue
        start, end = (index(n) for n in bone.cmu_bone)
        source_dir = _unit(source_rest[end] - source_rest[start])
        twist = torch.tensor(bone.cmu_twist, dtype=dtype)
        primary[:, j] = _unit(motion.positions[:, end] - motion.positions[:, start])
        secondary[:, j] = seg_rot[:, j] @ (twist - (twist @ source_dir) * source_dir)
    return rest_primary, rest_secondary, primary, secondary


def retarget_motion(motion: SkeletonMotion, rest_joints: torch.Tensor | None = None) -> torch.Tensor:
    """(T, 22, 3, 3) local rotations of our core joints reproducing ``motion``'s limb directions.

    ``motion``: any source with the CMU segment names (CMU, HDM05, iClone BVH after renaming).
    ``rest_joints``: (52, 3) rest joints of the target body (default: Anny's neutral shape).
    Joint 0 is the global orientation in the canonical frame (y up).
    """
    rest = anny_rest_joints() if rest_joints is None else rest_joints
    world = solve_world_rotations(*direction_targets(motion, rest))
    return world_to_local(world, CORE_PARENTS)


def cmu_skeleton_motion(motion: CmuMotion) -> SkeletonMotion:
    """CMU frames as a :class:`SkeletonMotion` (the 38-joint skeleton and its T-pose rest)."""
    return SkeletonMotion(CMU_SKELETON, motion.positions, motion.rotations, cmu_rest_joints(motion.rotations.dtype))


def retarget_cmu(motion: CmuMotion, rest_joints: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`retarget_motion` for CMU frames: (T, 22, 3, 3) local rotations of our core joints."""
    return retarget_motion(cmu_skeleton_motion(motion), rest_joints)


# -- our own skeleton's positions -> rotations -------------------------------------------------


def rotations_from_positions(joints: torch.Tensor, rest_joints: torch.Tensor) -> torch.Tensor:
    """(N, 22, 3) posed core joint positions -> (N, 22, 3, 3) local rotations that reproduce them.

    Every bone is pointed at its posed child; the pelvis and spine3 (two or more children) take
    their twist from the hips and collar lines. Other twists do not move any joint: they are
    taken from the next bone's bend plane where there is one (otherwise any valid twist), and
    the leaves (head, feet, wrists) stay at rest. A starting point for fitting, and the test of
    the solver.
    """
    if joints.ndim != 3 or joints.shape[1:] != (NUM_BODY_CORE, 3):
        raise ValueError(f"joints must have shape (N, {NUM_BODY_CORE}, 3), got {tuple(joints.shape)}")
    rest_primary, rest_secondary = rest_directions(rest_joints.to(joints.dtype))
    primary = rest_primary.expand(joints.shape[0], -1, -1).clone()
    secondary = rest_secondary.expand(joints.shape[0], -1, -1).clone()
    has_child = [isinstance(b.primary, str) and BODY.index(b.primary) < NUM_BODY_CORE for b in CORE_BONES]
    for j, bone in enumerate(CORE_BONES):
        if not has_child[j]:
            continue
        child = BODY.index(bone.primary)
        primary[:, j] = joints[:, child] - joints[:, j]
        if isinstance(bone.twist[0], str) and all(BODY.index(n) < NUM_BODY_CORE for n in bone.twist):
            a, b = (BODY.index(n) for n in bone.twist)
            secondary[:, j] = joints[:, b] - joints[:, a]
        elif has_child[child]:
            grandchild = BODY.index(CORE_BONES[child].primary)
            rest_next = rest_joints[grandchild] - rest_joints[child]
            rest_secondary[j] = rest_next.to(joints.dtype)
            secondary[:, j] = joints[:, grandchild] - joints[:, child]
    world = solve_world_rotations(rest_primary, rest_secondary, primary, secondary)
    leaves = torch.tensor([not h for h in has_child])
    local = world_to_local(world, CORE_PARENTS)
    # a leaf keeps its parent's world rotation: identity local
    local[:, leaves] = torch.eye(3, dtype=local.dtype)
    return local


def mirror_core_rotations(rotations: torch.Tensor) -> torch.Tensor:
    """(..., 22, 3, 3) poses mirrored left <-> right (x -> -x): a free, plausible augmentation.

    Exact for a left-right symmetric rest skeleton (Anny's is): ``R'_j = M R_swap(j) M`` with
    ``M = diag(-1, 1, 1)``.
    """
    if rotations.shape[-3:] != (NUM_BODY_CORE, 3, 3):
        raise ValueError(f"rotations must have shape (..., {NUM_BODY_CORE}, 3, 3), got {tuple(rotations.shape)}")
    swap = sides_swapped(CORE_NAMES)
    flip = torch.tensor([-1.0, 1.0, 1.0], dtype=rotations.dtype, device=rotations.device)
    return rotations[..., swap, :, :] * flip[:, None] * flip[None, :]


# -- the training set ---------------------------------------------------------------------------

CACHE_VERSION = "cmu-core22-v1"


@dataclass(frozen=True)
class CmuPoses:
    """Retargeted mocap frames, one row per kept frame (CMU, and HDM05 and iClone BVH alike)."""

    rotations: np.ndarray  # (N, 22, 3, 3) float32 local rotations, joint 0 = global orientation (y up)
    root_positions: np.ndarray  # (N, 3) float32 source root (pelvis) position, metres, y up, floor near y = 0
    actions: np.ndarray  # (N,) str
    sequence_ids: np.ndarray  # (N,) int64 index into ``sequence_names``
    frames: np.ndarray  # (N,) int64 frame number in its file (0 = first motion frame)
    sequence_names: tuple[str, ...]  # CMU: "<action>_<n>"; others: the file's stem

    def __len__(self) -> int:
        return self.rotations.shape[0]


def stamped_cache_path(folder: str, prefix: str, version: str, files: list[tuple[str, Path]]) -> Path:
    """``cache_dir()/folder/prefix_<hash>.npz``, the hash over ``version`` and each (label, file)'s
    size and modification time: a changed source file or a new version builds a new cache."""
    h = hashlib.sha1(version.encode())
    for label, path in files:
        st = path.stat()
        h.update(f"{label}:{st.st_size}:{st.st_mtime_ns}".encode())
    return cache_dir() / folder / f"{prefix}_{h.hexdigest()[:16]}.npz"


def _read_cached(path: Path) -> CmuPoses | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return CmuPoses(
                rotations=z["rotations"],
                root_positions=z["root_positions"],
                actions=z["actions"],
                sequence_ids=z["sequence_ids"],
                frames=z["frames"],
                sequence_names=tuple(z["sequence_names"].tolist()),
            )
    except (OSError, ValueError, KeyError):
        return None  # unreadable cache: the caller rebuilds it


def cached_poses(path: Path, build: Callable[[], CmuPoses]) -> CmuPoses:
    """The poses cached at ``path``, else ``build()`` them and write the cache (atomically)."""
    if path.exists():
        poses = _read_cached(path)
        if poses is not None:
            return poses
    poses = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez(
        tmp,
        rotations=poses.rotations,
        root_positions=poses.root_positions,
        actions=poses.actions,
        sequence_ids=poses.sequence_ids,
        frames=poses.frames,
        sequence_names=np.array(poses.sequence_names, dtype=str),
    )
    os.replace(tmp, path)
    return poses


def poses_from_sequences(sequences: Iterable[tuple[str, str, Callable[[], SkeletonMotion]]], stride: int) -> CmuPoses:
    """Retarget sequences (name, action, a loader of its kept frames) onto Anny's neutral core joints.

    Each loader returns the sequence's every ``stride``-th frame (so the caller can skip reading
    or forward kinematics of dropped frames); ``frames`` numbers them in the full sequence.
    """
    rest = anny_rest_joints()
    rotations, roots, actions, ids, frames, names = [], [], [], [], [], []
    for i, (name, action, load) in enumerate(sequences):
        motion = load()
        rotations.append(retarget_motion(motion, rest).float().numpy())
        roots.append(motion.positions[:, 0].float().numpy())
        n = len(motion)
        actions += [action] * n
        ids.append(np.full(n, i, dtype=np.int64))
        frames.append(np.arange(n, dtype=np.int64) * stride)
        names.append(name)
    return CmuPoses(
        rotations=np.concatenate(rotations),
        root_positions=np.concatenate(roots),
        actions=np.array(actions, dtype=str),
        sequence_ids=np.concatenate(ids),
        frames=np.concatenate(frames),
        sequence_names=tuple(names),
    )


def _cmu_frames(path: Path, stride: int) -> Callable[[], SkeletonMotion]:
    return lambda: cmu_skeleton_motion(cmu_forward_kinematics(torch.from_numpy(read_cmu_values(path)[::stride].copy())))


def load_cmu_poses(split: str, stride: int = 4, actions: tuple[str, ...] | list[str] | None = None, root=None) -> CmuPoses:
    """CMU frames of ``split`` ("train" or "test", the held-out set) retargeted to the core joints.

    Every ``stride``-th frame is kept (the files are 120 Hz). Results are cached as .npz under
    ``hmrkit.paths.cache_dir()/cmu_mocap``, keyed by the files' sizes and times, so a second
    call reads no text. ``root``: the ``cmu_mocap`` folder (see :func:`cmu_data_dir`).
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    files = cmu_sequence_files(split, actions, root)
    path = stamped_cache_path("cmu_mocap", f"{split}_stride{stride}", CACHE_VERSION, [(f"{f.action}/{f.name}", f.path) for f in files])
    return cached_poses(path, lambda: poses_from_sequences([(f.name, f.action, _cmu_frames(f.path, stride)) for f in files], stride))
