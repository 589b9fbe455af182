"""The labels of one synthetic hand image (``hmrkit synth hands``), on disk as every synthetic set.

A set is a folder in :mod:`hmrkit.synth.dataset`'s layout, with ``"kind": "hands"`` in its manifest::

    DIR/manifest.json         kind "hands", seed, count, image_size (H, W), options (the generator's settings)
    DIR/images/000000.jpg     the RGB hand crop, H x W (square; 256 by default, 128 for the CPU training set)
    DIR/labels/000000.npz     one :class:`SynthHand`, plain arrays read with ``allow_pickle=False``

Conventions (the same as the body sets): pixels with their centres at integers (pixel (0, 0)'s
centre is (0.0, 0.0)); the camera frame is OpenCV's (x right, y down, z forward, metres); the
pinhole ``camera`` = fx, fy, cx, cy projects ``joints3d`` to ``joints2d`` exactly
(:func:`hmrkit.synth.camera.project`). Joints are in ``hmrkit.body.conventions.HAND21`` order
(MediaPipe's: wrist, then thumb, index, middle, ring, little, four points each, tip last).

The mesh (``vertices``) is the Anny hand of the sample's side: the 1,596 Anny body vertices
with at least half their skinning weight on that wrist's bone subtree
(:func:`hmrkit.body.anny_model.hand_vertex_ids`, in that order), posed by ``angles`` and
``shape`` through :class:`hmrkit.hands.hand_model.BiomechHand`; its faces are
``load_biomech_hand(side).faces``. So ``BiomechHand(side)(angles, shape, global_rotation,
translation, with_vertices=True)`` rebuilds ``joints3d`` and ``vertices`` (the tests check it).
The forearm stub and the occluders drawn in the image are not part of the mesh.

A right hand is a right hand (not a mirrored left one): ``angles`` are in the IK net's
convention for its side, and a trainer that serves both sides with one network mirrors right
samples itself (``hand_model.mirror_points``, and the image flipped left-right).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hmrkit.synth import dataset

KIND = "hands"
# visibility codes per joint (COCO's): outside the image, inside but hidden (behind the hand
# itself or an occluder), visible
OUTSIDE, OCCLUDED, VISIBLE = 0, 1, 2


@dataclass
class SynthHand:
    """The labels of one rendered hand; see the module docstring for frames and units."""

    side: str  # "left" or "right"
    camera: np.ndarray  # (4,) float32 fx, fy, cx, cy in pixels of the saved image
    joints2d: np.ndarray  # (21, 2) float32 HAND21 joints, pixels
    joints3d: np.ndarray  # (21, 3) float32 HAND21 joints, camera frame, metres
    visibility: np.ndarray  # (21,) uint8 OUTSIDE / OCCLUDED / VISIBLE
    vertices: np.ndarray  # (1596, 3) float32 the Anny hand mesh of ``side``, camera frame, metres
    angles: np.ndarray  # (23,) float32 hmrkit.hands.biomech.ANGLE_NAMES order, radians
    shape: np.ndarray  # (6,) float32 Anny phenotypes in [0, 1] (gender, age, muscle, weight, height, proportions)
    global_rotation: np.ndarray  # (3, 3) float32 wrist rotation (camera frame) relative to Anny's rest hand
    translation: np.ndarray  # (3,) float32 the wrist joint's position, camera frame, metres
    box: np.ndarray  # (4,) float32 x0, y0, x1, y1 of the hand's visible pixels (not the forearm's, nor occluded ones)
    pose_source: str = ""  # "sampled" (feasible 23-DoF space) or "real:<photo>" (a pose the IK net found there)
    background: str = ""  # the photo the background was cut from, for tracing


def save_hand(path: Path, hand: SynthHand) -> None:
    dataset.save_label(path, hand)


def load_hand(path: Path) -> SynthHand:
    """One label file, or one clear ValueError (damaged or foreign file)."""
    return dataset.load_label(path, SynthHand)


def load_image(root: Path, index: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB image of sample ``index``."""
    bgr = cv2.imread(str(dataset.image_path(root, index)), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{dataset.image_path(root, index)}: missing or unreadable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_sample(root: Path, index: int) -> tuple[np.ndarray, SynthHand]:
    """Image and labels of sample ``index`` of the set in ``root``."""
    return load_image(root, index), load_hand(dataset.label_path(root, index))


def completed(root: Path) -> list[int]:
    """Indices of finished samples (image and label both written), for trainers and resuming."""
    return dataset.completed(root)


def read_hand_manifest(root: Path) -> dataset.SynthManifest:
    """The manifest of a hand set, or one clear ValueError if ``root`` holds another kind."""
    manifest = dataset.read_manifest(root)
    if manifest.kind != KIND:
        raise ValueError(f"{root}: a synthetic {manifest.kind!r} set, not a hand set")
    return manifest
