"""The Anny hand driven by the 23 biomechanical angles, with hand21 keypoints out.

Placement: a hand is ``X = translation + global_rotation @ (x - wrist)``, where ``x`` is a
point of the posed Anny hand in its rest orientation (the hand as it hangs in Anny's A-pose,
canonical body frame: x = body's left, y up, z forward) and ``wrist`` its rest wrist joint.
So ``translation`` is the wrist position and ``global_rotation`` the wrist's world rotation
relative to that rest orientation -- what a body model's wrist would carry.

Shape is Anny's 6 phenotypes (in [0, 1], neutral 0.5). There is no extra scale: age and
height already span hand lengths (wrist to middle tip) of 80-255 mm.

A right hand is the mirror image (x -> -x) of a left hand with the same angles and shape
(:func:`mirror_points`, :func:`mirror_rotation`); the IK net uses this to serve both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import roma
import torch

from hmrkit.body.anny_keypoints import anny_keypoint_map
from hmrkit.body.anny_model import AnnyModel, anny_data, load_anny_hand
from hmrkit.body.conventions import HAND21
from hmrkit.hands.biomech import BiomechAxes, NUM_ANGLES, angles_to_rotations, biomech_axes

SIDES = ("left", "right")
PALM = (0, 5, 9, 13, 17)  # hand21: wrist and the four finger MCPs, rigid on the Anny wrist
MIRROR = torch.diag(torch.tensor([-1.0, 1.0, 1.0]))


def check_side(side: str) -> str:
    if side not in SIDES:
        raise ValueError(f"hand side must be 'left' or 'right', got {side!r}")
    return side


def check_joints21(joints: torch.Tensor) -> torch.Tensor:
    """(B, 21, 3) finite float tensor, or one clear ValueError."""
    joints = torch.as_tensor(joints)
    if joints.dim() != 3 or joints.shape[1:] != (21, 3):
        raise ValueError(f"hand joints must have shape (B, 21, 3) in hand21 order, metres; got {tuple(joints.shape)}")
    if not joints.is_floating_point():
        joints = joints.float()
    if not bool(torch.isfinite(joints).all()):
        raise ValueError("hand joints contain NaN or infinite values")
    return joints


def mirror_points(points: torch.Tensor) -> torch.Tensor:
    """(..., 3) x -> -x: a left hand's points become a right hand's."""
    return points * MIRROR.diagonal().to(points)


def mirror_rotation(rotation: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) ``M R M`` with ``M = diag(-1, 1, 1)``: the rotation of the mirrored hand."""
    m = MIRROR.to(rotation)
    return m @ rotation @ m


def canonical_frame(joints: torch.Tensor) -> torch.Tensor:
    """(B, 21, 3) -> (B, 3, 3) the wrist-centred hand frame, columns = its axes in the input frame.

    y: wrist -> middle MCP; x: index MCP - little MCP made perpendicular to y; z = x cross y.
    z points to the back of a left hand but the palm of a right one, which is why right hands
    are mirrored before the IK net sees them.
    """
    y = joints[:, 9] - joints[:, 0]
    y = y / y.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    x = joints[:, 5] - joints[:, 17]
    x = x - (x * y).sum(-1, keepdim=True) * y
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    return torch.stack([x, y, torch.linalg.cross(x, y)], dim=-1)


def align_palm(model_palm: torch.Tensor, target_palm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation R (B, 3, 3) and translation t (B, 3) with ``R @ model + t ~ target`` (Kabsch, no scale)."""
    rotation, translation = roma.rigid_points_registration(model_palm, target_palm)
    return rotation, translation


@dataclass
class HandOutput:
    joints: torch.Tensor  # (B, 21, 3) hand21 keypoints, metres
    vertices: torch.Tensor | None  # (B, V, 3) when asked for
    skeleton_joints: torch.Tensor  # (B, 16, 3) Anny hand skeleton joints (wrist + 15)


@dataclass
class HandFit:
    """A solved hand: 23 angles (``ANGLE_NAMES`` order, radians), phenotypes, placement, points."""

    angles: torch.Tensor  # (B, 23)
    shape: torch.Tensor  # (B, 6) Anny phenotypes in [0, 1]
    global_rotation: torch.Tensor  # (B, 3, 3) wrist rotation relative to Anny's rest hand
    translation: torch.Tensor  # (B, 3) wrist position, metres
    joints: torch.Tensor  # (B, 21, 3) hand21 keypoints of the solved hand
    vertices: torch.Tensor | None = None  # (B, V, 3)


class BiomechHand(torch.nn.Module):
    """An Anny hand of one side posed by 23 angles; see the module docstring."""

    def __init__(self, side: str):
        super().__init__()
        self.side = check_side(side)
        self.model: AnnyModel = load_anny_hand(side)
        self.keypoint_map = anny_keypoint_map(self.model, HAND21, side=side)
        self.axes: BiomechAxes = self._build_axes()
        self.faces = self.model.faces

    def _build_axes(self) -> BiomechAxes:
        model = self.model
        with torch.no_grad():
            out = model(model.identity_pose(1), keypoints=self.keypoint_map)
            thumb3 = model.skeleton.index(f"{self.side}_thumb3")
            distal = out.vertices[0, model.skin_weights.argmax(1) == thumb3]
            data = anny_data()
            coeff = model.blend_coefficients(model.default_shape(1))
            heads = data.template_bone_heads + (coeff @ data.bone_heads_blendshapes.reshape(coeff.shape[1], -1)).reshape(-1, 3)
            s = "L" if self.side == "left" else "R"
            meta = heads[[data.bone(f"metacarpal{k}.{s}") for k in (1, 2, 3, 4)]]
        return biomech_axes(out.keypoints[0], distal, meta)

    @property
    def num_shape(self) -> int:
        return self.model.num_shape

    def default_shape(self, batch: int = 1) -> torch.Tensor:
        return self.model.default_shape(batch)

    def rotations(self, angles: torch.Tensor, global_rotation: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 23) angles (+ optional (B, 3, 3) wrist rotation) -> (B, 16, 3, 3) Anny hand pose."""
        fingers = angles_to_rotations(angles, self.axes)
        if global_rotation is None:
            root = torch.eye(3, dtype=angles.dtype, device=angles.device).expand(angles.shape[0], 1, 3, 3)
        else:
            root = global_rotation.to(angles).expand(angles.shape[0], 3, 3)[:, None]
        return torch.cat([root, fingers], dim=1)

    def forward(
        self,
        angles: torch.Tensor,
        shape: torch.Tensor | None = None,
        global_rotation: torch.Tensor | None = None,
        translation: torch.Tensor | None = None,
        with_vertices: bool = False,
    ) -> HandOutput:
        """Pose the hand; see the module docstring for the placement."""
        if angles.dim() != 2 or angles.shape[1] != NUM_ANGLES:
            raise ValueError(f"angles must have shape (B, {NUM_ANGLES}), got {tuple(angles.shape)}")
        out = self.model(
            self.rotations(angles, global_rotation), shape=shape, with_vertices=with_vertices, keypoints=self.keypoint_map
        )
        offset = -out.joints[:, :1]
        if translation is not None:
            offset = offset + translation.to(angles)[:, None]
        return HandOutput(
            joints=out.keypoints + offset,
            vertices=None if out.vertices is None else out.vertices + offset,
            skeleton_joints=out.joints + offset,
        )

    def palm(self, shape: torch.Tensor) -> torch.Tensor:
        """(B, 5, 3) rest palm points (``PALM``) relative to the wrist, for a shape."""
        zeros = torch.zeros(shape.shape[0], NUM_ANGLES, dtype=shape.dtype, device=shape.device)
        return self.forward(zeros, shape).joints[:, list(PALM)]

    def place(self, shape: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Global rotation and wrist translation that put the palm of a hand of ``shape`` on
        ``target``'s palm (the palm is rigid, so no angle changes it)."""
        return align_palm(self.palm(shape), target[:, list(PALM)])  # wrist-relative palm: t is the wrist


@lru_cache(maxsize=2)
def load_biomech_hand(side: str) -> BiomechHand:
    """The (cached, shared) biomechanical hand of one side."""
    return BiomechHand(check_side(side))
