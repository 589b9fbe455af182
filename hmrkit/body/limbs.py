"""Limb status as AJAHR reports it: for each of the four limbs, present or absent from one level.

Each limb is one four-way class (BPAC-Net's heads): 0 = present, then the three levels of
:mod:`hmrkit.body.amputation` from the most distal to the most proximal (arm: ``hand``,
``forearm``, ``arm``; leg: ``foot``, ``lower_leg``, ``leg``). A status maps to the
:class:`~hmrkit.body.amputation.LimbLoss` list the body layer collapses.

Users who know write a status as ``left_leg=lower_leg,right_arm=hand`` (:func:`parse_limbs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmrkit.body.amputation import LimbLoss, limb_loss

LIMBS: tuple[str, ...] = ("left_arm", "right_arm", "left_leg", "right_leg")
ARM_LEVELS: tuple[str, ...] = ("hand", "forearm", "arm")
LEG_LEVELS: tuple[str, ...] = ("foot", "lower_leg", "leg")
PRESENT = "present"


def levels(limb: str) -> tuple[str, ...]:
    """The three absence levels of ``limb``, distal first (class 1, 2, 3)."""
    if limb not in LIMBS:
        raise ValueError(f"unknown limb {limb!r}; known: {', '.join(LIMBS)}")
    return ARM_LEVELS if limb.endswith("_arm") else LEG_LEVELS


def class_names(limb: str) -> tuple[str, ...]:
    """The four class names of ``limb``'s head: ``present`` then its levels."""
    return (PRESENT,) + levels(limb)


# the 12 absence types (limb, level), limbs in LIMBS order, levels distal first
ABSENCE_TYPES: tuple[tuple[str, str], ...] = tuple((limb, level) for limb in LIMBS for level in levels(limb))


@dataclass(frozen=True)
class LimbState:
    limb: str  # one of LIMBS
    level: str | None = None  # None: present; else one of levels(limb)
    probabilities: dict[str, float] | None = None  # class name -> probability, when a classifier decided

    @property
    def present(self) -> bool:
        return self.level is None

    @property
    def class_index(self) -> int:
        return 0 if self.level is None else 1 + levels(self.limb).index(self.level)

    @property
    def loss(self) -> LimbLoss | None:
        """The body layer's collapse for this state (None when present)."""
        return None if self.level is None else limb_loss(f"{self.limb.split('_')[0]}_{self.level}")


@dataclass(frozen=True)
class LimbStatus:
    """One person's four limbs, in :data:`LIMBS` order. ``source``: how it was decided --
    "intact" (assumed), "user" (stated), or the classifier's name. ``thresholds``: for a
    classified status, the P(present) below which each limb was called absent (None otherwise)."""

    states: tuple[LimbState, ...]
    source: str = "intact"
    thresholds: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if tuple(s.limb for s in self.states) != LIMBS:
            raise ValueError(f"a limb status lists {', '.join(LIMBS)} in that order")
        for s in self.states:
            if s.level is not None:
                levels(s.limb).index(s.level)  # ValueError on a level of the wrong limb
        if self.thresholds is not None and len(self.thresholds) != len(LIMBS):
            raise ValueError(f"a classified status has one threshold per limb, got {self.thresholds}")

    @classmethod
    def intact(cls) -> "LimbStatus":
        return cls(tuple(LimbState(limb) for limb in LIMBS), "intact")

    @classmethod
    def from_classes(cls, classes, probabilities: np.ndarray | None = None, source: str = "intact",
                     thresholds: np.ndarray | tuple[float, ...] | None = None) -> "LimbStatus":
        """From four class indices (0 present, 1-3 levels), optionally (4, 4) class probabilities and
        the four thresholds on P(present) that decided them."""
        classes = [int(c) for c in classes]
        if len(classes) != len(LIMBS) or not all(0 <= c <= 3 for c in classes):
            raise ValueError(f"limb classes are four integers in 0..3, got {classes}")
        states = []
        for i, (limb, c) in enumerate(zip(LIMBS, classes)):
            probs = None if probabilities is None else {n: float(p) for n, p in zip(class_names(limb), probabilities[i])}
            states.append(LimbState(limb, None if c == 0 else levels(limb)[c - 1], probs))
        return cls(tuple(states), source, None if thresholds is None else tuple(float(t) for t in thresholds))

    @property
    def classes(self) -> np.ndarray:
        """(4,) int64 class indices in LIMBS order."""
        return np.array([s.class_index for s in self.states], dtype=np.int64)

    @property
    def losses(self) -> tuple[LimbLoss, ...]:
        return tuple(s.loss for s in self.states if s.loss is not None)

    @property
    def any_absent(self) -> bool:
        return any(not s.present for s in self.states)

    def state(self, limb: str) -> LimbState:
        return self.states[LIMBS.index(limb)]

    def to_json(self) -> dict:
        """The result JSON's ``limbs`` (docs/output.md)."""
        return {s.limb: {"status": PRESENT if s.present else "absent", "level": s.level,
                         "probabilities": None if s.probabilities is None else {k: round(float(v), 4) for k, v in s.probabilities.items()}}
                for s in self.states}

    def thresholds_json(self) -> dict[str, float] | None:
        """The result JSON's ``limbs_thresholds``: each limb's threshold on P(present), or None."""
        return None if self.thresholds is None else {limb: round(t, 4) for limb, t in zip(LIMBS, self.thresholds)}

    @classmethod
    def from_json(cls, limbs: dict, source: str = "user") -> "LimbStatus":
        """Back from a result's ``limbs`` (e.g. to rebuild its mesh: collapse each of ``losses``)."""
        return cls(tuple(LimbState(limb, limbs[limb]["level"], limbs[limb].get("probabilities")) for limb in LIMBS), source)


def parse_limbs(text: str) -> LimbStatus:
    """``"left_leg=lower_leg,right_arm=hand"`` -> a user-stated status; unnamed limbs are present.
    ``limb=present`` is allowed. Raises ValueError with a one-line message on anything else."""
    chosen: dict[str, str | None] = {}
    for part in (p.strip() for p in text.split(",")):
        limb, sep, level = (s.strip() for s in part.partition("="))
        if not sep or limb not in LIMBS:
            raise ValueError(f"limb statement {part!r}: write LIMB=LEVEL with LIMB one of {', '.join(LIMBS)}")
        if limb in chosen:
            raise ValueError(f"limb statement names {limb} twice")
        if level != PRESENT and level not in levels(limb):
            raise ValueError(f"limb statement {part!r}: the level of {limb} is one of {', '.join(class_names(limb))}")
        chosen[limb] = None if level == PRESENT else level
    return LimbStatus(tuple(LimbState(limb, chosen.get(limb)) for limb in LIMBS), "user")


# What each level removes, cumulatively from the distal level up (the part's own points; the
# joint the limb is cut at stays, it is the stump's end). Named by the side-less part of the
# keypoint names of every convention hmrkit fits or writes (mediapipe33, body_output, the fit's
# "left_hand:..." points).
_REMOVED_AT: dict[str, tuple[str, ...]] = {
    "hand": ("pinky", "index", "thumb", "hand:*"),
    "forearm": ("wrist",),
    "arm": ("elbow",),
    "foot": ("heel", "foot_index", "big_toe", "small_toe"),
    "lower_leg": ("ankle",),
    "leg": ("knee",),
}


def removed_parts(limb: str, level: str) -> tuple[str, ...]:
    """Side-less keypoint names ``limb`` loses when absent from ``level`` (``"hand:*"``: every hand point)."""
    chain = levels(limb)
    return tuple(part for lvl in chain[: chain.index(level) + 1] for part in _REMOVED_AT[lvl])


def removed_keypoints(names: tuple[str, ...], status: LimbStatus) -> np.ndarray:
    """(K,) bool: which of the keypoints ``names`` lie on a part ``status`` says is absent."""
    gone: set[str] = set()
    wholes: set[str] = set()
    for state in status.states:
        if state.level is None:
            continue
        side = state.limb.split("_")[0]
        for part in removed_parts(state.limb, state.level):
            (wholes if part.endswith(":*") else gone).add(f"{side}_{part.rstrip('*')}")
    return np.array([n in gone or any(n.startswith(w) for w in wholes) for n in names], dtype=bool)
