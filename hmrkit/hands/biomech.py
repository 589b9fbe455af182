"""The 23-DoF biomechanically feasible hand pose (Fan & Wang 2023 after Lim et al. 2020).

Four fingers x 4 DoF (MCP flexion + abduction, PIP flexion, DIP flexion) and 7 for the thumb
(CMC flexion, abduction, rotation; MCP flexion, abduction, rotation; IP flexion), mapped onto
the 15 finger joints of the Anny hand (SMPL-style local rotations, joint 0 = wrist).

Zero angles are Anny's rest hand; every axis is built once from the neutral rest geometry
(:func:`biomech_axes`) and then used for every shape, as the paper does with its "standard
hand mesh". Signs (the same for a left and a right hand; the right hand's axes are the
mirror images of the left's):

- ``*_flexion``: positive bends the segment towards the palm (a fist is all positive);
  for the thumb, towards its pulp (across the palm at the CMC).
- finger ``*_mcp_abduction``: positive moves the finger towards the thumb side (radial).
- thumb ``*_abduction``: positive moves the thumb out of the palm plane to the palmar side.
- thumb ``*_rotation``: positive pronates (the nail turns towards the palm, as in opposition).

Limits are anatomical ranges (:data:`ANGLE_SPECS`, sources in ``docs/hands.md``), shifted by
the anatomical angle of Anny's rest pose (:attr:`BiomechAxes.rest_angles`), so that
``anatomical = angle + rest_angle``. Rest angles are measured for the flexions (finger MCP
against the metacarpal bone, PIP, DIP, thumb MCP and IP against the previous segment); the
MCP abductions and all thumb CMC angles and axial rotations have no reliable anatomical
reference in Anny's rig, so their zero is Anny's rest pose (rest angle 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from hmrkit.geometry.rotations import axis_angle_to_matrix, matrix_to_euler_xyz

FINGERS4 = ("index", "middle", "ring", "little")
SMPLH_FINGER = {"index": "index", "middle": "middle", "ring": "ring", "little": "pinky", "thumb": "thumb"}
# hand21 indices of each finger's four points, root to tip
HAND21_CHAIN = {"thumb": (1, 2, 3, 4), "index": (5, 6, 7, 8), "middle": (9, 10, 11, 12), "ring": (13, 14, 15, 16), "little": (17, 18, 19, 20)}


@dataclass(frozen=True)
class AngleSpec:
    """One degree of freedom: the joint it turns (SMPL-H suffix), its kind, anatomical range."""

    name: str
    joint: str  # e.g. "index1": the Anny hand skeleton joint "<side>_index1"
    kind: str  # "flexion" | "abduction" | "rotation"
    lower_deg: float  # anatomical range; see docs/hands.md for the sources
    upper_deg: float


def _finger_specs(finger: str, abduction: tuple[float, float]) -> list[AngleSpec]:
    j = SMPLH_FINGER[finger]
    return [
        AngleSpec(f"{finger}_mcp_flexion", f"{j}1", "flexion", -10.0, 90.0),
        AngleSpec(f"{finger}_mcp_abduction", f"{j}1", "abduction", *abduction),
        AngleSpec(f"{finger}_pip_flexion", f"{j}2", "flexion", 0.0, 110.0),
        AngleSpec(f"{finger}_dip_flexion", f"{j}3", "flexion", -5.0, 90.0),
    ]


# MCP abduction ranges (radial positive) are Lim et al. 2020's; see docs/hands.md.
ANGLE_SPECS: tuple[AngleSpec, ...] = tuple(
    _finger_specs("index", (-20.0, 30.0))
    + _finger_specs("middle", (-20.0, 10.0))
    + _finger_specs("ring", (-20.0, 10.0))
    + _finger_specs("little", (-30.0, 20.0))
    + [
        AngleSpec("thumb_cmc_flexion", "thumb1", "flexion", -45.0, 45.0),
        AngleSpec("thumb_cmc_abduction", "thumb1", "abduction", -45.0, 45.0),
        AngleSpec("thumb_cmc_rotation", "thumb1", "rotation", -20.0, 30.0),
        AngleSpec("thumb_mcp_flexion", "thumb2", "flexion", -10.0, 56.0),
        AngleSpec("thumb_mcp_abduction", "thumb2", "abduction", -15.0, 15.0),
        AngleSpec("thumb_mcp_rotation", "thumb2", "rotation", -10.0, 10.0),
        AngleSpec("thumb_ip_flexion", "thumb3", "flexion", -10.0, 73.0),
    ]
)
ANGLE_NAMES: tuple[str, ...] = tuple(s.name for s in ANGLE_SPECS)
NUM_ANGLES = len(ANGLE_NAMES)  # 23
# Order of the elementary rotations inside a joint (intrinsic: the later ones turn with the earlier).
KIND_ORDER = ("abduction", "flexion", "rotation")
# Anny hand skeleton joint suffixes, in skeleton order after the wrist (see anny_rig.hand_joints).
HAND_JOINT_SUFFIXES = tuple(f"{f}{k}" for f in ("index", "middle", "pinky", "ring", "thumb") for k in (1, 2, 3))


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def _orthogonal(v: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Unit component of ``v`` perpendicular to the unit vector ``d``."""
    return _unit(v - (v @ d) * d)


def _signed_angle(u: torch.Tensor, v: torch.Tensor, axis: torch.Tensor) -> float:
    """Angle turning ``u`` to ``v`` about ``axis``, both first projected perpendicular to it."""
    u, v = _orthogonal(u, axis), _orthogonal(v, axis)
    return float(torch.atan2(torch.linalg.cross(u, v) @ axis, u @ v))


@dataclass(frozen=True)
class BiomechAxes:
    """Per-angle rotation axes (rest frame) and the joint layout of the 23 angles.

    axes: (23, 3) unit axis of each angle. slots: (15, 3) for each finger joint, the angles
    applied in order (``KIND_ORDER``), ``-1`` for none. frames: (15, 3, 3) each joint's
    orthonormal decomposition frame (columns: abduction, flexion, rotation axes; right-handed).
    frame_signs: (15, 3) +-1 with which each frame column relates to the angle's axis.
    rest_angles: (23,) anatomical angle of Anny's rest pose, radians.
    lower / upper: (23,) limits of the angles (anatomical range minus rest_angles), radians.
    """

    axes: torch.Tensor
    slots: torch.Tensor
    frames: torch.Tensor
    frame_signs: torch.Tensor
    rest_angles: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor


def biomech_axes(rest: torch.Tensor, distal_thumb_vertices: torch.Tensor, metacarpal_heads: torch.Tensor) -> BiomechAxes:
    """Build the axes from one neutral rest hand (either side; the recipe is mirror-equivariant).

    Args:
        rest: (21, 3) hand21 points of the rest hand, with the wrist JOINT (the rotation centre)
            at index 0 rather than a landmark convention's wrist keypoint.
        distal_thumb_vertices: (N, 3) rest mesh vertices skinned to the thumb's last joint: their
            width direction (largest spread across the bone) is the thumb's flexion axis (the
            nail is wider than it is thick).
        metacarpal_heads: (4, 3) proximal ends of the index..little metacarpals (for the rest
            MCP angles only).
    """
    rest = rest.double()
    wrist = rest[0]
    curl = sum(rest[HAND21_CHAIN[f][3]] - rest[HAND21_CHAIN[f][0]] for f in FINGERS4)
    normal = _unit(torch.linalg.cross(rest[5] - wrist, rest[17] - wrist))
    palmar = normal if float(normal @ curl) > 0 else -normal  # fingers curl towards the palm
    radial = _unit(rest[5] - rest[17])  # towards the index side

    axes = torch.zeros(NUM_ANGLES, 3, dtype=torch.float64)
    rest_angles = torch.zeros(NUM_ANGLES, dtype=torch.float64)
    frames = torch.zeros(15, 3, 3, dtype=torch.float64)
    frame_signs = torch.ones(15, 3, dtype=torch.float64)
    slots = torch.full((15, 3), -1, dtype=torch.long)
    index = {n: i for i, n in enumerate(ANGLE_NAMES)}

    def joint_frame(d: torch.Tensor, f: torch.Tensor, abduct_towards: torch.Tensor, pronate=None):
        """Axes (abduction, flexion, rotation) at a joint whose child segment points along ``d``.

        ``f`` is the flexion axis; positive abduction moves ``d`` towards ``abduct_towards``;
        ``pronate = (nail, towards)``: positive rotation turns ``nail`` towards ``towards``.
        """
        a = torch.linalg.cross(f, d)  # perpendicular to d and f
        if float(torch.linalg.cross(a, d) @ abduct_towards) < 0:
            a = -a
        r = d
        if pronate is not None and float(torch.linalg.cross(d, pronate[0]) @ pronate[1]) < 0:
            r = -d
        return a, f, r

    # fingers: one hinge axis per finger, perpendicular to its rest direction and the palm normal
    for finger, meta_head in zip(FINGERS4, metacarpal_heads.double()):
        c = HAND21_CHAIN[finger]
        d = _unit(rest[c[3]] - rest[c[0]])
        p = _orthogonal(palmar, d)
        f = torch.linalg.cross(d, p)  # rotating d about f moves it towards the palm
        a, f, r = joint_frame(d, f, radial)  # a finger's axial rotation is no DoF
        j = HAND_JOINT_SUFFIXES.index(f"{SMPLH_FINGER[finger]}1")
        frames[j : j + 3] = torch.stack([a, f, r], dim=1)
        axes[index[f"{finger}_mcp_abduction"]] = a
        for name in ("mcp", "pip", "dip"):
            axes[index[f"{finger}_{name}_flexion"]] = f
        slots[j, 0], slots[j, 1] = index[f"{finger}_mcp_abduction"], index[f"{finger}_mcp_flexion"]
        slots[j + 1, 1], slots[j + 2, 1] = index[f"{finger}_pip_flexion"], index[f"{finger}_dip_flexion"]
        segments = [rest[c[0]] - meta_head] + [rest[c[k + 1]] - rest[c[k]] for k in range(3)]
        rest_angles[index[f"{finger}_mcp_flexion"]] = _signed_angle(segments[0], segments[1], f)
        rest_angles[index[f"{finger}_pip_flexion"]] = _signed_angle(segments[1], segments[2], f)
        rest_angles[index[f"{finger}_dip_flexion"]] = _signed_angle(segments[2], segments[3], f)

    # thumb: flexion about the nail's width axis, towards the pulp (the way the rest thumb curls)
    c = HAND21_CHAIN["thumb"]
    seg = [_unit(rest[c[k + 1]] - rest[c[k]]) for k in range(3)]
    spread = distal_thumb_vertices.double() - distal_thumb_vertices.double().mean(0)
    spread = spread - (spread @ seg[2])[:, None] * seg[2]
    width = torch.linalg.svd(spread, full_matrices=False).Vh[0]
    pulp_curl = seg[2] - seg[1]
    for k, joint_name in enumerate(("cmc", "mcp", "ip")):
        d = seg[k]
        f = _orthogonal(width, d)
        if float(torch.linalg.cross(f, d) @ pulp_curl) < 0:
            f = -f
        pulp = torch.linalg.cross(f, d)
        a, f, r = joint_frame(d, f, palmar, pronate=(-pulp, palmar))
        joint = HAND_JOINT_SUFFIXES.index(f"thumb{k + 1}")
        frames[joint] = torch.stack([a, f, r], dim=1)
        for slot, kind in enumerate(KIND_ORDER):
            name = f"thumb_{joint_name}_{kind}"
            if name in index:
                axes[index[name]] = (a, f, r)[slot]
                slots[joint, slot] = index[name]
    for name, (u, v) in {"thumb_mcp_flexion": seg[:2], "thumb_ip_flexion": seg[1:]}.items():
        rest_angles[index[name]] = _signed_angle(u, v, axes[index[name]])

    # right-handed decomposition frames: flip the rotation column where needed (its angle sign follows)
    det = torch.linalg.det(frames)
    frame_signs[:, 2] = torch.sign(det)
    frames[:, :, 2] = frames[:, :, 2] * frame_signs[:, 2:3]

    lower = torch.tensor([math.radians(s.lower_deg) for s in ANGLE_SPECS], dtype=torch.float64) - rest_angles
    upper = torch.tensor([math.radians(s.upper_deg) for s in ANGLE_SPECS], dtype=torch.float64) - rest_angles
    return BiomechAxes(
        axes=axes.float(), slots=slots, frames=frames.float(), frame_signs=frame_signs.float(),
        rest_angles=rest_angles.float(), lower=lower.float(), upper=upper.float(),
    )


def angles_to_rotations(angles: torch.Tensor, axes: BiomechAxes) -> torch.Tensor:
    """(B, 23) angles -> (B, 15) finger-joint rotation matrices (B, 15, 3, 3); differentiable.

    Each joint's rotation is the product of its angles' elementary rotations in
    ``KIND_ORDER`` (abduction, then flexion about the abducted segment, then axial rotation).
    """
    if angles.dim() != 2 or angles.shape[1] != NUM_ANGLES:
        raise ValueError(f"angles must have shape (B, {NUM_ANGLES}), got {tuple(angles.shape)}")
    ax = axes.axes.to(angles)
    elementary = axis_angle_to_matrix(angles[..., None] * ax)  # (B, 23, 3, 3)
    eye = torch.eye(3, dtype=angles.dtype, device=angles.device).expand(angles.shape[0], 1, 3, 3)
    elementary = torch.cat([elementary, eye], dim=1)  # slot -1 -> identity
    slots = axes.slots.to(angles.device) % (NUM_ANGLES + 1)
    s = elementary[:, slots]  # (B, 15, 3, 3, 3)
    return s[:, :, 0] @ s[:, :, 1] @ s[:, :, 2]


def rotations_to_angles(rotations: torch.Tensor, axes: BiomechAxes, clamp: bool = True) -> torch.Tensor:
    """Closest 23-DoF angles to (B, 15, 3, 3) finger-joint rotations (analytic projection).

    Each joint's rotation is written in its decomposition frame and split into intrinsic
    X-Y-Z (abduction, flexion, rotation) Euler angles (exact for the 3-DoF thumb joints);
    the angles a joint does not have are dropped. Hinges take the exact closest angle about
    their axis. ``clamp`` then clips to the limits. Exact inverse of
    :func:`angles_to_rotations` inside the limits (away from gimbal lock).
    """
    if rotations.dim() != 4 or rotations.shape[1:] != (15, 3, 3):
        raise ValueError(f"rotations must have shape (B, 15, 3, 3), got {tuple(rotations.shape)}")
    frames = axes.frames.to(rotations)
    local = frames.transpose(-1, -2) @ rotations @ frames
    euler = matrix_to_euler_xyz(local) * axes.frame_signs.to(rotations)  # (B, 15, 3)
    # a hinge (flexion only, slot 1): the rotation angle about Y closest to the whole rotation
    hinge = torch.atan2(local[..., 0, 2] - local[..., 2, 0], local[..., 0, 0] + local[..., 2, 2])
    angles = torch.zeros(rotations.shape[0], NUM_ANGLES, dtype=rotations.dtype, device=rotations.device)
    slots = axes.slots.to(rotations.device)
    hinge_joint = (slots[:, 0] < 0) & (slots[:, 2] < 0)
    for slot in range(3):
        has = slots[:, slot] >= 0
        value = euler[:, :, slot]
        if slot == 1:
            value = torch.where(hinge_joint, hinge, value)
        angles[:, slots[has, slot]] = value[:, has]
    if clamp:
        angles = clamp_angles(angles, axes)
    return angles


def clamp_angles(angles: torch.Tensor, axes: BiomechAxes) -> torch.Tensor:
    return torch.maximum(torch.minimum(angles, axes.upper.to(angles)), axes.lower.to(angles))


def bounded_angles(raw: torch.Tensor, axes: BiomechAxes) -> torch.Tensor:
    """Unconstrained (B, 23) -> angles strictly inside the limits (a sigmoid per angle)."""
    return squash(raw, axes.lower.to(raw), axes.upper.to(raw))


def squash(raw: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """``lower + (upper - lower) * sigmoid(raw)``, clipped so rounding never leaves [lower, upper]."""
    value = lower + (upper - lower) * torch.sigmoid(raw)
    return torch.maximum(torch.minimum(value, upper), lower)


def unbounded_angles(angles: torch.Tensor, axes: BiomechAxes, margin: float = 1e-3) -> torch.Tensor:
    """Inverse of :func:`bounded_angles` (angles on or beyond a limit are pulled just inside)."""
    lo, hi = axes.lower.to(angles), axes.upper.to(angles)
    u = ((angles - lo) / (hi - lo)).clamp(margin, 1 - margin)
    return torch.log(u) - torch.log1p(-u)


def limit_violation(angles: torch.Tensor, axes: BiomechAxes) -> torch.Tensor:
    """(B,) summed amount (radians) by which angles leave their limits (0 inside)."""
    lo, hi = axes.lower.to(angles), axes.upper.to(angles)
    return (torch.relu(lo - angles) + torch.relu(angles - hi)).sum(-1)
