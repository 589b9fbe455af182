"""CMU motion on the iClone CC_Base rig (BVH, 60 fps), retargeted to hmrkit's core joints.

The subset (CMU subjects 1, 2, 3, 5, 6, 7: playground climbing, sitting, swordplay, dance,
dribbling; CMU terms) is one archive, ``<root>/cmu_iclone_subset/iclone_cmu_subset.tar.xz``,
unpacked at run time into ``hmrkit.paths.cache_dir()/iclone_bvh`` (never into the package).

**The rig and its rest.** All 61 files share one CC_Base skeleton (~140 joints with twist,
finger, toe and face bones). Its zero pose means nothing (the rig bakes joint orientations into
the offsets), so the rest is the rig's T-pose: the first frame of the files that start with it
(CMU subject 7, takes 3-12, prepended by the converter; dropped from their motion). In it the
pelvis faces +z with y up, the legs hang straight, the arms are level with the palms down: the
retargeting's rest convention, so rotations are taken relative to it (``G(t) G_T^T``). The BVH
world is already hmrkit's canonical frame (y up, the subject's left +x), in centimetres.

**The mapping** (CMU segment role -> CC_Base joint that starts it and turns it,
:data:`ICLONE_SEGMENTS`): root = Hip (the spine and, through the rigidly attached Pelvis, the
thighs hang off it); femur/tibia/foot/toes = Thigh/Calf/Foot/ToeBase; lowerback/upperback/thorax =
Waist/Spine01/Spine02; lowerneck/upperneck/head = NeckTwist01/NeckTwist02/Head; clavicle/humerus/
radius = Clavicle/Upperarm/Forearm; wrist and hand = Hand; fingers = Mid1 (the middle knuckle).
CC's forearm bone is a pure elbow hinge (its rotation axis is fixed in the upper arm's frame);
the pronation sits in the Hand's rotation (and a little in ForearmTwist01), so the ``wrist``
role (whose thumb side twists our forearm) is the Hand: our forearm then pronates as the CMU
subject's did, and our wrist keeps only flexion and deviation. Twist, share and face bones are
not read. ``head_end`` (drawing and height checks only) is a point 20 cm above the head joint
along the head's rest up; ``toes_end`` is the middle toe's base, ``fingers_end`` the middle
finger's last joint.

Frame rate: 60 fps, half the CMU and HDM05 files' 120 Hz, so every ``ceil(stride / 2)``-th frame
is kept: the same rate as :func:`load_cmu_poses` for even strides (stride 4: 30 fps); stride 1
keeps every frame (60 fps).
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from hmrkit.body.base import Skeleton
from hmrkit.data.bvh import BvhMotion, bvh_forward_kinematics, read_bvh
from hmrkit.data.data_dirs import mocap_data_dir
from hmrkit.data.retarget import CmuPoses, cached_poses, poses_from_sequences, stamped_cache_path
from hmrkit.data.skeleton_motion import SkeletonMotion
from hmrkit.paths import cache_dir
from hmrkit.geometry.rotations import geodesic_angle

ICLONE_FOLDER = "cmu_iclone_subset"
ICLONE_ARCHIVE = "iclone_cmu_subset.tar.xz"
ICLONE_FPS = 60
CM = 0.01
HEAD_TOP_M = 0.2
CACHE_VERSION = "iclone-core22-v1"
TPOSE_TOLERANCE_DEG = 0.5


def _sides() -> list[tuple[str, str, str]]:
    rows = []
    for s, cc in (("l", "L"), ("r", "R")):
        rows += [
            (f"{s}femur", "root", f"CC_Base_{cc}_Thigh"),
            (f"{s}tibia", f"{s}femur", f"CC_Base_{cc}_Calf"),
            (f"{s}foot", f"{s}tibia", f"CC_Base_{cc}_Foot"),
            (f"{s}toes", f"{s}foot", f"CC_Base_{cc}_ToeBase"),
            (f"{s}toes_end", f"{s}toes", f"CC_Base_{cc}_MidToe1"),
            (f"{s}clavicle", "thorax", f"CC_Base_{cc}_Clavicle"),
            (f"{s}humerus", f"{s}clavicle", f"CC_Base_{cc}_Upperarm"),
            (f"{s}radius", f"{s}humerus", f"CC_Base_{cc}_Forearm"),
            (f"{s}wrist", f"{s}radius", f"CC_Base_{cc}_Hand"),
            (f"{s}hand", f"{s}wrist", f"CC_Base_{cc}_Hand"),
            (f"{s}fingers", f"{s}hand", f"CC_Base_{cc}_Mid1"),
            (f"{s}fingers_end", f"{s}fingers", f"CC_Base_{cc}_Mid3"),
            (f"{s}thumb", f"{s}wrist", f"CC_Base_{cc}_Thumb1"),
            (f"{s}thumb_end", f"{s}thumb", f"CC_Base_{cc}_Thumb3"),
        ]
    return rows


# (CMU segment role, its parent role, the CC_Base joint at its start whose rotation turns it)
ICLONE_SEGMENTS: tuple[tuple[str, str | None, str], ...] = tuple(
    [
        ("root", None, "CC_Base_Hip"),
        ("lowerback", "root", "CC_Base_Waist"),
        ("upperback", "lowerback", "CC_Base_Spine01"),
        ("thorax", "upperback", "CC_Base_Spine02"),
        ("lowerneck", "thorax", "CC_Base_NeckTwist01"),
        ("upperneck", "lowerneck", "CC_Base_NeckTwist02"),
        ("head", "upperneck", "CC_Base_Head"),
    ]
    + _sides()
)
ROLE_NAMES = tuple(r for r, _, _ in ICLONE_SEGMENTS) + ("head_end",)
ROLE_SKELETON = Skeleton(ROLE_NAMES, tuple(-1 if p is None else ROLE_NAMES.index(p) for _, p, _ in ICLONE_SEGMENTS) + (ROLE_NAMES.index("head"),))


@dataclass(frozen=True)
class IcloneSequenceFile:
    action: str  # the CMU description's first part: "dance", "playground", "walk", "basketball", ...
    description: str  # CMU's full description, e.g. "dance - expressive arms, pirouette"
    name: str  # "<subject>_<trial>", e.g. "005_02"
    path: Path


def iclone_archive(root: str | os.PathLike | None = None) -> Path:
    """The archive (``root`` is the ``cmu_iclone_subset`` folder; default as :func:`mocap_data_dir`)."""
    path = mocap_data_dir(ICLONE_FOLDER, root) / ICLONE_ARCHIVE
    if not path.is_file():
        raise FileNotFoundError(f"iClone archive not found: {path}")
    return path


def iclone_bvh_dir(root: str | os.PathLike | None = None) -> Path:
    """The archive unpacked under ``cache_dir()/iclone_bvh`` (once per archive size and time)."""
    archive = iclone_archive(root)
    st = archive.stat()
    target = cache_dir() / "iclone_bvh" / f"{st.st_size}_{st.st_mtime_ns}"
    if not target.is_dir():
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with tarfile.open(archive, "r:xz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and (m.name.endswith(".bvh") or m.name.endswith(".csv"))]
            tar.extractall(tmp, members=members, filter="data")
        try:
            os.replace(tmp, target)
        except OSError:  # another process unpacked it first
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def iclone_sequence_files(root: str | os.PathLike | None = None) -> list[IcloneSequenceFile]:
    """All BVH files, sorted by name, with their CMU descriptions."""
    folder = iclone_bvh_dir(root)
    descriptions = {}
    for table in folder.rglob("*.csv"):
        with open(table, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                descriptions[f"{int(row['Subject']):03d}_{int(row['Trial #']):02d}"] = row["Motion Description"].strip()
    files = []
    for path in sorted(folder.rglob("*.bvh"), key=lambda p: p.stem):
        description = descriptions.get(path.stem, "unknown")
        files.append(IcloneSequenceFile(description.split(" - ")[0].strip(), description, path.stem, path))
    if not files:
        raise FileNotFoundError(f"no BVH files in {folder}")
    return files


# -- the rig's rest ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IcloneRest:
    """The CC_Base rig's T-pose: world rotations and positions of the role joints."""

    rig: tuple[tuple[str, tuple[float, float, float]], ...]  # the rig's joints and offsets, to check other files
    rotations: torch.Tensor  # (R, 3, 3) world rotation of each role's CC joint in the T-pose
    positions: torch.Tensor  # (R, 3) role joint positions, metres, root at the origin


def _role_frames(bvh: BvhMotion) -> tuple[torch.Tensor, torch.Tensor]:
    """World positions (T, R, 3, metres) and rotations (T, R, 3, 3) of the role joints (no head_end)."""
    positions, rotations = bvh_forward_kinematics(bvh, CM)
    index = [bvh.skeleton.index(cc) for _, _, cc in ICLONE_SEGMENTS]
    return positions[:, index], rotations[:, index]


def _is_tpose(rotations: torch.Tensor, rest: IcloneRest) -> bool:
    angle = geodesic_angle(rotations, rest.rotations)
    return bool(torch.rad2deg(angle).max() < TPOSE_TOLERANCE_DEG)


def _rig(bvh: BvhMotion) -> tuple[tuple[str, tuple[float, float, float]], ...]:
    """The CC_Base joints below the Hip with their offsets (some files hang the Hip under an extra
    ``RL_BoneRoot`` that turns z-up into y-up, others give it position channels: same world)."""
    return tuple((j.name, j.offset) for j in bvh.joints if j.name.startswith("CC_Base_") and j.name != "CC_Base_Hip")


def find_iclone_rest(files: list[IcloneSequenceFile]) -> IcloneRest:
    """The rig's T-pose: the first frame of the first file that starts with the pelvis at the
    origin, unturned (identity rotation), the arms level and the legs hanging straight."""
    for f in files:
        bvh = read_bvh(f.path, max_frames=1)
        positions, rotations = _role_frames(bvh)
        p, r = positions[0], rotations[0]
        n = ROLE_NAMES.index
        if float(torch.rad2deg(geodesic_angle(r[0], torch.eye(3, dtype=r.dtype)))) > TPOSE_TOLERANCE_DEG:
            continue
        arms_level = all(abs(float(p[n(f"{s}fingers"), 1] - p[n(f"{s}humerus"), 1])) < 0.05 for s in "lr")
        legs_straight = all(abs(float(p[n(f"{s}foot"), 0] - p[n(f"{s}femur"), 0])) < 0.05 for s in "lr")
        if arms_level and legs_straight:
            return IcloneRest(_rig(bvh), r, p - p[0])
    raise ValueError("no iClone file starts with the rig's T-pose (pelvis unturned at the origin, arms level)")


@lru_cache(maxsize=1)
def default_iclone_rest() -> IcloneRest:
    """The T-pose found in the default data folder's files (read once)."""
    return find_iclone_rest(iclone_sequence_files())


def iclone_skeleton_motion(bvh: BvhMotion, rest: IcloneRest, stride: int = 1) -> SkeletonMotion:
    """Every ``stride``-th BVH frame as a :class:`SkeletonMotion` with CMU segment names.

    Rotations are relative to the rig's T-pose; a leading T-pose frame is dropped.
    """
    if _rig(bvh) != rest.rig:
        raise ValueError("this BVH file's CC_Base rig differs from the T-pose's rig")
    positions, rotations = _role_frames(bvh.take(slice(0, 1)))
    start = 1 if _is_tpose(rotations[0], rest) else 0
    positions, rotations = _role_frames(bvh.take(slice(start, None, stride)))
    rotations = rotations @ rest.rotations.transpose(-1, -2)
    head = ROLE_NAMES.index("head")
    up = torch.tensor([0.0, HEAD_TOP_M, 0.0], dtype=positions.dtype)
    head_end = positions[:, head] + (rotations[:, head] @ up)
    positions = torch.cat([positions, head_end[:, None]], dim=1)
    rotations = torch.cat([rotations, rotations[:, head : head + 1]], dim=1)
    rest_positions = torch.cat([rest.positions, (rest.positions[head] + up)[None]])
    return SkeletonMotion(ROLE_SKELETON, positions, rotations, rest_positions)


def read_iclone_motion(file: IcloneSequenceFile, stride: int = 1, rest: IcloneRest | None = None) -> SkeletonMotion:
    """One iClone file's frames (every ``stride``-th BVH frame) with CMU segment names.

    ``rest``: the rig's T-pose (:func:`find_iclone_rest`); default: the one in the default data folder.
    """
    return iclone_skeleton_motion(read_bvh(file.path), default_iclone_rest() if rest is None else rest, stride)


def bvh_step(stride: int) -> int:
    """BVH frames per kept frame for a 120 Hz ``stride``: ``ceil(stride / 2)`` at 60 fps."""
    return math.ceil(stride / 2)


def load_iclone_poses(stride: int = 4, root=None) -> CmuPoses:
    """All iClone BVH files retargeted to the core joints (no split: it is extra training motion).

    Every ``ceil(stride / 2)``-th frame is kept (the files are 60 fps, see the module's notes);
    ``frames`` counts 60 fps frames from the first motion frame. ``actions`` holds the CMU
    description's first part (``dance``, ``playground``, ``basketball``, ``walk``, ...).
    Cached as .npz under ``hmrkit.paths.cache_dir()/iclone``, keyed by the archive's size and time.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    archive = iclone_archive(root)
    step = bvh_step(stride)
    path = stamped_cache_path("iclone", f"stride{stride}", CACHE_VERSION, [(archive.name, archive)])

    def build() -> CmuPoses:
        files = iclone_sequence_files(root)
        rest = find_iclone_rest(files)

        def loader(f: IcloneSequenceFile):
            return lambda: iclone_skeleton_motion(read_bvh(f.path), rest, step)

        return poses_from_sequences([(f.name, f.action, loader(f)) for f in files], step)

    return cached_poses(path, build)
