"""A person's body as a rig: a skinned glTF 2.0 (.glb) with the 52-joint skeleton, animated over a video.

What an animator gets (one file per person of a photo, per track of a video):

- the skeleton of :mod:`hmrkit.body.anny_rig` (52 joints, SMPL-H names), one glTF node per
  joint, rest pose = Anny's A-pose with the person's build baked in (the track's mean
  phenotypes): the inverse bind matrices are ``T(-rest joint)``, the joints' rest axes are the
  world axes;
- the bind mesh (13,718 vertices) at that rest pose, skinned with the model's own weights:
  ``JOINTS_0``/``WEIGHTS_0`` hold each vertex's four largest influences and ``JOINTS_1``/
  ``WEIGHTS_1`` the rest (Anny gives up to 7): Blender reads both sets and reproduces hmrkit's
  mesh; a viewer that reads only the first set (three.js) renormalises it;
- the pose as node rotations (quaternions), the fit's bone scales as node scales (0 collapses an
  absent limb), and for videos one animation ``motion`` keyed at every frame of the track
  (time = frame index / frame rate): rotations of every joint, the root's translation, the
  scales where they are not all 1, and the other joints' translations where the fit's build
  drifts over the track (the smoothed phenotypes move a little), so that the joints stay where
  hmrkit put them.

Frames. glTF is y-up with the viewer looking down -z; hmrkit's camera frame is y-down,
z-forward. The rig lives in the camera frame turned 180 degrees about x, ``(x, -y, -z)``
(``export_meshes(..., y_up=True)`` does the same): the person stands upright in front of the
camera at the origin. The rest pose stands at the origin, facing +z. Units: metres.

Node transforms follow hmrkit's forward kinematics exactly: a joint's local matrix is
``[scale * R | rest offset]`` (:func:`hmrkit.body.kinematics.forward_kinematics`), which is glTF's
``T * R * S`` with a uniform ``S``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hmrkit.render.gltf import _ARRAY_BUFFER, _FLOAT, _UNSIGNED_SHORT, GlbBuffer, GlbMesh
from hmrkit.render.mesh_ops import PALETTE, vertex_normals

SCENE_FROM_CAMERA = np.diag([1.0, -1.0, -1.0])  # 180 degrees about x: y up, facing the viewer
INFLUENCES_PER_SET = 4


@dataclass(frozen=True)
class PersonMotion:
    """One person (photo) or track (video) as hmrkit fitted it, frame by frame (T frames, J joints).

    Everything in hmrkit's camera frame, as ``<stem>.json`` holds it (docs/output.md)."""

    name: str  # e.g. "photo_person0", "video_track3"
    rotations: np.ndarray  # (T, J, 3, 3) local rotations; [:, 0] = global orientation
    shapes: np.ndarray  # (T, S) phenotypes
    translations: np.ndarray  # (T, 3) metres
    scales: np.ndarray  # (T, J) subtree scales: bone_scales, 0 where a limb is absent
    frame_indices: np.ndarray  # (T,) video frame numbers; [0] for a photo
    fps: float | None = None  # frames per second; None for a photo

    def __post_init__(self) -> None:
        frames = len(self.frame_indices)
        if frames == 0:
            raise ValueError(f"{self.name}: no frames")
        if self.rotations.shape[0] != frames or self.shapes.shape[0] != frames or self.translations.shape != (frames, 3) \
                or self.scales.shape != self.rotations.shape[:2]:
            raise ValueError(f"{self.name}: per-frame arrays of different lengths")
        if frames > 1 and not (self.fps and self.fps > 0):
            raise ValueError(f"{self.name}: an animation needs a positive frame rate")

    @property
    def times(self) -> np.ndarray:
        """(T,) seconds of each frame (0 for a photo)."""
        return np.asarray(self.frame_indices, np.float64) / (self.fps or 1.0)


@dataclass(frozen=True)
class Rig:
    """The rig of one :class:`PersonMotion`, in the scene frame (y up): bind pose and per-frame transforms."""

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    bind_joints: np.ndarray  # (J, 3) rest joints of the bind build
    bind_vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    skin_joints: np.ndarray  # (V, K) joint of each influence, K a multiple of 4, largest first
    skin_weights: np.ndarray  # (V, K) summing to 1 per vertex
    local_rotations: np.ndarray  # (T, J, 3, 3) scene frame (the root's turned by SCENE_FROM_CAMERA)
    local_translations: np.ndarray  # (T, J, 3): the root's place, the others' rest offsets of the frame's build
    scales: np.ndarray  # (T, J)
    times: np.ndarray  # (T,) seconds

    def world(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """World (scaled) rotations (J, 3, 3) and joint positions (J, 3) of ``frame``: the node hierarchy evaluated."""
        count = len(self.parents)
        rotation, position = np.zeros((count, 3, 3)), np.zeros((count, 3))
        for j, parent in enumerate(self.parents):  # parents come first
            local = self.local_rotations[frame, j] * self.scales[frame, j]
            if parent < 0:
                rotation[j], position[j] = local, self.local_translations[frame, j]
            else:
                rotation[j] = rotation[parent] @ local
                position[j] = position[parent] + rotation[parent] @ self.local_translations[frame, j]
        return rotation, position


def split_influences(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V, J) dense skin weights -> (V, K) joints and weights, largest first, K the smallest multiple
    of 4 that holds every vertex's influences; unused slots are joint 0 with weight 0."""
    weights = np.asarray(weights, np.float64)
    most = int((weights > 0).sum(axis=1).max())
    k = max(INFLUENCES_PER_SET, -(-most // INFLUENCES_PER_SET) * INFLUENCES_PER_SET)
    order = np.argsort(-weights, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(weights, order, axis=1)
    joints = np.where(picked > 0, order, 0)
    picked = picked / picked.sum(axis=1, keepdims=True)
    return joints.astype(np.uint16), picked


def build_rig(motion: PersonMotion, body) -> Rig:
    """The rig of ``motion`` on ``body`` (an :class:`~hmrkit.body.anny_model.AnnyModel`): the bind
    build is the mean of the frames' phenotypes."""
    names = tuple(body.skeleton.names)
    parents = tuple(int(p) for p in body.skeleton.parents)
    if motion.rotations.shape[1] != len(names):
        raise ValueError(f"{motion.name}: {motion.rotations.shape[1]} joints, the body model has {len(names)}")
    with torch.no_grad():  # the model's own dtype (float32), as hmrkit's results were computed
        shapes = torch.as_tensor(np.asarray(motion.shapes), dtype=torch.float32)
        coefficients = body.blend_coefficients(shapes.mean(dim=0, keepdim=True))
        bind_joints = body.rest_joints(coefficients)[0].double().numpy()
        bind_vertices = body.rest_vertices(coefficients)[0].double().numpy()
        frame_joints = body.rest_joints(body.blend_coefficients(shapes)).double().numpy()  # (T, J, 3)
    parent_index = np.maximum(np.array(parents), 0)
    offsets = frame_joints - frame_joints[:, parent_index] * (np.array(parents) >= 0)[None, :, None]
    rotations = np.asarray(motion.rotations, np.float64).copy()
    rotations[:, 0] = SCENE_FROM_CAMERA @ rotations[:, 0]
    translations = offsets.copy()
    translations[:, 0] = (frame_joints[:, 0] + np.asarray(motion.translations, np.float64)) @ SCENE_FROM_CAMERA.T
    skin_joints, skin_weights = split_influences(body.skin_weights.double().numpy())
    return Rig(
        name=motion.name, joint_names=names, parents=parents, bind_joints=bind_joints, bind_vertices=bind_vertices,
        faces=body.faces.numpy(), skin_joints=skin_joints, skin_weights=skin_weights, local_rotations=rotations,
        local_translations=translations, scales=np.asarray(motion.scales, np.float64), times=motion.times,
    )


def matrix_to_quaternion(matrices: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 4) unit quaternions x, y, z, w (glTF's order), w >= 0."""
    import roma

    q = roma.rotmat_to_unitquat(torch.as_tensor(matrices, dtype=torch.float64)).numpy()  # roma: x, y, z, w
    return q * np.where(q[..., 3:] < 0, -1.0, 1.0)


def _continuous(quaternions: np.ndarray) -> np.ndarray:
    """(T, ..., 4) with each sign chosen nearest the previous frame's: interpolation takes the short way."""
    q = quaternions.copy()
    for t in range(1, len(q)):
        q[t] *= np.where((q[t] * q[t - 1]).sum(-1, keepdims=True) < 0, -1.0, 1.0)
    return q


def rig_glb(rig: Rig, color: tuple[int, int, int] = PALETTE[0], generator: str = "hmrkit") -> bytes:
    """The skinned (and, over several frames, animated) .glb of ``rig``; nodes at frame 0's pose."""
    buffer = GlbBuffer()
    count = len(rig.joint_names)
    joint_nodes = list(range(1, count + 1))  # node 0: the skinned mesh, at the scene's root as the spec asks
    quaternions = _continuous(matrix_to_quaternion(rig.local_rotations))
    nodes: list[dict] = [{"name": rig.name, "mesh": 0, "skin": 0}]
    for j, name in enumerate(rig.joint_names):
        node = {"name": name, "rotation": quaternions[0, j].tolist(), "translation": rig.local_translations[0, j].tolist()}
        if rig.scales[0, j] != 1.0:
            node["scale"] = [float(rig.scales[0, j])] * 3
        children = [joint_nodes[c] for c, p in enumerate(rig.parents) if p == j]
        if children:
            node["children"] = children
        nodes.append(node)
    rgba = np.array([*color, 255], np.uint8)
    mesh = GlbMesh(rig.name, rig.bind_vertices, rig.faces, vertex_normals(rig.bind_vertices, rig.faces),
                   np.tile(rgba, (len(rig.bind_vertices), 1)))
    sets = {}
    for s in range(rig.skin_joints.shape[1] // INFLUENCES_PER_SET):
        cols = slice(s * INFLUENCES_PER_SET, (s + 1) * INFLUENCES_PER_SET)
        sets[f"JOINTS_{s}"] = buffer.add(rig.skin_joints[:, cols], _UNSIGNED_SHORT, "VEC4", _ARRAY_BUFFER)
        sets[f"WEIGHTS_{s}"] = buffer.add(rig.skin_weights[:, cols].astype(np.float32), _FLOAT, "VEC4", _ARRAY_BUFFER)
    inverse_bind = np.tile(np.eye(4), (count, 1, 1))
    inverse_bind[:, :3, 3] = -rig.bind_joints
    document: dict = {
        "asset": {"version": "2.0", "generator": generator},
        "scene": 0,
        "scenes": [{"nodes": [0, joint_nodes[rig.parents.index(-1)]]}],
        "nodes": nodes,
        "meshes": [{"name": rig.name, "primitives": [buffer.mesh_primitive(mesh, **sets)]}],
        "skins": [{
            "name": f"{rig.name}_skeleton",
            "joints": joint_nodes,
            "skeleton": joint_nodes[rig.parents.index(-1)],
            # column-major, as glTF stores matrices
            "inverseBindMatrices": buffer.add(inverse_bind.transpose(0, 2, 1).astype(np.float32), _FLOAT, "MAT4"),
        }],
    }
    if len(rig.times) > 1:
        document["animations"] = [_animation(rig, buffer, quaternions, joint_nodes)]
    return buffer.glb(document)


def _animation(rig: Rig, buffer: GlbBuffer, quaternions: np.ndarray, joint_nodes: list[int]) -> dict:
    times = rig.times.astype(np.float32)
    time_accessor = buffer.add(times, _FLOAT, "SCALAR", min=[float(times.min())], max=[float(times.max())])
    samplers: list[dict] = []
    channels: list[dict] = []

    def key(j: int, path: str, values: np.ndarray, kind: str) -> None:
        samplers.append({"input": time_accessor, "interpolation": "LINEAR",
                         "output": buffer.add(values.astype(np.float32), _FLOAT, kind)})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": joint_nodes[j], "path": path}})

    drift = np.abs(rig.local_translations - rig.local_translations[:1]).max(axis=0).max(axis=-1)  # (J,)
    for j in range(len(rig.joint_names)):
        key(j, "rotation", quaternions[:, j], "VEC4")
        if rig.parents[j] < 0 or drift[j] > 1e-6:
            key(j, "translation", rig.local_translations[:, j], "VEC3")
        if not np.all(rig.scales[:, j] == rig.scales[0, j]):
            key(j, "scale", np.repeat(rig.scales[:, j : j + 1], 3, axis=1), "VEC3")
    return {"name": "motion", "samplers": samplers, "channels": channels}
