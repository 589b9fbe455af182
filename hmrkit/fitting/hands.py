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
from hmrkit.hands.hand_model import HandFit, mirror_points, mirror_rotation
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
    """One IK net per side (loaded on first use); all people's hands, both sides, go in one batch (see solve_people)."""

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
        """Per person, side -> its solved hand (batch of one).

        Every hand goes through the left IK in ONE batch, a right hand as its mirror image (the
        right Anny hand is exactly the mirrored left, tested in test_hand_biomech), and its
        placement is mirrored back: one post-optimization loop instead of one per side (the
        loop is bound by per-step overhead, not by the batch size)."""
        solved: list[dict[str, HandFit]] = [{} for _ in people]
        entries = [(i, side) for i, p in enumerate(people) for side in SIDES if side in p.hands]
        if not entries:
            return solved
        world = torch.from_numpy(np.stack([people[i].hands[side].world for i, side in entries])).float()
        right = torch.tensor([side == "right" for _, side in entries])
        world = torch.where(right[:, None, None], mirror_points(world), world)
        fit = self.ik("left").solve(world, refine=self.refine, iterations=self.iterations)
        for row, (i, side) in enumerate(entries):
            one = slice(row, row + 1)
            rotation, translation, joints = fit.global_rotation[one], fit.translation[one], fit.joints[one]
            if side == "right":
                rotation, translation, joints = mirror_rotation(rotation), mirror_points(translation), mirror_points(joints)
            solved[i][side] = HandFit(fit.angles[one], fit.shape[one], rotation, translation, joints)
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
