"""Typed results of hmrkit, and their one JSON form (schema ``hmrkit.result``, see docs/output.md).

Frames and units: camera frame of the photo (OpenCV: x right, y down, z forward), metres,
radians; 2D points in pixels of the original image (before any downscaling).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from hmrkit.body.limbs import LimbStatus
from hmrkit.geometry.rotations import matrix_to_axis_angle

SCHEMA = "hmrkit.result"
SCHEMA_VERSION = "1.4"  # 1.1: bone_scales; 1.2: estimator; 1.3: camera.source, limbs, limbs_source; 1.4: limbs_thresholds


@dataclass
class HandResult:
    side: str  # the person's side
    joints2d: np.ndarray  # (21, 2) pixels, hand21 order
    joints3d: np.ndarray  # (21, 3) camera frame, metres
    confidence: float
    side_source: str  # "pose" or "hand_model"
    angles: dict[str, float] | None = None  # 23 biomechanical angles (radians), when the IK path ran
    vertices: np.ndarray | None = None  # (V, 3) camera frame: only for a hand seen without its body
    faces: np.ndarray | None = None  # (F, 3) of ``vertices``


@dataclass
class PersonResult:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 pixels
    confidence: float
    joint_names: tuple[str, ...]
    joints2d: np.ndarray  # (K, 2) pixels; NaN for points on absent limbs
    joints3d: np.ndarray  # (K, 3) camera frame, metres; NaN for points on absent limbs
    pose_names: tuple[str, ...]
    pose: np.ndarray  # (J, 3, 3) local joint rotations; pose[0] = global orientation in the camera frame
    shape_names: tuple[str, ...]
    shape: np.ndarray  # (S,)
    translation: np.ndarray  # (3,) camera frame, metres
    reprojection_error: float  # mean 2D error of the fitted landmarks, pixels
    hands: dict[str, HandResult] = field(default_factory=dict)
    absent_joints: list[str] = field(default_factory=list)
    vertices: np.ndarray | None = None  # (V, 3) camera frame, metres
    track_id: int | None = None
    # joint -> scale of its subtree (the model's ``scales``), for joints the fit scaled; empty: none
    bone_scales: dict[str, float] = field(default_factory=dict)
    limbs: LimbStatus = field(default_factory=LimbStatus.intact)  # which limbs are absent, and how it was decided


@dataclass
class ImageResult:
    source: str
    width: int
    height: int
    camera: dict[str, float]  # fx, fy, cx, cy in pixels of the original image
    body_model: str
    people: list[PersonResult]
    faces: np.ndarray | None = None  # (F, 3) shared by every person's mesh
    notes: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    frame_index: int | None = None
    # the perception detections of ``people``, in the same order (not written to files)
    detections: list = field(default_factory=list, repr=False)
    hands_only: list[HandResult] = field(default_factory=list)  # hands seen without a body
    # how the body was estimated: "hkmr+refine", "hkmr" (regressor alone), "optimization"
    estimator: str = ""
    # where ``camera`` came from: "user" (--intrinsics or --fov), "exif" (the photo's focal length), "default"
    camera_source: str = "default"


def model_scales(joint_names, bone_scales: dict[str, float], limbs: LimbStatus) -> np.ndarray:
    """(J,) the body model's ``scales`` that rebuild a result's mesh from its pose: its bone scales,
    and 0 at the joint each absent limb is cut at."""
    names = list(joint_names)
    scales = np.ones(len(names))
    for name, value in bone_scales.items():
        scales[names.index(name)] = value
    for loss in limbs.losses:
        scales[names.index(loss.joint)] = 0.0
    return scales


def _round(a: np.ndarray, digits: int) -> list:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def _named(names: tuple[str, ...], values: np.ndarray, digits: int) -> dict[str, list]:
    """Name -> rounded point, leaving out points that are not there (NaN: on an absent limb)."""
    return {n: _round(v, digits) for n, v in zip(names, values) if np.isfinite(v).all()}



def person_to_json(person: PersonResult) -> dict:
    pose = torch.as_tensor(person.pose, dtype=torch.float64)
    axis_angle = matrix_to_axis_angle(pose).numpy()
    return {
        "box": _round(person.box, 1),
        "confidence": round(float(person.confidence), 4),
        "track_id": person.track_id,
        "joints2d": _named(person.joint_names, person.joints2d, 1),
        "joints3d": _named(person.joint_names, person.joints3d, 4),
        "pose": {
            "joint_names": list(person.pose_names),
            "axis_angle": _round(axis_angle, 5),
            "matrices": _round(person.pose, 5),
        },
        "shape": dict(zip(person.shape_names, _round(person.shape, 4))),
        "translation": _round(person.translation, 4),
        "reprojection_error_px": round(float(person.reprojection_error), 2),
        "hands": {side: hand_to_json(h) for side, h in person.hands.items()},
        "limbs": person.limbs.to_json(),
        "limbs_source": person.limbs.source,
        "limbs_thresholds": person.limbs.thresholds_json(),
        "absent_joints": list(person.absent_joints),
        "bone_scales": {n: round(float(v), 4) for n, v in person.bone_scales.items()},
    }


def hand_to_json(hand: HandResult) -> dict:
    out = {
        "side": hand.side,
        "side_source": hand.side_source,
        "confidence": round(float(hand.confidence), 4),
        "joints2d": _round(hand.joints2d, 1),
        "joints3d": _round(hand.joints3d, 4),
    }
    if hand.angles is not None:
        out["angles"] = {k: round(float(v), 4) for k, v in hand.angles.items()}
    return out


def image_to_json(result: ImageResult) -> dict:
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "source": result.source,
        "frame_index": result.frame_index,
        "image": {"width": result.width, "height": result.height},
        "camera": {**{k: round(float(v), 3) for k, v in result.camera.items()}, "source": result.camera_source},
        "body_model": result.body_model,
        "estimator": result.estimator,
        "units": {"length": "metre", "angle": "radian", "pixels": "original image"},
        "people": [person_to_json(p) for p in result.people],
        "hands_only": [hand_to_json(h) for h in result.hands_only],
        "notes": list(result.notes),
        "timings_ms": {k: round(float(v), 1) for k, v in result.timings_ms.items()},
    }
