"""ASF skeletons and AMC motion (the Acclaim format of CMU and HDM05), with forward kinematics.

The conventions, as Vicon writes them for CMU and HDM05:

- ``:units length L``: Vicon stores lengths as inches times ``L``, so one unit is ``0.0254 / L``
  metres (``L = 0.45`` in CMU and HDM05: 5.64 cm). ``angle deg`` or ``rad``.
- A bone's ``direction`` is a unit vector in world axes at rest and ``length`` is in units; a
  bone starts where its parent ends (the root's children start at the root).
- A bone's ``axis a b c XYZ`` gives its local frame ``C`` as Euler angles, applied in the order
  written (``XYZ``: about x first, so ``C = Rz(c) Ry(b) Rx(a)`` for column vectors).
- AMC frames give each bone's ``dof`` values in the ``dof`` order; they rotate about the bone's
  local axes, first listed first: ``M = R_last ... R_first``. In world-aligned axes that is
  ``L = C M C^-1``, and ``G = G_parent L``: identity at rest, the convention of
  :class:`hmrkit.data.skeleton_motion.SkeletonMotion`.
- The root's AMC channels follow ``:root order`` (``TX TY TZ RX RY RZ``): an absolute translation
  in units and a rotation built the same way, its ``C`` from ``orientation`` in ``axis`` order.

The ASF world is y up with the subject's left at +x and the toes at +z at rest (the CMU and
HDM05 skeletons' hip and foot directions say so): hmrkit's canonical body frame, so nothing is
re-axed. Only rotational dofs are read (``tx``/``ty``/``tz``/``l`` bone dofs are refused).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hmrkit.body.base import Skeleton
from hmrkit.body.kinematics import KinematicTree, forward_kinematics
from hmrkit.data.skeleton_motion import SkeletonMotion

INCH_M = 0.0254
ROTATION_DOFS = ("rx", "ry", "rz")


@dataclass(frozen=True)
class AsfBone:
    name: str
    parent: str  # "root" for the root's children
    direction: tuple[float, float, float]  # unit vector, world axes at rest
    length: float  # ASF units
    axis: tuple[float, float, float]  # Euler angles of the bone's local frame, in the skeleton's angle unit
    axis_order: str  # e.g. "XYZ": the axes of ``axis``, applied in this order
    dof: tuple[str, ...]  # AMC channels in file order, e.g. ("rx", "ry", "rz"); () for fixed bones


@dataclass(frozen=True)
class AsfRoot:
    order: tuple[str, ...]  # AMC channels in file order, e.g. ("TX", "TY", "TZ", "RX", "RY", "RZ")
    axis_order: str  # the order of ``orientation``'s angles
    position: tuple[float, float, float]  # ASF units (informational: AMC translations are absolute)
    orientation: tuple[float, float, float]


@dataclass(frozen=True)
class AsfSkeleton:
    name: str
    length_unit: float  # ``:units length``: file lengths are inches times this
    degrees: bool  # ``:units angle deg`` (else radians)
    root: AsfRoot
    bones: tuple[AsfBone, ...]  # parents before children

    @property
    def metres_per_unit(self) -> float:
        return INCH_M / self.length_unit

    def bone(self, name: str) -> AsfBone:
        for b in self.bones:
            if b.name == name:
                return b
        raise KeyError(f"ASF skeleton {self.name!r} has no bone {name!r}")


@dataclass(frozen=True)
class AmcMotion:
    """AMC frames as read: one array per channel group, values in the file's units."""

    frame_numbers: np.ndarray  # (T,) int64, as written in the file
    root: np.ndarray  # (T, len(root.order)) float64, in the root's channel order
    bones: dict[str, np.ndarray]  # bone name -> (T, len(dof)) float64, in the bone's dof order

    def __len__(self) -> int:
        return self.root.shape[0]

    def take(self, index: slice | np.ndarray) -> AmcMotion:
        """Some of the frames (e.g. ``slice(None, None, 4)``)."""
        return AmcMotion(self.frame_numbers[index], self.root[index], {k: v[index] for k, v in self.bones.items()})


# -- reading ------------------------------------------------------------------------------------


def _sections(text: str) -> dict[str, list[list[str]]]:
    """``:keyword`` sections -> their lines as tokens (comments and blank lines dropped)."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for raw in text.splitlines():
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        if tokens[0].startswith(":"):
            current = sections.setdefault(tokens[0][1:].lower(), [])
            if len(tokens) > 1:
                current.append(tokens[1:])
        elif current is not None:
            current.append(tokens)
    return sections


def _floats(tokens: list[str], n: int, what: str) -> tuple[float, ...]:
    if len(tokens) < n:
        raise ValueError(f"ASF: {what} needs {n} numbers, got {tokens}")
    return tuple(float(t) for t in tokens[:n])


def _bone_blocks(lines: list[list[str]]) -> list[dict[str, list[str]]]:
    blocks, current = [], None
    for tokens in lines:
        key = tokens[0].lower()
        if key == "begin":
            current = {}
        elif key == "end":
            if current is not None:
                blocks.append(current)
            current = None
        elif current is not None and not key.startswith("("):  # limits continue on lines of "(lo hi)"
            current[key] = tokens[1:]
    return blocks


def read_asf(path: str | os.PathLike) -> AsfSkeleton:
    """Parse an ASF file (units, root, bonedata, hierarchy) into an :class:`AsfSkeleton`."""
    sections = _sections(Path(path).read_text(encoding="latin-1"))
    for needed in ("root", "bonedata", "hierarchy"):
        if needed not in sections:
            raise ValueError(f"{path}: not an ASF file (no :{needed} section)")
    units = {t[0].lower(): t[1] for t in sections.get("units", []) if len(t) > 1}
    root_lines = {t[0].lower(): t[1:] for t in sections["root"]}
    root = AsfRoot(
        order=tuple(c.upper() for c in root_lines.get("order", ["TX", "TY", "TZ", "RX", "RY", "RZ"])),
        axis_order=root_lines.get("axis", ["XYZ"])[0].upper(),
        position=_floats(root_lines.get("position", ["0", "0", "0"]), 3, "root position"),
        orientation=_floats(root_lines.get("orientation", ["0", "0", "0"]), 3, "root orientation"),
    )
    parent_of: dict[str, str] = {}
    children: dict[str, list[str]] = {}
    for tokens in sections["hierarchy"]:
        if tokens[0].lower() in ("begin", "end"):
            continue
        children.setdefault(tokens[0], []).extend(tokens[1:])
        for child in tokens[1:]:
            parent_of[child] = tokens[0]
    by_name = {}
    for block in _bone_blocks(sections["bonedata"]):
        name = block["name"][0]
        axis = block.get("axis", ["0", "0", "0", "XYZ"])
        dof = tuple(d.lower() for d in block.get("dof", []))
        unsupported = [d for d in dof if d not in ROTATION_DOFS]
        if unsupported:
            raise ValueError(f"{path}: bone {name!r} has dof {unsupported}; only rotations (rx, ry, rz) are supported")
        if name not in parent_of:
            raise ValueError(f"{path}: bone {name!r} is not in the hierarchy")
        direction = np.array(_floats(block["direction"], 3, f"{name} direction"))
        by_name[name] = AsfBone(
            name=name,
            parent=parent_of[name],
            direction=tuple(float(v) for v in direction / np.linalg.norm(direction)),
            length=float(block["length"][0]),
            axis=_floats(axis, 3, f"{name} axis"),
            axis_order=(axis[3] if len(axis) > 3 else "XYZ").upper(),
            dof=dof,
        )
    ordered, queue = [], list(children.get("root", []))
    while queue:  # breadth first from the root: parents before children
        name = queue.pop(0)
        if name not in by_name:
            raise ValueError(f"{path}: hierarchy names bone {name!r}, which has no bonedata")
        ordered.append(by_name[name])
        queue += children.get(name, [])
    angle = units.get("angle", "deg").lower()
    return AsfSkeleton(
        name=" ".join(sections.get("name", [[Path(path).stem]])[0]),
        length_unit=float(units.get("length", 1.0)),
        degrees=angle.startswith("deg"),
        root=root,
        bones=tuple(ordered),
    )


def read_amc(path: str | os.PathLike, skeleton: AsfSkeleton) -> AmcMotion:
    """Parse an AMC file for ``skeleton``: every frame must give the root and every bone with dofs."""
    expected = {"root": len(skeleton.root.order)} | {b.name: len(b.dof) for b in skeleton.bones if b.dof}
    numbers: list[int] = []
    values: dict[str, list[list[str]]] = {name: [] for name in expected}
    for raw in Path(path).read_text(encoding="latin-1").splitlines():
        tokens = raw.split()
        if not tokens or tokens[0][0] in "#:":
            continue
        if len(tokens) == 1 and tokens[0].isdigit():
            numbers.append(int(tokens[0]))
        elif tokens[0] in values:
            if len(tokens) - 1 != expected[tokens[0]]:
                raise ValueError(f"{path}: frame {numbers[-1] if numbers else '?'}: {tokens[0]} has {len(tokens) - 1} values, expected {expected[tokens[0]]}")
            values[tokens[0]].append(tokens[1:])
        elif numbers:
            raise ValueError(f"{path}: frame {numbers[-1]}: unknown segment {tokens[0]!r}")
    if not numbers:
        raise ValueError(f"{path}: no AMC frames")
    missing = [name for name, rows in values.items() if len(rows) != len(numbers)]
    if missing:
        raise ValueError(f"{path}: {len(numbers)} frames but not one line each for {missing}")
    arrays = {name: np.array(rows, dtype=np.float64).reshape(len(numbers), expected[name]) for name, rows in values.items()}
    if not all(np.isfinite(a).all() for a in arrays.values()):
        raise ValueError(f"{path}: non-finite values")
    root = arrays.pop("root")
    return AmcMotion(frame_numbers=np.array(numbers, dtype=np.int64), root=root, bones=arrays)


# -- forward kinematics -------------------------------------------------------------------------


def axis_rotation(axis: str, angle: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation by ``angle`` (radians) about the world axis "x", "y" or "z"."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    rows = {
        "x": ((one, zero, zero), (zero, c, -s), (zero, s, c)),
        "y": ((c, zero, s), (zero, one, zero), (-s, zero, c)),
        "z": ((c, -s, zero), (s, c, zero), (zero, zero, one)),
    }[axis.lower()]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def euler_rotation(angles: torch.Tensor, axes: str) -> torch.Tensor:
    """(..., k) angles (radians) about ``axes`` (k letters), the first applied first: R_k ... R_1."""
    result = torch.eye(3, dtype=angles.dtype).expand(*angles.shape[:-1], 3, 3)
    for k, axis in enumerate(axes):
        result = axis_rotation(axis, angles[..., k]) @ result
    return result


def asf_skeleton_joints(skeleton: AsfSkeleton) -> Skeleton:
    """Joints for FK: the root, one per bone (at its start), and ``<bone>_end`` after each leaf bone.

    Named like the CMU 38-joint layout (a joint is named after the segment it starts), so the end
    sites of leaves (toes, fingers, thumbs, head) are joints too and can be drawn and measured.
    """
    names = ["root"] + [b.name for b in skeleton.bones]
    parents = [-1] + [names.index(b.parent) for b in skeleton.bones]
    has_child = {b.parent for b in skeleton.bones}
    for b in skeleton.bones:
        if b.name not in has_child:
            names.append(f"{b.name}_end")
            parents.append(names.index(b.name))
    return Skeleton(tuple(names), tuple(parents))


def _bone_vectors(skeleton: AsfSkeleton, joints: Skeleton, dtype: torch.dtype) -> torch.Tensor:
    """(J, 3) each joint's segment vector at rest (direction x length, metres; zero for root and ends)."""
    vectors = torch.zeros(len(joints), 3, dtype=dtype)
    for b in skeleton.bones:
        vectors[joints.index(b.name)] = torch.tensor(b.direction, dtype=dtype) * b.length * skeleton.metres_per_unit
    return vectors


def asf_rest_joints(skeleton: AsfSkeleton, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(J, 3) rest positions of :func:`asf_skeleton_joints`, root at the origin, metres."""
    joints = asf_skeleton_joints(skeleton)
    vectors = _bone_vectors(skeleton, joints, dtype)
    rest = torch.zeros(len(joints), 3, dtype=dtype)
    for j, p in enumerate(joints.parents):
        if p >= 0:
            rest[j] = rest[p] + vectors[p]  # a segment starts where its parent's ends
    return rest


def _local_rotation(axis: tuple[float, float, float], axis_order: str, channels: str, values: torch.Tensor) -> torch.Tensor:
    """``C M C^-1``: the AMC rotation about the bone's local axes, in world-aligned axes."""
    c = euler_rotation(torch.tensor(axis, dtype=values.dtype), axis_order)
    m = euler_rotation(values, channels)
    return c @ m @ c.T


def asf_local_rotations(skeleton: AsfSkeleton, motion: AmcMotion, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(T, J, 3, 3) rotations of :func:`asf_skeleton_joints` in world-aligned axes (identity at rest)."""
    joints = asf_skeleton_joints(skeleton)
    to_rad = np.pi / 180.0 if skeleton.degrees else 1.0
    local = torch.eye(3, dtype=dtype).repeat(len(motion), len(joints), 1, 1)
    root = skeleton.root
    turns = [k for k, c in enumerate(root.order) if c.startswith("R")]
    local[:, 0] = _local_rotation(
        tuple(a * to_rad for a in root.orientation),
        root.axis_order,
        "".join(root.order[k][1] for k in turns),
        torch.from_numpy(motion.root[:, turns] * to_rad).to(dtype),
    )
    for b in skeleton.bones:
        if b.dof:
            values = torch.from_numpy(motion.bones[b.name] * to_rad).to(dtype)
            axis = tuple(a * to_rad for a in b.axis)
            local[:, joints.index(b.name)] = _local_rotation(axis, b.axis_order, "".join(d[1] for d in b.dof), values)
    return local


def asf_forward_kinematics(skeleton: AsfSkeleton, motion: AmcMotion, dtype: torch.dtype = torch.float64) -> SkeletonMotion:
    """AMC frames -> joint positions and segment rotations (canonical frame, metres)."""
    joints = asf_skeleton_joints(skeleton)
    rest = asf_rest_joints(skeleton, dtype)
    world_r, posed = forward_kinematics(asf_local_rotations(skeleton, motion, dtype), rest[None], KinematicTree(joints.parents))
    translation = torch.zeros(len(motion), 3, dtype=dtype)
    for k, channel in enumerate(skeleton.root.order):
        if channel.startswith("T"):
            translation[:, "XYZ".index(channel[1])] = torch.from_numpy(motion.root[:, k]).to(dtype)
    translation = translation * skeleton.metres_per_unit
    return SkeletonMotion(joints, posed + translation[:, None, :], world_r, rest)
