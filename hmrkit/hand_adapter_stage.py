"""The pipeline's HMR-Adapter stage: between the body estimate (HKMR's guess) and the fit.

Its hand-off (:class:`AdaptedStart`): the fit's starting pose and the finger joints the fit holds
fixed, after both adapter paths (:mod:`hmrkit.models.hmr_adapter`) ran on every person's two hands:

- body path: each arm's elbow and wrist turned by the offset the hand's MCP features give
  (HKMR's guess otherwise);
- hand path, for a hand MediaPipe did not find: its fingers (23 angles, from the body guidance and
  the expert's prior) and its wrist orientation, instead of fingers at rest and HKMR's wrist;
- a hand that was found keeps today's fingers (MediaPipe's landmarks -> the IK net) and its 2D
  landmarks place the wrist in the fit.

:class:`AdapterPaths` turns either path off (to measure each alone: ``--hand-adapter-paths``).

:class:`NoHandAdapter` is the same hand-off unchanged (``--no-hand-adapter``), so the pipeline calls
one stage either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.body.base import BodyModel
from hmrkit.data.retarget import CORE_NAMES, CORE_PARENTS
from hmrkit.fitting.body_fit import FitInit, FixedJoints
from hmrkit.hands.hand_model import load_biomech_hand, mirror_points, mirror_rotation
from hmrkit.models.hmr_adapter import HMRAdapter, HandInputs, apply_offsets, arm_chains, global_rotations, load_adapter
from hmrkit.perception.types import PersonDetection

SIDES = ("left", "right")
WRISTS = [CORE_NAMES.index(f"{side}_wrist") for side in SIDES]


@dataclass(frozen=True)
class AdapterPaths:
    """Which of the two paths the stage applies."""

    body: bool = True  # elbow and wrist offsets from the hands' features
    hands: bool = True  # fingers and wrist of hands perception did not find, from the hand path

    @classmethod
    def parse(cls, text: str) -> "AdapterPaths":
        """``"body,hands"``, ``"body"`` or ``"hands"``; ValueError otherwise."""
        names = {n.strip() for n in text.split(",") if n.strip()}
        if not names or names - {"body", "hands"}:
            raise ValueError(f"expected body, hands or body,hands, got {text!r}")
        return cls(body="body" in names, hands="hands" in names)


@dataclass(frozen=True)
class AdaptedStart:
    """The fit's start after the stage: ``guess`` (all joints) and the ``fixed`` finger joints (None: none)."""

    guess: FitInit
    fixed: FixedJoints | None


def hand_inputs(people: list[PersonDetection], core: torch.Tensor) -> HandInputs:
    """Both hands of every person (rows: person-major, left then right) as the adapter's input:
    MediaPipe's world landmarks (wrist-relative, right hands mirrored) and score, all missing
    when a hand was not found; the arm chains of ``core`` (B, 22, 3, 3), HKMR's guess."""
    n = 2 * len(people)
    points = torch.zeros(n, 21, 3)
    confidence = torch.zeros(n, 21)
    missing = torch.ones(n, 21, dtype=torch.bool)
    for i, person in enumerate(people):
        for k, side in enumerate(SIDES):
            hand = person.hands.get(side)
            if hand is None:
                continue
            world = torch.from_numpy(np.asarray(hand.world, dtype=np.float32))
            world = world - world[:1]
            points[2 * i + k] = mirror_points(world) if side == "right" else world
            confidence[2 * i + k] = float(hand.score)
            missing[2 * i + k] = False
    return HandInputs(points, confidence, missing, arm_chains(core).reshape(n, 4, 3, 3))


class HandAdapterStage:
    """Runs the shipped (or given) HMR-Adapter on a batch of people; see the module docstring."""

    def __init__(self, model: HMRAdapter | None = None, paths: AdapterPaths = AdapterPaths()):
        self.model = model if model is not None else load_adapter()[0]
        self.paths = paths
        self.hands = {side: load_biomech_hand(side) for side in SIDES}

    @torch.no_grad()
    def __call__(self, people: list[PersonDetection], guess: FitInit, fixed: FixedJoints | None, body: BodyModel) -> AdaptedStart:
        core = guess.rotations[:, :NUM_BODY_CORE]
        inputs = hand_inputs(people, core)
        memory = self.model.expert.encode(inputs)
        hands = self.model.hand(inputs, memory)
        if self.paths.body:
            core = apply_offsets(core, self.model.body_offset(inputs, memory).reshape(-1, 2, 2, 3, 3))
        rotations = guess.rotations.clone()
        batch = len(people)
        if fixed is None:
            fixed = FixedJoints(body.identity_pose(batch).clone(), torch.zeros(batch, body.num_joints, dtype=torch.bool))
        else:
            fixed = FixedJoints(fixed.rotations.clone(), fixed.mask.clone())
        unseen = inputs.missing.all(1).reshape(batch, 2) & self.paths.hands
        orientation = hands.rotation.reshape(batch, 2, 3, 3)
        angles = hands.angles.reshape(batch, 2, -1)
        for k, side in enumerate(SIDES):
            rows = unseen[:, k]
            if not bool(rows.any()):
                continue
            hand = self.hands[side]
            wrist = WRISTS[k]
            target = orientation[rows, k] if side == "left" else mirror_rotation(orientation[rows, k])
            parent = global_rotations(core[rows])[:, CORE_PARENTS[wrist]]
            core[rows, wrist] = parent.transpose(1, 2) @ target  # the wrist's local rotation giving that orientation
            index = [body.skeleton.index(name) for name in hand.model.skeleton.names[1:]]
            fingers = hand.rotations(angles[rows, k])[:, 1:]
            person = rows.nonzero()[:, 0]
            fixed.rotations[person[:, None], torch.tensor(index)[None]] = fingers
            fixed.mask[person[:, None], torch.tensor(index)[None]] = True
        rotations[:, :NUM_BODY_CORE] = core
        start = FitInit(rotations, guess.shape, guess.translation, guess.scales)
        return AdaptedStart(start, fixed if bool(fixed.mask.any()) else None)


class NoHandAdapter:
    """The stage switched off: the guess and the fixed fingers as they came."""

    def __call__(self, people: list[PersonDetection], guess: FitInit, fixed: FixedJoints | None, body: BodyModel) -> AdaptedStart:
        return AdaptedStart(guess, fixed)
