"""hmrkit's skeletons on Anny's 104 bones: the core body skeleton, the fingers, the hands.

Each skeleton joint *drives* one or more Anny bones (``bones``): its position is the mean of
their heads, and it rotates them. Every Anny bone that no joint names is carried rigidly by
the nearest named ancestor (its skinning weight goes to that joint). So, with the 52 joints
below:

- Anny's five spine bones: ``spine05`` stays with the pelvis, ``spine04`` is ``spine1``,
  ``spine03`` rides on it, ``spine02`` is ``spine2``, ``spine01`` is ``spine3``.
- Twist bones (``upperleg02``, ``lowerleg02``, ``upperarm02``, ``lowerarm02``) and helper bones
  (``pelvis.L/R``, ``shoulder01``) stay at rest relative to their parent joint.
- ``neck01`` is ``neck``; ``neck02``/``neck03`` ride on it; ``head`` is ``head`` (with the eyes).
- ``left_foot`` (the ball of the foot, as SMPL's foot joint) drives all five toes as one rigid
  part, rotating about the mean of their root heads.
- The metacarpals ride on the wrist; each finger has three joints (SMPL-H order and names).

The body's zero pose is Anny's rest pose: standing, arms about 45 degrees down (an A-pose).
"""

from __future__ import annotations

from dataclasses import dataclass

from hmrkit.body.base import Skeleton

SIDES = {"left": "L", "right": "R"}
# SMPL-H finger order; Anny numbers fingers 1 (thumb) to 5 (little).
FINGER_BONES = {"index": 2, "middle": 3, "pinky": 5, "ring": 4, "thumb": 1}


@dataclass(frozen=True)
class RigJoint:
    name: str
    parent: str | None
    bones: tuple[str, ...]


def _body_joints() -> list[RigJoint]:
    j = [RigJoint("pelvis", None, ("root",))]
    for side, s in SIDES.items():
        j.append(RigJoint(f"{side}_hip", "pelvis", (f"upperleg01.{s}",)))
    j.append(RigJoint("spine1", "pelvis", ("spine04",)))
    for side, s in SIDES.items():
        j.append(RigJoint(f"{side}_knee", f"{side}_hip", (f"lowerleg01.{s}",)))
    j.append(RigJoint("spine2", "spine1", ("spine02",)))
    for side, s in SIDES.items():
        j.append(RigJoint(f"{side}_ankle", f"{side}_knee", (f"foot.{s}",)))
    j.append(RigJoint("spine3", "spine2", ("spine01",)))
    for side, s in SIDES.items():
        j.append(RigJoint(f"{side}_foot", f"{side}_ankle", tuple(f"toe{t}-1.{s}" for t in range(1, 6))))
    j.append(RigJoint("neck", "spine3", ("neck01",)))
    for side, s in SIDES.items():
        j.append(RigJoint(f"{side}_collar", "spine3", (f"clavicle.{s}",)))
    j.append(RigJoint("head", "neck", ("head",)))
    for part, bone, parent in (("shoulder", "upperarm01", "collar"), ("elbow", "lowerarm01", "shoulder"), ("wrist", "wrist", "elbow")):
        for side, s in SIDES.items():
            j.append(RigJoint(f"{side}_{part}", f"{side}_{parent}", (f"{bone}.{s}",)))
    return j


def _finger_joints(side: str, wrist_name: str) -> list[RigJoint]:
    s = SIDES[side]
    joints = []
    for finger, number in FINGER_BONES.items():
        parent = wrist_name
        for k in (1, 2, 3):
            name = f"{side}_{finger}{k}"
            joints.append(RigJoint(name, parent, (f"finger{number}-{k}.{s}",)))
            parent = name
    return joints


BODY_JOINTS: tuple[RigJoint, ...] = tuple(
    _body_joints() + _finger_joints("left", "left_wrist") + _finger_joints("right", "right_wrist")
)
NUM_BODY_CORE = 22  # the first 22 joints: what body regressors predict; the rest are fingers


def hand_joints(side: str) -> tuple[RigJoint, ...]:
    """The hand alone: the wrist as root, then the 15 finger joints."""
    wrist = RigJoint(f"{side}_wrist", None, (f"wrist.{SIDES[side]}",))
    return (wrist,) + tuple(_finger_joints(side, wrist.name))


def skeleton_of(joints: tuple[RigJoint, ...]) -> Skeleton:
    names = tuple(j.name for j in joints)
    parents = tuple(-1 if j.parent is None else names.index(j.parent) for j in joints)
    return Skeleton(names, parents)


# HKMR's six kinematic chains on the core skeleton, each from its root outwards.
KINEMATIC_CHAINS: dict[str, tuple[str, ...]] = {
    "root": ("pelvis", "spine1", "spine2", "spine3"),
    "head": ("neck", "head"),
    "left_arm": ("left_collar", "left_shoulder", "left_elbow", "left_wrist"),
    "right_arm": ("right_collar", "right_shoulder", "right_elbow", "right_wrist"),
    "left_leg": ("left_hip", "left_knee", "left_ankle", "left_foot"),
    "right_leg": ("right_hip", "right_knee", "right_ankle", "right_foot"),
}
