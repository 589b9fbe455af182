"""Anny (Apache-2.0 code, CC0 MakeHuman assets) as an hmrkit :class:`BodyModel`.

The 104-bone Anny rig is reduced to one of hmrkit's skeletons (:mod:`hmrkit.body.anny_rig`):
each Anny bone's skinning weight goes to the joint that drives it, so the forward pass is a
plain SMPL-style LBS over 52 joints (body) or 16 (a hand) with Anny's phenotype blendshapes
for shape. Shape parameters are Anny's phenotypes (gender, age, muscle, weight, height,
proportions), each in [0, 1], neutral 0.5.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import torch

from hmrkit.body.anny_phenotypes import PhenotypeBasis
from hmrkit.body.anny_rig import BODY_JOINTS, RigJoint, hand_joints, skeleton_of
from hmrkit.body.anny_snapshot import AnnyData, load_anny_data
from hmrkit.body.base import BodyModel, BodyOutput, check_pose_inputs
from hmrkit.body.kinematics import KinematicTree, forward_kinematics, homogeneous, skin, skinning_transforms
from hmrkit.body.keypoints import KeypointMap
from hmrkit.body.keypoint_skinning import compile_skinned_keypoints, skinned_keypoints


def bone_subtree(data: AnnyData, root_bone: str) -> set[int]:
    inside = {data.bone(root_bone)}
    for b, p in enumerate(data.bone_parents):
        if p in inside:
            inside.add(b)
    return inside


def bone_owners(data: AnnyData, joints: tuple[RigJoint, ...]) -> torch.Tensor:
    """(N_bones,) index of the joint that carries each Anny bone (root joint if none above it)."""
    named = {data.bone(b): j for j, joint in enumerate(joints) for b in joint.bones}
    owners = []
    for b in range(len(data.bone_labels)):
        a = b
        while a >= 0 and a not in named:
            a = data.bone_parents[a]
        owners.append(named.get(a, 0))
    return torch.tensor(owners, dtype=torch.long)


class AnnyModel(BodyModel):
    """Anny reduced to an hmrkit skeleton; see the module docstring."""

    shape_range = (0.0, 1.0)  # phenotypes; the fitter keeps shape inside (see BodyFitter)

    def __init__(self, data: AnnyData, joints: tuple[RigJoint, ...] = BODY_JOINTS, vertex_ids: torch.Tensor | None = None):
        super().__init__()
        self.rig_joints = joints
        self.skeleton = skeleton_of(joints)
        self.shape_names = tuple(data.phenotype_labels)
        self.tree = KinematicTree(self.skeleton.parents)
        n_vertices = data.template_vertices.shape[0]
        ids = torch.arange(n_vertices) if vertex_ids is None else vertex_ids
        self.register_buffer("mesh_vertex_ids", ids, persistent=False)  # our vertex -> Anny vertex

        owners = bone_owners(data, joints)
        weights = torch.zeros(n_vertices, len(joints))
        weights.scatter_add_(1, owners[data.vertex_bone_indices], data.vertex_bone_weights)
        weights = weights[ids]
        self.register_buffer("skin_weights", weights / weights.sum(1, keepdim=True), persistent=False)

        regressor = torch.zeros(len(joints), len(data.bone_labels))
        for j, joint in enumerate(joints):
            for bone in joint.bones:
                regressor[j, data.bone(bone)] = 1.0 / len(joint.bones)
        self.register_buffer("template_joints", regressor @ data.template_bone_heads, persistent=False)
        joint_dirs = torch.einsum("jn,knc->kjc", regressor, data.bone_heads_blendshapes)
        self.register_buffer("joint_blendshapes", joint_dirs.reshape(joint_dirs.shape[0], -1), persistent=False)
        self.register_buffer("template_vertices", data.template_vertices[ids].contiguous(), persistent=False)
        blend = data.blendshapes[:, ids]
        self.register_buffer("vertex_blendshapes", blend.reshape(blend.shape[0], -1), persistent=False)
        self.phenotypes = PhenotypeBasis(self.shape_names, data.phenotype_mask, data.phenotype_projection)
        self._reuse_blend = False  # see shape_blend
        self._last_blend: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

        faces = data.faces
        if vertex_ids is not None:
            keep = torch.full((n_vertices,), -1, dtype=torch.long)
            keep[ids] = torch.arange(len(ids))
            faces = keep[faces]
            faces = faces[(faces >= 0).all(dim=1)]
        self.register_buffer("faces", faces.contiguous(), persistent=False)

    # -- shape -------------------------------------------------------------------------------
    def default_shape(self, batch: int = 1) -> torch.Tensor:
        return torch.full((batch, self.num_shape), 0.5, dtype=self.template_vertices.dtype, device=self.faces.device)

    def blend_coefficients(self, shape: torch.Tensor) -> torch.Tensor:
        """(B, 6) phenotypes in [0, 1] -> (B, K) coefficients of Anny's compact blendshape basis."""
        return self.phenotypes(shape)

    def shape_blend(self, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 6) phenotypes -> (coefficients (B, K), rest joints (B, J, 3)): what the pose acts on.

        Inside :meth:`reusing_shape_blend` the last answer is kept and given again for the same
        shape values (a fit evaluates one shape several times in a row; ~40 tensor calls each)."""
        kept = self._last_blend
        if (kept is not None and kept[0].shape == shape.shape and kept[0].dtype == shape.dtype
                and kept[0].device == shape.device and torch.equal(kept[0], shape)):
            return kept[1], kept[2]
        coefficients = self.blend_coefficients(shape)
        rest = self.rest_joints(coefficients)
        if self._reuse_blend:
            self._last_blend = (shape.clone(), coefficients, rest)
        return coefficients, rest

    @contextmanager
    def reusing_shape_blend(self) -> Iterator[None]:
        """Within: :meth:`shape_blend` reuses its last answer for equal shapes. Only for code
        that differentiates nothing through the shape (the Levenberg-Marquardt fit)."""
        self._reuse_blend, self._last_blend = True, None
        try:
            yield
        finally:
            self._reuse_blend, self._last_blend = False, None

    def rest_joints(self, coefficients: torch.Tensor) -> torch.Tensor:
        offsets = (coefficients @ self.joint_blendshapes).reshape(coefficients.shape[0], -1, 3)
        return self.template_joints + offsets

    def rest_vertices(self, coefficients: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Rest-pose vertices for the given shape coefficients, all or only ``ids`` (cheap)."""
        batch = coefficients.shape[0]
        if ids is None:
            return self.template_vertices + (coefficients @ self.vertex_blendshapes).reshape(batch, -1, 3)
        columns = (ids[:, None] * 3 + torch.arange(3, device=ids.device)).reshape(-1)
        offsets = coefficients @ self.vertex_blendshapes[:, columns]
        return self.template_vertices[ids] + offsets.reshape(batch, -1, 3)

    # -- pose --------------------------------------------------------------------------------
    def forward(
        self,
        rotations: torch.Tensor,
        shape: torch.Tensor | None = None,
        translation: torch.Tensor | None = None,
        with_vertices: bool = True,
        keypoints: KeypointMap | None = None,
        scales: torch.Tensor | None = None,
    ) -> BodyOutput:
        """Pose the model.

        Args:
            rotations: (B, J, 3, 3) joint rotations (joint 0 = global orientation).
            shape: (B or 1, 6) phenotypes; default neutral.
            translation: (B or 1, 3) added to everything, metres.
            with_vertices: skin the whole mesh; ``False`` gives the fast keypoints-only pass,
                which skins only the vertices ``keypoints`` reads.
            keypoints: a map from :meth:`keypoint_map`, filled into ``BodyOutput.keypoints``.
            scales: (B, J) joint scales; 0 collapses a subtree (see :mod:`hmrkit.body.amputation`).
        """
        batch = check_pose_inputs(rotations, shape, translation, self.num_joints, self.num_shape)
        dtype = rotations.dtype
        if shape is None:
            shape = self.default_shape(1).to(dtype)
        coefficients, rest_joints = self.shape_blend(shape.to(dtype))
        world_r, posed = forward_kinematics(rotations, rest_joints, self.tree, scales)
        transforms = skinning_transforms(world_r, posed, rest_joints)
        vertices = None
        if with_vertices:
            vertices = skin(self.rest_vertices(coefficients), self.skin_weights.to(dtype), transforms)
        points = None
        if keypoints is not None:
            points = self._keypoints(keypoints.to(rotations.device, dtype), posed, vertices, transforms, coefficients)
        if translation is not None:  # added last: exact even where skinning weights sum to 1 +- eps
            shift = translation.to(dtype)[:, None, :]
            posed = posed + shift
            transforms = torch.cat([transforms[..., :3], transforms[..., 3:] + shift[..., None]], dim=-1)
            vertices = None if vertices is None else vertices + shift
            points = None if points is None else points + shift
        return BodyOutput(joints=posed, transforms=homogeneous(transforms), vertices=vertices, keypoints=points)

    def _keypoints(self, kmap: KeypointMap, joints, vertices, transforms, coefficients) -> torch.Tensor:
        if vertices is not None:
            return kmap.from_mesh(joints, vertices, transforms)
        if kmap.skinned_base is None:
            ids = kmap.vertex_ids
            picked = skin(self.rest_vertices(coefficients, ids), self.skin_weights[ids].to(joints), transforms)
            return kmap.apply(joints, picked, transforms)
        return skinned_keypoints(kmap, coefficients, joints, transforms)  # exact, and no vertex is skinned

    def compile_keypoints(self, kmap: KeypointMap) -> KeypointMap:
        """Pre-skin the vertex part of ``kmap`` per joint (see :meth:`_keypoints`)."""
        ids = kmap.vertex_ids
        directions = self.vertex_blendshapes.reshape(self.vertex_blendshapes.shape[0], -1, 3)[:, ids]
        return compile_skinned_keypoints(kmap, self.skin_weights[ids], self.template_vertices[ids], directions)


@lru_cache(maxsize=1)
def anny_data() -> AnnyData:
    return load_anny_data()


def hand_vertex_ids(data: AnnyData, side: str) -> torch.Tensor:
    """Anny vertices that belong to a hand: at least half their skinning weight on its bones."""
    inside = torch.zeros(len(data.bone_labels), dtype=torch.bool)
    inside[list(bone_subtree(data, f"wrist.{side[0].upper()}"))] = True
    mass = (data.vertex_bone_weights * inside[data.vertex_bone_indices]).sum(dim=1)
    return torch.nonzero(mass >= 0.5)[:, 0]


def load_anny_body() -> AnnyModel:
    """The whole body: 22 core joints + 2 x 15 finger joints, 13,718 vertices."""
    return AnnyModel(anny_data())


def load_anny_hand(side: str) -> AnnyModel:
    """A hand alone (``side`` 'left' or 'right'): wrist root + 15 finger joints, cut from the body mesh."""
    if side not in ("left", "right"):
        raise ValueError(f"hand side must be 'left' or 'right', got {side!r}")
    data = anny_data()
    return AnnyModel(data, hand_joints(side), hand_vertex_ids(data, side))
