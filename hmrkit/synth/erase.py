"""Real photos with a limb erased: real-looking absent limbs for testing AJAHR's limb classifier.

A3D's absent limbs are rendered (:mod:`hmrkit.synth.a3d`), so a classifier trained on A3D plus
real intact people can learn "rendered -> maybe absent, real -> present" instead of looking at
the limb. Erasing a limb from a real photo gives an absence in real pixels: the limb's part
below the cut (from MediaPipe's landmarks of the person) is painted over with OpenCV's Telea
inpainting, the fill the A3D backgrounds use (:mod:`hmrkit.synth.backgrounds`). The fill is
blurry and follows only the nearby background, so these are a probe of the shortcut, not a
stand-in for photos of amputees. A *decoy* paints the same shape over background next to the
person, every limb kept: trained on both, a classifier cannot take the fill itself for absence.

What is erased for each level (:mod:`hmrkit.body.limbs`), as bands along the bones, each as wide
as a share of the torso's length (``ErasePlan``):
- arm: ``hand`` from the wrist on (the wrist, the knuckle landmarks and a hand's length past
  them), ``forearm`` from the elbow on, ``arm`` from the shoulder on;
- leg: ``foot`` from the ankle on (heel, toes), ``lower_leg`` from the knee on, ``leg`` from the
  hip on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from hmrkit.body.limbs import LIMBS, LimbState, levels
from hmrkit.perception.types import BodyLandmarks, mp33_index, torso_length


def _points(side: str, names: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(mp33_index(f"{side}_{name}") for name in names)


# MediaPipe pose landmarks of each limb: shoulder or hip, elbow or knee, wrist or ankle, the hand's or foot's points
_LIMB_POINTS = {f"{side}_arm": (*_points(side, ("shoulder", "elbow", "wrist")), _points(side, ("pinky", "index", "thumb")))
                for side in ("left", "right")}
_LIMB_POINTS |= {f"{side}_leg": (*_points(side, ("hip", "knee", "ankle")), _points(side, ("heel", "foot_index")))
                 for side in ("left", "right")}
_TORSO = tuple(mp33_index(n) for n in ("left_shoulder", "right_shoulder", "right_hip", "left_hip"))  # its outline in order


@dataclass(frozen=True)
class ErasePlan:
    """Band widths, as shares of the torso's length (shoulders' centre to hips' centre)."""

    arm_width: float = 0.32
    leg_width: float = 0.42
    hand_width: float = 0.36  # the hand's and foot's blobs
    dilate: float = 0.04  # grow the mask by this share of the torso (takes the outline and shadow edge)
    inpaint_radius: int = 7


def limb_landmarks(limb: str) -> tuple[int, int, int, tuple[int, ...]]:
    """MediaPipe landmark indices of ``limb``: (shoulder or hip, elbow or knee, wrist or ankle,
    the hand's or foot's points)."""
    if limb not in _LIMB_POINTS:
        raise ValueError(f"unknown limb {limb!r}; known: {', '.join(LIMBS)}")
    return _LIMB_POINTS[limb]


def limb_chain(limb: str, level: str, xy: np.ndarray) -> list[np.ndarray]:
    """The points, proximal to distal, of the part of ``limb`` that ``level`` removes; the last
    entry is the hand's or foot's own points, extended a little past the landmarks."""
    if level not in levels(limb):
        raise ValueError(f"{limb} has no level {level!r}; levels: {', '.join(levels(limb))}")
    root, mid, end, tips = limb_landmarks(limb)
    kind = limb.split("_")[1]
    start = levels(limb).index(level)  # 0: hand/foot, 1: forearm/lower leg, 2: whole limb
    chain = [xy[p] for p in (root, mid, end)][2 - start:]
    tip_points = xy[list(tips)]
    # the hand reaches past its knuckle landmarks; the foot's landmarks already reach the toes
    reach = tip_points + (0.6 if kind == "arm" else 0.15) * (tip_points - xy[end])
    return chain + [np.vstack([tip_points, reach])]


def limb_mask(shape: tuple[int, int], xy: np.ndarray, limb: str, level: str, plan: ErasePlan = ErasePlan()) -> np.ndarray:
    """(H, W) bool: the pixels erased for ``limb`` absent from ``level`` (``xy``: (33, 2) pixels)."""
    torso = torso_length(xy)
    if not np.isfinite(xy).all() or torso < 2.0:
        raise ValueError("the person's landmarks are incomplete: nothing to erase from")
    chain = limb_chain(limb, level, xy)
    width = plan.arm_width if limb.endswith("_arm") else plan.leg_width
    mask = np.zeros(shape, np.uint8)
    joints, tips = chain[:-1], chain[-1]  # from the joint where the cut lies to the wrist or ankle

    def pixel(p: np.ndarray) -> tuple[int, int]:
        return tuple(np.round(p).astype(int))

    for a, b in zip(joints, joints[1:]):
        cv2.line(mask, pixel(a), pixel(b), 1, max(1, round(width * torso)))
    cv2.circle(mask, pixel(joints[0]), max(1, round(0.5 * width * torso)), 1, -1)
    for p in tips:
        cv2.line(mask, pixel(joints[-1]), pixel(p), 1, max(1, round(plan.hand_width * torso)))
    grow = max(1, round(plan.dilate * torso))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return mask.astype(bool)


def erase_limb(rgb: np.ndarray, xy: np.ndarray, limb: str, level: str,
               plan: ErasePlan = ErasePlan()) -> tuple[np.ndarray, np.ndarray]:
    """(the photo with ``limb`` erased from ``level`` on, the erased pixels' mask). ``xy``: the
    person's 33 MediaPipe landmarks in pixels of ``rgb``."""
    mask = limb_mask(rgb.shape[:2], np.asarray(xy, np.float64), limb, level, plan)
    return fill(rgb, mask, plan), mask


def fill(rgb: np.ndarray, mask: np.ndarray, plan: ErasePlan = ErasePlan()) -> np.ndarray:
    """``rgb`` with the ``mask`` pixels inpainted (Telea) from their surroundings."""
    return cv2.inpaint(np.ascontiguousarray(rgb), mask.astype(np.uint8), plan.inpaint_radius, cv2.INPAINT_TELEA)


def limb_in_view(body: BodyLandmarks, limb: str, shape: tuple[int, int], min_visibility: float = 0.8,
                 min_torso_px: float = 40.0) -> bool:
    """Whether ``body`` can have ``limb`` erased: all landmarks inside the photo, the limb's seen
    (visibility at least ``min_visibility``), the torso at least ``min_torso_px`` long."""
    h, w = shape
    xy = np.asarray(body.xy)
    root, mid, end, tips = limb_landmarks(limb)
    inside = bool(np.isfinite(xy).all() and (xy >= 0).all() and (xy[:, 0] < w).all() and (xy[:, 1] < h).all())
    return inside and bool((body.visibility[[root, mid, end, *tips]] >= min_visibility).all()) and torso_length(xy) >= min_torso_px


def decoy_mask(shape: tuple[int, int], xy: np.ndarray, limb: str, level: str,
               plan: ErasePlan = ErasePlan()) -> np.ndarray | None:
    """(H, W) bool: :func:`limb_mask`'s shape moved beside the person (a torso's length or more to
    the side, up or down, the first place inside the photo that covers at most 2 % of the
    person's own limbs and torso), or None where there is no such place."""
    xy = np.asarray(xy, np.float64)
    mask = limb_mask(shape, xy, limb, level, plan)
    body = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(body, np.round(xy[list(_TORSO)]).astype(np.int32), 1)
    body = body.astype(bool)
    for other in LIMBS:
        body |= limb_mask(shape, xy, other, levels(other)[-1], plan)
    torso = torso_length(xy)
    ys, xs = np.nonzero(mask)
    for dx, dy in ((1.2, 0), (-1.2, 0), (0, -1.2), (0, 1.2), (1.8, 0.6), (-1.8, 0.6), (1.8, -0.6), (-1.8, -0.6)):
        u, v = xs + round(dx * torso), ys + round(dy * torso)
        if u.min() < 0 or v.min() < 0 or u.max() >= shape[1] or v.max() >= shape[0]:
            continue
        if body[v, u].mean() <= 0.02:
            moved = np.zeros(shape, bool)
            moved[v, u] = True
            return moved
    return None


@dataclass(frozen=True)
class EditedPerson:
    """A real person after an edit, as the pipeline would see them: the edited photo, the
    landmarks perception finds on it, and the limb labels (:data:`LIMBS` order, 0 present)."""

    rgb: np.ndarray
    body: BodyLandmarks
    limb_classes: np.ndarray  # (4,) int64


def edit_person(rgb: np.ndarray, body: BodyLandmarks, limb: str, level: str,
                detect: Callable[[np.ndarray], list[BodyLandmarks]], decoy: bool = False,
                plan: ErasePlan = ErasePlan()) -> EditedPerson | None:
    """``body``'s ``limb`` erased from ``level`` on (or, with ``decoy``, the same shape painted
    beside them), then perception (``detect``) run on the edited photo and the person found again
    by their shoulders' and hips' centre (within half a torso). None where the decoy has no room
    or perception loses the person."""
    xy = np.asarray(body.xy, np.float64)
    mask = decoy_mask(rgb.shape[:2], xy, limb, level, plan) if decoy else limb_mask(rgb.shape[:2], xy, limb, level, plan)
    if mask is None:
        return None
    edited = fill(rgb, mask, plan)
    def off_centre(other: np.ndarray) -> float:
        return float(np.linalg.norm(other[list(_TORSO)].mean(0) - xy[list(_TORSO)].mean(0)))

    found = detect(edited)
    if not found or min(off_centre(b.xy) for b in found) >= 0.5 * torso_length(xy):
        return None
    classes = np.zeros(len(LIMBS), np.int64)
    if not decoy:
        classes[LIMBS.index(limb)] = LimbState(limb, level).class_index
    return EditedPerson(edited, min(found, key=lambda b: off_centre(b.xy)), classes)
