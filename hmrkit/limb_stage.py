"""The pipeline's limb-status stage (AJAHR): between perception and the body estimate.

MediaPipe never reports a missing limb: it places landmarks for it anyway, and a fit that
follows them draws the limb. This stage decides, per person, which limbs are absent -- stated
by the user, assumed intact, or classified from the image (BPAC-Net) -- and hands the body
estimate people whose absent parts are gone from the evidence: their landmarks unseen (weight 0
in the fit, missing to the regressor), their hands dropped, and the collapse the fit and the
mesh apply (:mod:`hmrkit.body.amputation`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch

from hmrkit.body.amputation import collapse_scales
from hmrkit.body.base import Skeleton
from hmrkit.body.conventions import MEDIAPIPE33
from hmrkit.body.limbs import LimbStatus, removed_keypoints
from hmrkit.perception.types import PersonDetection


class LimbClassifier(Protocol):
    """A learned limb-status classifier (BPAC-Net): the image and its people in, a status each out
    (its ``source`` names the classifier)."""

    def classify(self, rgb: np.ndarray, people: list[PersonDetection]) -> list[LimbStatus]: ...


@dataclass(frozen=True)
class LimbChoice:
    """How limbs are decided. ``stated``: the same status for every person (the user's word, or
    ``LimbStatus.intact()`` for hmrkit's behaviour before limb status existed); None: ``classifier``
    decides per person."""

    stated: LimbStatus | None = None
    classifier: LimbClassifier | None = None

    def __post_init__(self) -> None:
        if self.stated is None and self.classifier is None:
            raise ValueError("limb status needs a stated status or a classifier")


@dataclass(frozen=True)
class PeopleWithLimbs:
    """The stage's hand-off: ``people`` as the body estimate must see them, with their ``status``."""

    people: list[PersonDetection]
    status: list[LimbStatus]

    def collapse(self, skeleton: Skeleton) -> torch.Tensor | None:
        """(B, J) the body model's joint scales for the absent limbs; None when everyone is intact."""
        if not any(s.any_absent for s in self.status):
            return None
        return torch.cat([collapse_scales(skeleton, s.losses) for s in self.status])


def decide_limbs(rgb: np.ndarray, people: list[PersonDetection], choice: LimbChoice) -> PeopleWithLimbs:
    """Each person's limb status, and the people without their absent parts."""
    if not people:
        return PeopleWithLimbs([], [])
    status = [choice.stated] * len(people) if choice.stated is not None else choice.classifier.classify(rgb, people)
    return PeopleWithLimbs([without_absent_parts(p, s) for p, s in zip(people, status)], status)


def without_absent_parts(person: PersonDetection, status: LimbStatus) -> PersonDetection:
    """``person`` with the body landmarks of absent parts unseen (visibility 0) and their hands removed."""
    if not status.any_absent:
        return person
    body = person.body
    if body is not None:
        gone = removed_keypoints(MEDIAPIPE33.names, status)
        visibility = np.where(gone, 0.0, body.visibility).astype(np.float32)
        presence = None if body.presence is None else np.where(gone, 0.0, body.presence).astype(np.float32)
        body = replace(body, visibility=visibility, presence=presence)
    hands = {side: hand for side, hand in person.hands.items() if status.state(f"{side}_arm").present}  # any arm level takes the hand
    return replace(person, body=body, hands=hands)


class LimbProbabilities(Protocol):
    """A classifier that also gives its class probabilities and its decision rule (BPAC-Net)."""

    thresholds: np.ndarray  # (4,) absent when P(present) is below

    def probabilities(self, rgb: np.ndarray, people: list[PersonDetection]) -> np.ndarray: ...  # (N, 4, 4)

    def decide(self, probabilities: np.ndarray) -> np.ndarray: ...  # (N, 4, 4) -> (N, 4) classes


class TrackedLimbs:
    """Video: a person's limbs do not change between frames, but one frame's view may mislead the
    classifier. Each track's class probabilities are averaged over its frames so far (a running
    mean, so the evidence of every frame counts alike) and the decision is made on the average:
    a limb does not flicker in and out of the mesh. People without a track are decided alone."""

    def __init__(self, classifier: LimbProbabilities, source: str = "bpac"):
        self.classifier = classifier
        self.source = source
        self.sums: dict[int, tuple[np.ndarray, int]] = {}

    def classify(self, rgb: np.ndarray, people: list[PersonDetection]) -> list[LimbStatus]:
        probabilities = self.classifier.probabilities(rgb, people)
        out = []
        for person, p in zip(people, probabilities):
            if np.isnan(p).any():
                out.append(LimbStatus.intact())
                continue
            if person.track_id is not None:
                total, frames = self.sums.get(person.track_id, (np.zeros_like(p), 0))
                self.sums[person.track_id] = (total + p, frames + 1)
                p = (total + p) / (frames + 1)
            out.append(LimbStatus.from_classes(self.classifier.decide(p[None])[0], p, self.source, self.classifier.thresholds))
        return out
