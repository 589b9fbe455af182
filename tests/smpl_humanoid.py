"""A synthetic SMPL-X file shaped like a person, for end-to-end runs (no licensed data).

:func:`smpl_fixtures.synth_model` gives random geometry (good for checking the equations);
fitting a photo needs a body whose joints and landmark vertices sit where a person's do. This
one has the real SMPL-X format and sizes, a hand-typed T-pose skeleton (y up, +z forward, the
person's left at +x, metres), vertex blobs along each bone skinned rigidly to it, the public
landmark vertex ids at plausible places, and a joint regressor that puts each joint exactly at
its typed position.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from smpl_fixtures import NUM_FACES, NUM_VERTICES, PARENTS, SynthModel, write_npz

_CORE = {  # left side; the right mirrors x
    "pelvis": (0.0, 0.0, 0.0), "left_hip": (0.08, -0.08, 0.0), "spine1": (0.0, 0.1, -0.01),
    "left_knee": (0.1, -0.47, 0.0), "spine2": (0.0, 0.22, -0.01), "left_ankle": (0.1, -0.87, -0.03),
    "spine3": (0.0, 0.28, 0.0), "left_foot": (0.11, -0.93, 0.09), "neck": (0.0, 0.5, -0.02),
    "left_collar": (0.07, 0.42, -0.01), "head": (0.0, 0.6, 0.01), "left_shoulder": (0.17, 0.45, -0.02),
    "left_elbow": (0.43, 0.45, -0.03), "left_wrist": (0.68, 0.45, -0.02), "jaw": (0.0, 0.58, 0.03),
    "left_eye_smplhf": (0.03, 0.66, 0.08),
}  # fmt: skip
_FINGER_BASES = {"index": (0.77, 0.45, 0.02), "middle": (0.775, 0.45, 0.0), "pinky": (0.75, 0.45, -0.04),
                 "ring": (0.765, 0.45, -0.02), "thumb": (0.71, 0.44, 0.04)}
_LANDMARKS = {  # SMPL-X vertex id -> (position of the left one or a midline one, joint it rides on)
    9120: ((0.0, 0.62, 0.11), "head"), 9448: ((0.03, 0.66, 0.09), "head"), 6: ((0.075, 0.63, 0.0), "head"),
    5770: ((0.11, -0.95, 0.16), "left_foot"), 5780: ((0.15, -0.95, 0.12), "left_foot"), 8846: ((0.1, -0.95, -0.07), "left_ankle"),
}
_MIRROR = {9929: 9448, 616: 6, 8463: 5770, 8474: 5780, 8635: 8846}  # right id -> left id
_TIPS = {"thumb": (5361, 8079), "index": (4933, 7669), "middle": (5058, 7794), "ring": (5169, 7905), "pinky": (5286, 8022)}


def skeleton_positions(names: tuple[str, ...]) -> np.ndarray:
    """(55, 3) rest joints of the SMPL-X skeleton ``names``."""
    out = np.zeros((len(names), 3))
    for j, name in enumerate(names):
        side = 1.0
        base = name
        if name.startswith("right_"):
            side, base = -1.0, "left_" + name[len("right_"):]
        if base in _CORE:
            p = np.array(_CORE[base])
        elif name in _CORE:
            p = np.array(_CORE[name])
        else:  # a finger joint: left_<finger><k>
            finger, k = base[len("left_"):-1], int(base[-1])
            step = np.array([0.02, -0.01, 0.02]) if finger == "thumb" else np.array([0.03, 0.0, 0.0])
            p = np.array(_FINGER_BASES[finger]) + (k - 1) * step
        out[j] = p * np.array([side, 1.0, 1.0])
    return out


def humanoid_smplx(names: tuple[str, ...], seed: int = 0, num_shape_dirs: int = 20) -> SynthModel:
    """A person-like SMPL-X as a :class:`SynthModel` (``names``: the SMPL-X joint names in order)."""
    rng = np.random.default_rng(seed)
    parents = PARENTS["smplx"]
    v, j = NUM_VERTICES["smplx"], len(parents)
    joints = skeleton_positions(names)
    vertices = np.zeros((v, 3))
    owner = np.zeros(v, dtype=np.int64)
    fixed: dict[int, tuple[np.ndarray, int]] = {}
    for vid, (pos, joint) in _LANDMARKS.items():
        fixed[vid] = (np.array(pos), names.index(joint))
    for right, left in _MIRROR.items():
        pos, joint = fixed[left]
        fixed[right] = (pos * np.array([-1.0, 1, 1]), names.index(names[joint].replace("left", "right")))
    for finger, ids in _TIPS.items():
        for side, vid in zip(("left", "right"), ids):
            last, prev = names.index(f"{side}_{finger}3"), names.index(f"{side}_{finger}2")
            fixed[vid] = (joints[last] + 0.8 * (joints[last] - joints[prev]), last)
    # the regressor: per joint 6 vertices at +-1 cm along each axis (their mean is the joint)
    free = [i for i in range(v) if i not in fixed]
    regressor = np.zeros((j, v))
    cursor = 0
    for joint in range(j):
        for axis in range(3):
            for sign in (1.0, -1.0):
                vid = free[cursor]
                cursor += 1
                offset = np.zeros(3)
                offset[axis] = sign * 0.01
                fixed[vid] = (joints[joint] + offset, joint)
                regressor[joint, vid] = 1.0 / 6
    # the rest: blobs along each bone (from the joint to its first child, or around it)
    children = {p: c for c, p in reversed(list(enumerate(parents))) if p >= 0}
    rest_ids = free[cursor:]
    bone_of = rng.integers(0, j, size=len(rest_ids))
    for vid, joint in zip(rest_ids, bone_of):
        end = joints[children[joint]] if joint in children else joints[joint]
        radius = 0.015 if "index" in names[joint] or "middle" in names[joint] or "ring" in names[joint] \
            or "pinky" in names[joint] or "thumb" in names[joint] else 0.05
        fixed[vid] = (joints[joint] + rng.uniform() * (end - joints[joint]) + rng.normal(scale=radius, size=3), joint)
    for vid, (pos, joint) in fixed.items():
        vertices[vid], owner[vid] = pos, joint
    weights = np.zeros((v, j))
    weights[np.arange(v), owner] = 1.0
    # faces: triangles among vertices of the same bone, so the mesh renders as blobs on the skeleton
    faces = []
    by_joint = [np.nonzero(owner == k)[0] for k in range(j)]
    while len(faces) < NUM_FACES["smplx"]:
        members = by_joint[rng.integers(0, j)]
        if len(members) >= 3:
            faces.append(rng.choice(members, 3, replace=False))
    arrays = {
        "v_template": vertices,
        "shapedirs": rng.normal(scale=0.003, size=(v, 3, num_shape_dirs)),
        "posedirs": rng.normal(scale=0.001, size=(v, 3, 9 * (j - 1))),
        "J_regressor": regressor,
        "kintree_table": np.array([[2**32 - 1] + parents[1:], list(range(j))], dtype=np.int64),
        "weights": weights,
        "f": np.array(faces, dtype=np.uint32),
    }
    return SynthModel(arrays, "smplx")


def write_humanoid_folder(folder: Path, names: tuple[str, ...]) -> Path:
    """``folder/smplx/SMPLX_NEUTRAL.npz`` as users lay it out; returns ``folder``."""
    (folder / "smplx").mkdir(parents=True, exist_ok=True)
    write_npz(humanoid_smplx(names), folder / "smplx" / "SMPLX_NEUTRAL.npz")
    return folder
