"""What the body fit aims at, made from detections: weights, what counts as seen, hands."""

from __future__ import annotations

import numpy as np
import torch

from hmrkit.body.conventions import MEDIAPIPE33
from hmrkit.fitting.targets import HAND_SLICES, MIN_VISIBILITY, POSE_HAND_POINT_WEIGHT, targets_from_detections
from hmrkit.models.encoders import BodyKeypoints
from hmrkit.perception.types import BodyLandmarks, HandLandmarks, PersonDetection


def _person(visibility: np.ndarray, with_hand: bool) -> PersonDetection:
    rng = np.random.default_rng(0)
    body = BodyLandmarks(xy=rng.uniform(0, 100, (33, 2)), visibility=visibility, world=rng.normal(size=(33, 3)))
    hands = {}
    if with_hand:
        hands["left"] = HandLandmarks("left", rng.uniform(0, 100, (21, 2)), rng.normal(size=(21, 3)) * 0.05, 0.9, "pose")
    return PersonDetection((0.0, 0.0, 100.0, 120.0), 0.9, body, hands)


def test_every_landmark_weighs_its_visibility_and_only_confident_ones_count_as_seen():
    visibility = np.linspace(0.0, 1.0, 33)
    targets = targets_from_detections([_person(visibility, with_hand=False), _person(visibility[::-1].copy(), with_hand=True)])
    knuckles = [MEDIAPIPE33.index(f"{s}_{n}") for s in ("left", "right") for n in ("pinky", "index", "thumb")]
    for i, vis in enumerate((visibility, visibility[::-1].copy())):
        want = torch.tensor(vis, dtype=torch.float32)
        want[knuckles] *= POSE_HAND_POINT_WEIGHT  # with or without a hand found
        assert torch.allclose(targets.xy_weight[i, :33], want)
        assert torch.allclose(targets.world_weight[i, :33], torch.tensor(vis, dtype=torch.float32))
        assert torch.equal(targets.seen_mask()[i, :33], torch.tensor(vis >= MIN_VISIBILITY))
    left, right = HAND_SLICES["left"], HAND_SLICES["right"]
    assert targets.seen_mask()[1, left].all() and (targets.xy_weight[1, left] == 1).all()
    assert not targets.seen_mask()[0, left].any() and not targets.seen_mask()[:, right].any()
    assert (targets.xy_weight[:, right] == 0).all()


def test_the_keypoint_encoder_reads_seen_not_weight():
    visibility = np.full(33, 0.1)
    visibility[:11] = 0.9
    targets = targets_from_detections([_person(visibility, with_hand=False)])
    keypoints = BodyKeypoints.from_targets(targets)
    assert keypoints.visible[0, :11].all() and not keypoints.visible[0, 11:].any()
    assert (targets.xy_weight[0, 11:33] > 0).all()  # the fit still hears MediaPipe's guesses, softly
