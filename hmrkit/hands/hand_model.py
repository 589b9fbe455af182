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

import torch

from hmrkit.body.anny_keypoints import FINGER_JOINT_NAMES, HAND_JOINT_NAMES, anny_keypoint_map
from hmrkit.body.anny_model import AnnyModel, anny_data, load_anny_hand
from hmrkit.body.base import BodyModel
from hmrkit.body.conventions import HAND21
from hmrkit.body.keypoints import KeypointMap, KeypointSpec, build_keypoint_map, fingertip_vertex
from hmrkit.geometry.procrustes import rigid_registration
from hmrkit.hands.biomech import HAND_JOINT_SUFFIXES, BiomechAxes, NUM_ANGLES, angles_to_rotations, biomech_axes

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


def align_palm(model_palm: torch.Tensor, target_palm: torch.Tensor, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation R (B, 3, 3) and translation t (B, 3) with ``R @ model + t ~ target`` (Kabsch, no scale;
    ``weights`` (B, N) per point when given)."""
    rotation, translation, _ = rigid_registration(model_palm, target_palm, weights)
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
    """A hand model of one side posed by 23 angles; see the module docstring.

    ``model``: the Anny hand of that side (default) or any hand :class:`~hmrkit.body.base.BodyModel`
    with MANO's 16-joint skeleton (wrist, then index, middle, pinky, ring, thumb x 3; e.g. a
    :class:`~hmrkit.body.smpl_family.MANO` loaded from the user's folder). The axes, rest angles and
    limits come from that model's own rest pose (:func:`~hmrkit.hands.biomech.biomech_axes`, one
    recipe for every model). Anny's hand21 keypoints are :mod:`hmrkit.body.anny_keypoints`'; other
    models get their joints plus a fingertip vertex per finger (:func:`hand21_keypoint_map`).
    """

    def __init__(self, side: str, model: BodyModel | None = None):
        super().__init__()
        self.side = check_side(side)
        if model is None:
            model = load_anny_hand(side)
        self.model: BodyModel = model
        self.is_anny = isinstance(model, AnnyModel)
        self.joint_names = _hand_joint_names(model, side)
        if getattr(model, "side", side) != side:
            raise ValueError(f"a {model.side} hand model was given for side {side!r}")
        self.keypoint_map = anny_keypoint_map(model, HAND21, side=side) if self.is_anny else hand21_keypoint_map(model, self.joint_names)
        self.axes: BiomechAxes = self._build_axes()
        self.faces = model.faces

    def _build_axes(self) -> BiomechAxes:
        model = self.model
        with torch.no_grad():
            out = self.posed(model.identity_pose(1), model.default_shape(1), with_vertices=True)
            thumb3 = model.skeleton.index(self.joint_names[-1])
            distal = out.vertices[0, _skin_weights(model).argmax(1) == thumb3]
            if self.is_anny:  # Anny has metacarpal bones: the MCP rest flexion is measured against them
                data = anny_data()
                coeff = model.blend_coefficients(model.default_shape(1))
                heads = data.template_bone_heads + (coeff @ data.bone_heads_blendshapes.reshape(coeff.shape[1], -1)).reshape(-1, 3)
                s = "L" if self.side == "left" else "R"
                wrist = model(model.identity_pose(1), model.default_shape(1), with_vertices=False).joints[0, 0]
                meta = heads[[data.bone(f"metacarpal{k}.{s}") for k in (1, 2, 3, 4)]] - wrist  # wrist-relative, as ``out``
            else:  # no metacarpal bones: the metacarpals run from the wrist joint
                meta = out.skeleton_joints[0, :1].expand(4, 3)
        # axes from the skeleton: the wrist JOINT, not the hand21 wrist keypoint (a landmark convention)
        rest = torch.cat([out.skeleton_joints[0, :1], out.joints[0, 1:]])
        return biomech_axes(rest, distal, meta)

    def posed(self, rotations: torch.Tensor, shape: torch.Tensor | None = None, with_vertices: bool = False) -> HandOutput:
        """(B, 16, 3, 3) rotations (wrist, then the 15 finger joints in the skeleton's order) ->
        keypoints, vertices and skeleton joints with the wrist JOINT at the origin."""
        index = [self.model.skeleton.index(n) for n in self.joint_names]
        full = rotations
        if len(index) != self.model.num_joints or index != list(range(len(index))):
            full = self.model.identity_pose(rotations.shape[0], rotations.dtype).clone()
            full[:, index] = rotations
        if self.is_anny:
            out = self.model(full, shape=shape, with_vertices=with_vertices, keypoints=self.keypoint_map)
            keypoints = out.keypoints
        else:
            out = self.model(full, shape=shape, with_vertices=True)
            keypoints = self.keypoint_map.from_mesh(out.joints, out.vertices)
        origin = out.joints[:, index[:1]]
        return HandOutput(
            joints=keypoints - origin,
            vertices=None if out.vertices is None or not with_vertices else out.vertices - origin,
            skeleton_joints=out.joints[:, index] - origin,
        )

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
        out = self.posed(self.rotations(angles, global_rotation), shape, with_vertices)
        if translation is None:
            return out
        offset = translation.to(angles)[:, None]
        return HandOutput(
            joints=out.joints + offset,
            vertices=None if out.vertices is None else out.vertices + offset,
            skeleton_joints=out.skeleton_joints + offset,
        )

    def palm(self, shape: torch.Tensor) -> torch.Tensor:
        """(B, 5, 3) rest palm points (``PALM``) relative to the wrist, for a shape."""
        zeros = torch.zeros(shape.shape[0], NUM_ANGLES, dtype=shape.dtype, device=shape.device)
        return self.forward(zeros, shape).joints[:, list(PALM)]

    def place(self, shape: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Global rotation and wrist translation that put the palm of a hand of ``shape`` on
        ``target``'s palm (the palm is rigid, so no angle changes it); ``weights`` (B, 21) per hand21 point."""
        w = None if weights is None else weights[:, list(PALM)]
        return align_palm(self.palm(shape), target[:, list(PALM)], w)  # wrist-relative palm: t is the wrist


@lru_cache(maxsize=8)
def load_biomech_hand(side: str, model: BodyModel | None = None) -> BiomechHand:
    """The (cached, shared) biomechanical hand of one side: Anny's, or ``model``'s (e.g. a
    :class:`~hmrkit.body.smpl_family.MANO` of that side, ``load_smpl_family("mano", folder, side=side)``).

    The IK net and the post-optimization's shape handling are Anny's; with another model use
    the parameterization itself (``hand(angles, shape)``, ``angles_to_rotations``,
    ``rotations_to_angles``, ``project_pose(..., hand=...)``).
    """
    return BiomechHand(check_side(side), model)


def _hand_joint_names(model: BodyModel, side: str) -> tuple[str, ...]:
    """The 16 hand joints' names in ``model``'s skeleton (Anny's are prefixed with the side)."""
    for prefix in (f"{side}_", ""):
        names = tuple(prefix + n for n in ("wrist",) + HAND_JOINT_SUFFIXES)
        if all(n in model.skeleton.names for n in names):
            parents = [model.skeleton.parents[model.skeleton.index(n)] for n in names[1:]]
            want = [model.skeleton.index(names[0]) if k % 3 == 0 else model.skeleton.index(names[k]) for k in range(15)]
            if parents != want:
                raise ValueError("the hand model's finger joints are not chains of three on the wrist")
            return names
    raise ValueError(f"the hand model has no {side} hand skeleton (wrist + index/middle/pinky/ring/thumb 1..3)")


def _skin_weights(model: BodyModel) -> torch.Tensor:
    """(V, J) skinning weights of Anny or an SMPL-family model."""
    weights = getattr(model, "skin_weights", None)
    return weights if weights is not None else model.lbs_weights


def hand21_keypoint_map(model: BodyModel, joint_names: tuple[str, ...]) -> KeypointMap:
    """hand21 keypoints of a model with no keypoint library (e.g. MANO): the wrist and the 15
    finger joints, and per finger the rest vertex skinned to its last joint that lies farthest
    along the last bone (the same fingertip recipe as Anny's, ``anny_keypoints``)."""
    with torch.no_grad():
        rest = model(model.identity_pose(1), model.default_shape(1), with_vertices=True)
    owners = _skin_weights(model).argmax(1)
    library: dict[str, KeypointSpec] = {"wrist": KeypointSpec.joint(joint_names[0])}
    suffix = {"thumb": "thumb", "index": "index", "middle": "middle", "ring": "ring", "little": "pinky"}
    prefix = joint_names[0][: -len("wrist")]
    for finger, smplh in suffix.items():
        labels = HAND_JOINT_NAMES if finger == "thumb" else FINGER_JOINT_NAMES
        for label, k in labels.items():
            library[f"{finger}_{label}"] = KeypointSpec.joint(f"{prefix}{smplh}{k}")
        last, previous = (model.skeleton.index(f"{prefix}{smplh}{k}") for k in (3, 2))
        library[f"{finger}_tip"] = KeypointSpec.vertex(
            fingertip_vertex(rest.vertices[0], owners, rest.joints[0], last, previous))
    return build_keypoint_map(library, model.skeleton, HAND21)
