"""Whole-body scores against a pseudo-ground-truth mesh given as vertices only (e.g. EHF's SMPL-X fits).

Why this shape: such ground truth shares no topology with Anny and gives no joints (the SMPL-X joint
regressor is licensed apart), so bodies are compared by *named surface points* -- face/foot landmarks
and fingertips -- after a similarity (Umeyama) alignment, and meshes by the distance from each of our
vertices to the ground-truth surface. Without the ground truth's faces that surface is approximated by
its nearest vertex, which overestimates the point-to-surface distance by at most about half the
ground truth's vertex spacing (:func:`vertex_spacing` gives that bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.spatial import cKDTree

from hmrkit.geometry.procrustes import procrustes_align

# EHF's 11 surface landmarks (SMPL-X landmark vertices), the person's own sides, in the order of
# annotations.npz; each is the Anny keypoint of the same name (hmrkit.body.anny_keypoints: Anny's own
# COCO / COCO-feet regressors, which are weighted vertex sums). No new mapping is made here.
FACE_FOOT_LANDMARKS = ("nose", "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe",
                       "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
FINGERTIPS = ("thumb", "index", "middle", "ring", "little")
HAND_SIDES = ("left", "right")
# the 21 points of the whole-body alignment: 11 landmarks, then left then right fingertips
POINT_NAMES = FACE_FOOT_LANDMARKS + tuple(f"{s}_hand:{f}_tip" for s in HAND_SIDES for f in FINGERTIPS)


@dataclass(frozen=True)
class AnnyPoints:
    """The vertex weights of ``POINT_NAMES`` on the Anny mesh, and which vertices make the hands."""

    weights: np.ndarray  # (21, V): point = weights @ vertices
    hand_vertices: np.ndarray  # (H,) ids of vertices skinned mostly to a wrist or finger joint

    def points(self, vertices: np.ndarray) -> np.ndarray:
        """(..., V, 3) vertices -> (..., 21, 3) points."""
        return np.einsum("kv,...vc->...kc", self.weights, vertices)


@lru_cache(maxsize=1)
def anny_points() -> AnnyPoints:
    """``POINT_NAMES`` as Anny vertex weights (from the keypoint library) and the hand vertices."""
    from hmrkit.body.anny_keypoints import anny_keypoint_library
    from hmrkit.body.anny_model import load_anny_body

    model = load_anny_body()
    lib = anny_keypoint_library()
    weights = np.zeros((len(POINT_NAMES), model.template_vertices.shape[0]))
    for k, name in enumerate(POINT_NAMES):
        spec = lib[name]
        if spec.joints or spec.offsets:
            raise ValueError(f"Anny keypoint {name!r} is not a surface point (it uses joints)")
        for index, w in spec.vertices:
            weights[k, index] += w
    owners = model.skin_weights.argmax(dim=1).numpy()
    skeleton = model.skeleton
    hand_joints = [j for s in HAND_SIDES for j in skeleton.subtree(skeleton.index(f"{s}_wrist"))]
    return AnnyPoints(weights, np.flatnonzero(np.isin(owners, hand_joints)))


def similarity_align(source: np.ndarray, target: np.ndarray, fit: np.ndarray | None = None
                     ) -> tuple[np.ndarray, tuple[float, np.ndarray, np.ndarray]]:
    """Umeyama similarity mapping ``source`` (N, 3) onto ``target`` (N, 3), fitted on the ``fit``
    mask (all points when None). Returns the aligned source and (scale, rotation (3, 3),
    translation (3,)), so that other points of the same body can be carried along."""
    s = torch.as_tensor(source, dtype=torch.float64)[None]
    t = torch.as_tensor(target, dtype=torch.float64)[None]
    w = None if fit is None else torch.as_tensor(np.asarray(fit, dtype=np.float64))
    aligned, tf = procrustes_align(s, t, w)
    return aligned[0].numpy(), (float(tf.scale[0]), tf.rotation[0].numpy(), tf.translation[0].numpy())


def apply_similarity(points: np.ndarray, transform: tuple[float, np.ndarray, np.ndarray]) -> np.ndarray:
    """``scale * R @ p + t`` for (N, 3) points."""
    scale, rotation, translation = transform
    return scale * points @ rotation.T + translation


def nearest_surface_distance(points: np.ndarray, surface_vertices: np.ndarray) -> np.ndarray:
    """(N,) distance from each point to the nearest of ``surface_vertices`` (M, 3): the
    point-to-surface distance of a mesh known by its vertices only (an overestimate, see module)."""
    distance, _ = cKDTree(surface_vertices).query(points)
    return distance


def vertex_spacing(vertices: np.ndarray) -> float:
    """Mean distance from each vertex to its nearest other vertex: the mesh's sampling density."""
    distance, _ = cKDTree(vertices).query(vertices, k=2)
    return float(distance[:, 1].mean())


def project(points: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Pinhole projection of camera-frame (N, 3) points to pixels."""
    return np.stack([fx * points[:, 0] / points[:, 2] + cx, fy * points[:, 1] / points[:, 2] + cy], axis=1)
