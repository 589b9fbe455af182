"""What the body fit aims at: 2D landmarks and MediaPipe's metric 3D landmarks, as tensors.

The fit uses one keypoint set, ``FIT_KEYPOINTS``: MediaPipe's 33 body landmarks, then the
left and the right hand's 21 (hand21 order). A person's detections fill it; what is missing
has weight 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hmrkit.body.conventions import HAND21, MEDIAPIPE33, Convention
from hmrkit.perception.types import PersonDetection

SIDES = ("left", "right")
FIT_KEYPOINTS = Convention(
    "fit75",
    MEDIAPIPE33.names + tuple(f"{side}_hand:{n}" for side in SIDES for n in HAND21.names),
)
BODY = slice(0, 33)
HAND_SLICES = {"left": slice(33, 54), "right": slice(54, 75)}
MIN_VISIBILITY = 0.2  # MediaPipe visibility below this counts as "not seen" (``FitTargets.seen``)
# The pose's knuckle points ('pinky', 'index', 'thumb') lie nearer the wrist than Anny's
# knuckle joints: at full weight they pull the fitted wrist back along the forearm
# (benchmarks/bench_fit_ablation.py). By default they keep a fifth of their visibility weight.
POSE_HAND_POINT_WEIGHT = 0.2


@dataclass
class FitTargets:
    """Batched over people (B); K = 75 keypoints of ``FIT_KEYPOINTS``."""

    xy: torch.Tensor  # (B, K, 2) pixels
    xy_weight: torch.Tensor  # (B, K)
    world: torch.Tensor  # (B, K, 3) metres, camera-aligned axes; body part hip-centred, hands centroid-centred
    world_weight: torch.Tensor  # (B, K)
    box_size: torch.Tensor  # (B,) pixels, the scale of the 2D residuals
    # (B, K) landmarks the detector calls seen (what a regressor reads as visible); None: weight > 0.
    # The fit weights every landmark by its visibility, the unseen ones too (MediaPipe's guesses).
    seen: torch.Tensor | None = None
    # (B, J) the body model's joint scales for limb differences: 0 at the joint an absent limb is
    # cut at (its subtree collapses there, hmrkit.body.amputation), 1 elsewhere; None: intact
    collapse: torch.Tensor | None = None

    def seen_mask(self) -> torch.Tensor:
        return self.xy_weight > 0 if self.seen is None else self.seen

    @property
    def batch(self) -> int:
        return self.xy.shape[0]


def targets_from_detections(people: list[PersonDetection], weigh_unseen: bool = True,
                            pose_hand_point_weight: float = POSE_HAND_POINT_WEIGHT) -> FitTargets:
    """The fit's targets for ``people``. Body landmarks weigh their MediaPipe visibility; with
    ``weigh_unseen=False`` those below ``MIN_VISIBILITY`` weigh nothing (the earlier rule).
    Hand landmarks weigh 1."""
    n = len(people)
    k = len(FIT_KEYPOINTS)
    xy = np.zeros((n, k, 2), np.float32)
    xy_w = np.zeros((n, k), np.float32)
    world = np.zeros((n, k, 3), np.float32)
    world_w = np.zeros((n, k), np.float32)
    box = np.zeros(n, np.float32)
    seen = np.zeros((n, k), bool)
    for i, person in enumerate(people):
        x0, y0, x1, y1 = person.box
        box[i] = max(x1 - x0, y1 - y0, 1.0)
        if person.body is not None:
            vis = person.body.visibility
            seen[i, BODY] = vis >= MIN_VISIBILITY
            if not weigh_unseen:
                vis = np.where(seen[i, BODY], vis, 0.0)
            xy[i, BODY] = person.body.xy
            xy_w[i, BODY] = vis
            world[i, BODY] = person.body.world
            world_w[i, BODY] = vis
            for side in SIDES:
                for name in ("pinky", "index", "thumb"):
                    xy_w[i, MEDIAPIPE33.index(f"{side}_{name}")] *= pose_hand_point_weight
        for side, hand in person.hands.items():
            part = HAND_SLICES[side]
            xy[i, part] = hand.xy
            xy_w[i, part] = 1.0
            world[i, part] = hand.world - hand.world.mean(axis=0)
            world_w[i, part] = 1.0
            seen[i, part] = True
    return FitTargets(*(torch.from_numpy(a) for a in (xy, xy_w, world, world_w, box, seen)))
