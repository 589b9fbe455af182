"""CMU motion capture in the 117-value exponential-map files of motion-prediction work.

Each line of ``<root>/{train,test}/<action>/<action>_<n>.txt`` is one frame: the root position
(3 values, ASF length units) then one exponential map (axis-angle, radians) per joint of the
38-joint CMU skeleton below. The first line of every file is the skeleton's calibration pose,
not motion, and is dropped.

The skeleton is the CMU ASF skeleton as these files were made from it (bone offsets from the
public motion-prediction code, Li et al. 2018). Joint ``i`` sits at the *start* of the ASF bone
it is named after and its rotation turns that bone: its children's offsets. Some ASF bones
have zero length here (``thorax``, ``lhipjoint``'s start, the wrist/thumb roots), so the torso is
shorter than the real subject's; only directions matter for retargeting.

Forward kinematics (the files' convention, written for column vectors): with ``L_i`` the
*transpose* of the Rodrigues matrix of joint ``i``'s exponential map,
``G_i = G_parent @ L_i`` and ``p_i = p_parent + G_parent @ offset_i``; the root has
``G_0 = L_0`` and ``p_0 = root position``. ``L_i`` acts in world-aligned axes at rest, exactly
hmrkit's SMPL-style convention. The ASF world is y up, and at rest the subject's left is +x
and the toes point +z: hmrkit's canonical body frame, so positions need no axis change.
Lengths are converted to metres (one ASF unit is 1/0.45 inch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hmrkit.body.base import Skeleton
from hmrkit.body.kinematics import KinematicTree, forward_kinematics
from hmrkit.paths import package_dir
from hmrkit.geometry.rotations import axis_angle_to_matrix

ASF_UNIT_M = 0.0254 / 0.45  # metres per ASF length unit (":units length 0.45" = 1/0.45 inch)
NUM_CMU_JOINTS = 38
VALUES_PER_FRAME = 3 + 3 * NUM_CMU_JOINTS  # 117
SPLITS = ("train", "test")
DATA_ENV = "HMRKIT_DATA_DIR"


@dataclass(frozen=True)
class CmuJoint:
    name: str  # the ASF bone this joint starts (its rotation turns that bone)
    parent: str | None
    offset: tuple[float, float, float]  # from the parent joint, ASF units, rest pose


def _side(s: str, sign: float, legs: bool) -> list[CmuJoint]:
    """One side's leg or arm (``s`` is "l" or "r"); ``sign`` is the side's x direction. Each side
    keeps its own measured lengths: the subject is not exactly symmetric."""
    if legs:
        lengths = {
            "l": ((1.65674, -1.80282, 0.62477), (2.59720, -7.13576, 0.0), (2.49236, -6.84770, 0.0),
                  (0.19704, -0.54136, 2.14581), (0.0, 0.0, 1.11249)),
            "r": ((-1.61070, -1.80282, 0.62476), (-2.59502, -7.12977, 0.0), (-2.46780, -6.78024, 0.0),
                  (-0.23024, -0.63258, 2.13368), (0.0, 0.0, 1.11569)),
        }[s]
        names = ("hipjoint", "femur", "tibia", "foot", "toes", "toes_end")
        offsets = ((0.0, 0.0, 0.0),) + lengths
        parents = ("root",) + tuple(f"{s}{n}" for n in names[:-1])
        return [CmuJoint(f"{s}{n}", p, o) for n, p, o in zip(names, parents, offsets)]
    arm = {
        "l": ((3.54205, 0.90436, -0.17364), 4.86513, 3.35554, 0.66117, 0.53306, 0.54120),
        "r": ((-3.49802, 0.75994, -0.32616), 5.02649, 3.36431, 0.73041, 0.58887, 0.59786),
    }[s]
    clavicle, humerus, radius, hand, fingers, thumb = arm
    x = sign
    return [
        CmuJoint(f"{s}clavicle", "thorax", (0.0, 0.0, 0.0)),
        CmuJoint(f"{s}humerus", f"{s}clavicle", clavicle),
        CmuJoint(f"{s}radius", f"{s}humerus", (x * humerus, 0.0, 0.0)),
        CmuJoint(f"{s}wrist", f"{s}radius", (x * radius, 0.0, 0.0)),
        CmuJoint(f"{s}hand", f"{s}wrist", (0.0, 0.0, 0.0)),
        CmuJoint(f"{s}fingers", f"{s}hand", (x * hand, 0.0, 0.0)),
        CmuJoint(f"{s}fingers_end", f"{s}fingers", (x * fingers, 0.0, 0.0)),
        CmuJoint(f"{s}thumb", f"{s}wrist", (0.0, 0.0, 0.0)),
        CmuJoint(f"{s}thumb_end", f"{s}thumb", (x * thumb, 0.0, thumb)),
    ]


CMU_JOINTS: tuple[CmuJoint, ...] = tuple(
    [CmuJoint("root", None, (0.0, 0.0, 0.0))]
    + _side("l", 1.0, legs=True)
    + _side("r", -1.0, legs=True)
    + [
        CmuJoint("lowerback", "root", (0.0, 0.0, 0.0)),
        CmuJoint("upperback", "lowerback", (0.01961, 2.05450, -0.14112)),
        CmuJoint("thorax", "upperback", (0.01021, 2.06436, -0.05921)),
        CmuJoint("lowerneck", "thorax", (0.0, 0.0, 0.0)),
        CmuJoint("upperneck", "lowerneck", (0.00713, 1.56711, 0.14968)),
        CmuJoint("head", "upperneck", (0.03429, 1.56041, -0.10006)),
        CmuJoint("head_end", "head", (0.01305, 1.62560, -0.05265)),
    ]
    + _side("l", 1.0, legs=False)
    + _side("r", -1.0, legs=False)
)


def _skeleton() -> Skeleton:
    names = tuple(j.name for j in CMU_JOINTS)
    return Skeleton(names, tuple(-1 if j.parent is None else names.index(j.parent) for j in CMU_JOINTS))


CMU_SKELETON = _skeleton()
CMU_TREE = KinematicTree(CMU_SKELETON.parents)


def cmu_offsets(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(38, 3) bone offsets from each joint's parent, metres, rest pose (a T-pose, legs apart)."""
    return torch.tensor([j.offset for j in CMU_JOINTS], dtype=dtype) * ASF_UNIT_M


def cmu_rest_joints(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(38, 3) rest joint positions relative to the root, metres."""
    offsets = cmu_offsets(dtype)
    rest = torch.zeros_like(offsets)
    for j, p in enumerate(CMU_SKELETON.parents):
        if p >= 0:
            rest[j] = rest[p] + offsets[j]
    return rest


@dataclass
class CmuMotion:
    """CMU frames after forward kinematics, in hmrkit's canonical frame (y up), metres."""

    positions: torch.Tensor  # (T, 38, 3) joint positions, root translation included
    rotations: torch.Tensor  # (T, 38, 3, 3) world rotation of each joint's segment (rest -> posed)


def cmu_forward_kinematics(values: torch.Tensor) -> CmuMotion:
    """(T, 117) file values (root position in ASF units, exponential maps) -> :class:`CmuMotion`."""
    if values.ndim != 2 or values.shape[1] != VALUES_PER_FRAME:
        raise ValueError(f"CMU values must have shape (T, {VALUES_PER_FRAME}), got {tuple(values.shape)}")
    frames = values.shape[0]
    exp_maps = values[:, 3:].reshape(frames, NUM_CMU_JOINTS, 3)
    local = axis_angle_to_matrix(exp_maps).transpose(-1, -2)  # the files apply exp(r) to row vectors
    world_r, posed = forward_kinematics(local, cmu_rest_joints(values.dtype)[None], CMU_TREE)
    root = values[:, :3] * ASF_UNIT_M
    return CmuMotion(positions=posed + root[:, None, :], rotations=world_r)


# -- files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CmuSequenceFile:
    split: str
    action: str
    name: str  # "<action>_<n>"
    path: Path


def cmu_data_dir(root: str | os.PathLike | None = None) -> Path:
    """The ``cmu_mocap`` folder: ``root`` if given, else ``$HMRKIT_DATA_DIR/cmu_mocap``, else the
    development checkout's ``../shared/data/cmu_mocap``. Raises ``FileNotFoundError`` if absent."""
    if root is not None:
        path = Path(root)
    elif os.environ.get(DATA_ENV):
        path = Path(os.environ[DATA_ENV]) / "cmu_mocap"
    else:
        path = package_dir().parent.parent / "shared" / "data" / "cmu_mocap"
    if not path.is_dir():
        raise FileNotFoundError(
            f"CMU mocap folder not found: {path} (pass root=..., or set ${DATA_ENV} to the folder holding cmu_mocap/)"
        )
    return path


def cmu_sequence_files(split: str, actions: tuple[str, ...] | list[str] | None = None, root=None) -> list[CmuSequenceFile]:
    """The sequence files of ``split``, sorted by action then sequence number."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    base = cmu_data_dir(root) / split
    available = sorted(p.name for p in base.iterdir() if p.is_dir())
    chosen = available if actions is None else list(actions)
    unknown = [a for a in chosen if a not in available]
    if unknown:
        raise ValueError(f"unknown CMU action(s) {unknown} in {split}; available: {', '.join(available)}")
    files = []
    for action in chosen:
        paths = sorted((base / action).glob(f"{action}_*.txt"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        files += [CmuSequenceFile(split, action, p.stem, p) for p in paths]
    return files


def read_cmu_values(path: str | os.PathLike) -> np.ndarray:
    """(T, 117) float64 values of one file, calibration line dropped."""
    values = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    if values.shape[1] != VALUES_PER_FRAME:
        raise ValueError(f"{path}: expected {VALUES_PER_FRAME} values per line, got {values.shape[1]}")
    if values.shape[0] < 2 or not np.isfinite(values).all():
        raise ValueError(f"{path}: no motion frames, or non-finite values")
    return values[1:]
