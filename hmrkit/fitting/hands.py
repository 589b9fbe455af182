"""Hands in the pipeline: MediaPipe hand landmarks -> biomechanical IK net -> post-optimization,
then fused into the body (the IK's finger rotations are held fixed in the body fit, which
places the wrist against the hand's 2D landmarks), or placed alone when no body was seen.

The body and the hand share Anny's mesh and skeleton, so a fused hand has no seam: the
fingers are the body's own finger joints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hmrkit.body.anny_model import AnnyModel
from hmrkit.body.base import BodyModel
from hmrkit.fitting.body_fit import FixedJoints, solve_translation
from hmrkit.geometry.cameras import PerspectiveCamera, perspective_project
from hmrkit.hands.biomech import ANGLE_NAMES
from hmrkit.hands.hand_model import HandFit
from hmrkit.hands.ik_net import HandIK
from hmrkit.perception.types import HandLandmarks, PersonDetection

SIDES = ("left", "right")


@dataclass
class PlacedHand:
    """A hand solved without a body, placed in the camera frame."""

    side: str
    landmarks: HandLandmarks  # what it was solved from
    fit: HandFit  # batch of one; joints/vertices in the camera frame
    joints2d: torch.Tensor  # (21, 2) pixels
    faces: torch.Tensor


class HandSolver:
    """One IK net per side (loaded on first use); solves all hands of one side in one batch."""

    def __init__(self, refine: bool = True, iterations: int = 20):
        self.refine = refine
        self.iterations = iterations
        self._ik: dict[str, HandIK] = {}

    def ik(self, side: str) -> HandIK:
        if side not in self._ik:
            self._ik[side] = HandIK.load(side)
        return self._ik[side]

    def solve(self, hands: list[HandLandmarks], side: str, with_vertices: bool = False) -> HandFit:
        world = torch.from_numpy(np.stack([h.world for h in hands])).float()
        return self.ik(side).solve(world, refine=self.refine, iterations=self.iterations, with_vertices=with_vertices)

    def solve_people(self, people: list[PersonDetection]) -> list[dict[str, HandFit]]:
        """Per person, side -> its solved hand (batch of one)."""
        solved: list[dict[str, HandFit]] = [{} for _ in people]
        for side in SIDES:
            owners = [i for i, p in enumerate(people) if side in p.hands]
            if not owners:
                continue
            fit = self.solve([people[i].hands[side] for i in owners], side)
            for row, i in enumerate(owners):
                solved[i][side] = HandFit(*(None if t is None else t[row : row + 1] for t in (
                    fit.angles, fit.shape, fit.global_rotation, fit.translation, fit.joints, fit.vertices)))
        return solved

    def fixed_fingers(self, model: BodyModel, solved: list[dict[str, HandFit]]) -> FixedJoints | None:
        """The solved fingers as joints the body fit holds fixed (None when there is no hand).

        Only for Anny: the IK's rotations are in the Anny hand's rest frames. SMPL-X's rest hand
        (flat, in a T-pose) differs, so mapping by joint name would bend its fingers wrongly;
        SMPL-family fingers stay at rest (None) and the hands are reported as landmarks."""
        if not any(solved) or not isinstance(model, AnnyModel):
            return None
        batch = len(solved)
        rotations = model.identity_pose(batch).clone()
        mask = torch.zeros(batch, model.num_joints, dtype=torch.bool)
        for i, hands in enumerate(solved):
            for side, fit in hands.items():
                hand = self.ik(side).hand
                fingers = hand.rotations(fit.angles)[0, 1:]  # (15, 3, 3), the hand skeleton's order
                names = hand.model.skeleton.names[1:]
                index = [model.skeleton.index(n) for n in names]
                rotations[i, index] = fingers
                mask[i, index] = True
        return FixedJoints(rotations, mask)

    def place_alone(self, hands: list[HandLandmarks], camera: PerspectiveCamera) -> list[PlacedHand]:
        """Hands with no body: solved, then moved so their keypoints project onto the 2D landmarks."""
        placed = []
        for side in SIDES:
            mine = [h for h in hands if h.side == side]
            if not mine:
                continue
            fit = self.solve(mine, side, with_vertices=True)
            xy = torch.from_numpy(np.stack([h.xy for h in mine])).float()
            shift = solve_translation(fit.joints, xy, torch.ones(xy.shape[:2]), camera)
            joints = fit.joints + shift[:, None]
            vertices = fit.vertices + shift[:, None]
            xy_fit = perspective_project(joints, camera)
            for row in range(len(mine)):
                one = HandFit(fit.angles[row : row + 1], fit.shape[row : row + 1], fit.global_rotation[row : row + 1],
                              (fit.translation + shift)[row : row + 1], joints[row : row + 1], vertices[row : row + 1])
                placed.append(PlacedHand(side, mine[row], one, xy_fit[row], self.ik(side).hand.faces))
        return placed


def angle_dict(fit: HandFit) -> dict[str, float]:
    """The 23 named biomechanical angles of a solved hand (radians)."""
    return {name: float(v) for name, v in zip(ANGLE_NAMES, fit.angles[0])}
