"""Is a detected "body" a person? Checks on whole-body evidence (issue 15).

MediaPipe's pose model answers with confidence near 1 on things that are not people: a hand
seen close (the fingers taken for limbs: 32 of the 100 real hand close-ups of hands_ge2019_dev
gave a body), or a print on a dress under a face-shaped pattern (a 6 x 14 px "person"). These
checks reject such detections on evidence about the detection as a whole -- where its landmarks
lie against a hand found in the same image, how large it is -- and never on one limb's
landmarks: a limb may be absent (amputation), which a later stage decides.

- Hand close-up: a body whose box is at most 2.5 times the box of a hand the hand model found on
  the whole image, and which either has most of its seen, in-image landmarks inside that hand's
  box or holds that hand's box, IS that hand (the fingers, or the hand and its forearm, taken for
  a body, sometimes upside down). The size condition keeps a real person gesturing in front of
  their face (demo hands/test3.jpg: most landmarks inside the hands' box, but the person's box
  is 3.7 times the hand's). The hand is reported on its own, and in such a close-up any other
  body under 2.5 times the hand's size goes too (a person's box is many times their hand's; on
  the close-ups such bodies were strips of fingers at the border).
- Too small: a body whose landmark box is shorter than ``min_body_px`` on its long side. The
  pose landmark model cannot resolve a person that small (it needs ~100 px), so such a body is
  a pattern the detector took for one.
- Not a person to two other models (``PersonEvidence``): the person segmentation sees no person
  under most of the body's seen landmarks (``hmrkit.perception.silhouette``) *and* the landmark
  model's own person flag on the ROI of those landmarks is low. Either alone also turns down
  real people (athletes upside down, thin limbs, motion blur); together they turned down things
  the pose model took for people -- furniture, toys, railings, strips at the border -- and none
  of the athletes found in lspet_dev (see ``PlausibilityConfig``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hmrkit.perception.geometry import points_box
from hmrkit.perception.types import BodyLandmarks, HandLandmarks, PersonDetection


@dataclass(frozen=True)
class PlausibilityConfig:
    """Thresholds of the checks (see the module notes).

    hand_share: share of a body's seen, in-image landmarks inside a hand's box (grown by
        ``hand_margin`` of its size on each side) from which the body is that hand. On the 32
        hand close-ups that gave a body, the body's share inside the whole-image hand was 0.59
        to 1.0 (one more body 0.0: a strip at the border, smaller than the hand). A real person
        with half their seen landmarks inside one hand's box would be hidden by that hand.
    hand_area: a body is a hand only when that hand's box is at least this share of the body's
        box (0.54 to 0.77 on the close-ups' bodies; 0.27 on a person gesturing before their face).
    hand_inside: or, instead of ``hand_share``, when the body's box holds this share of the
        hand's box (one close-up: 0.94, with 0.38 of its landmarks inside the hand). In a
        close-up, other bodies under ``hand_area`` relative size go as well.
    min_body_px: the shortest long side of a body's box (pixels) that is kept.
    min_silhouette: a body with less person segmentation than this under its seen landmarks
        (mean probability) is doubtful, and then kept only if ``min_flag`` says it is a person;
        0 turns the check off. min_flag: the landmark model's person flag that keeps a doubtful
        body. Chosen on a development run over everyone perception found in the 1000 lspet_dev
        photos, coco_mini_dev and the demo photos (1,421 bodies; the segmentation was below 0.3
        under 5.6 % of them): 0.3 / 0.8 turned down 4 of the 20 bodies found on coco_mini_dev
        photos where COCO marks no person there, none of its 43 people and none of the 677
        lspet_dev athletes found, plus 20 other lspet_dev bodies and 1 demo body, in a look at
        the pictures nearly all furniture, toys, railings and strips at the border (and a body
        put on a trumpet held by two hands). Measured through the pipeline: benchmarks/results/people_*.md.
    """

    hand_share: float = 0.5
    hand_margin: float = 0.1
    hand_area: float = 0.4
    hand_inside: float = 0.8
    min_body_px: float = 32.0
    visible: float = 0.5
    min_silhouette: float = 0.3
    min_flag: float = 0.8

    def __post_init__(self) -> None:
        if not 0.0 < self.hand_share <= 1.0:
            raise ValueError(f"hand_share must lie in (0, 1], got {self.hand_share}")
        if self.hand_margin < 0 or self.min_body_px < 0:
            raise ValueError("hand_margin and min_body_px must be >= 0")
        if not (0.0 <= self.min_silhouette <= 1.0 and 0.0 <= self.min_flag <= 1.0):
            raise ValueError("min_silhouette and min_flag must lie in [0, 1]")


@dataclass(frozen=True)
class PersonEvidence:
    """What two models besides the one that placed a body's landmarks say of it.

    silhouette: the person segmentation's mean probability under the body's seen landmarks.
    flag: the landmark model's person flag on the ROI of those landmarks; None when it was not
        asked (the silhouette settled it: :func:`needs_flag`).
    """

    silhouette: float
    flag: float | None = None

    def is_person(self, cfg: PlausibilityConfig) -> bool:
        if self.silhouette >= cfg.min_silhouette:
            return True
        if self.flag is None:
            raise ValueError("a body with a low silhouette needs the landmark model's person flag")
        return self.flag >= cfg.min_flag


def needs_flag(silhouette: float, cfg: PlausibilityConfig) -> bool:
    """Whether the person flag must be asked for a body with this ``silhouette`` (the flag costs
    a landmark-model call; the silhouette is below ``min_silhouette`` for ~6 % of bodies)."""
    return silhouette < cfg.min_silhouette


@dataclass(frozen=True)
class Screened:
    """What the checks kept: people (bodies), hands reported alone, and why anything went."""

    people: list[PersonDetection]
    lone_hands: list[HandLandmarks] = field(default_factory=list)
    notes: tuple[str, ...] = ()


def seen_points(body: BodyLandmarks, width: int, height: int, visible: float) -> np.ndarray:
    """(N, 2) the body's landmarks seen (visibility >= ``visible``) and inside the image."""
    pts = body.xy[body.visibility >= visible]
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < width) & (pts[:, 1] >= 0) & (pts[:, 1] < height)
    return pts[inside]


def share_inside(points: np.ndarray, hand_xy: np.ndarray, margin: float) -> float:
    """Share of ``points`` inside the box of a hand's landmarks grown by ``margin`` of its size."""
    if len(points) == 0:
        return 0.0
    x0, y0, x1, y1 = points_box(hand_xy, margin=0.0)
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    inside = (points[:, 0] >= x0 - mx) & (points[:, 0] <= x1 + mx) & (points[:, 1] >= y0 - my) & (points[:, 1] <= y1 + my)
    return float(inside.mean())


def _area(box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _overlap(a, b) -> float:
    """Area of the intersection of two boxes."""
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def is_hand(person: PersonDetection, hand: HandLandmarks, width: int, height: int, cfg: PlausibilityConfig) -> bool:
    """The body of ``person`` is ``hand`` seen close (see the module notes)."""
    box = points_box(hand.xy, margin=0.0)
    area = _area(box)
    if area <= 0 or area < cfg.hand_area * _area(person.box):
        return False  # the body is far larger than the hand: a person with a hand in view
    pts = seen_points(person.body, width, height, cfg.visible)
    if len(pts) >= 3 and share_inside(pts, hand.xy, cfg.hand_margin) >= cfg.hand_share:
        return True
    return _overlap(box, person.box) >= cfg.hand_inside * area


def screen(people: list[PersonDetection], hands: list[HandLandmarks], width: int, height: int,
           config: PlausibilityConfig | None = None, evidence: list[PersonEvidence | None] | None = None) -> Screened:
    """``people`` without the detections that are not people; ``hands``: hands the hand model
    found on the whole image (sides from the hand model), candidates for a close-up;
    ``evidence``: per person (None: not judged, as for hands-only people), or None for no such check."""
    cfg = config or PlausibilityConfig()
    if evidence is not None and len(evidence) != len(people):
        raise ValueError(f"evidence for {len(evidence)} people, but {len(people)} people")
    notes: list[str] = []
    covering: dict[int, HandLandmarks] = {}  # body index -> the hand it is
    for k, person in enumerate(people):
        if person.body is None:
            continue
        for hand in hands:
            if is_hand(person, hand, width, height, cfg):
                covering[k] = hand
                break
    lone: list[HandLandmarks] = []
    for hand in covering.values():
        if not any(hand is other for other in lone):
            lone.append(hand)
    smallest_hand = min((_area(points_box(h.xy, margin=0.0)) for h in lone), default=0.0)
    kept: list[PersonDetection] = []
    small = unlike = 0
    for k, person in enumerate(people):
        if k in covering:
            continue
        if evidence is not None and evidence[k] is not None and not evidence[k].is_person(cfg):
            unlike += 1
            continue
        if person.body is not None and lone and cfg.hand_area * _area(person.box) < smallest_hand:
            small += 1
            continue
        x0, y0, x1, y1 = person.box
        if person.body is not None and max(x1 - x0, y1 - y0) < cfg.min_body_px:
            small += 1
            continue
        kept.append(person)
    if covering:
        notes.append(f"{len(covering)} body detection(s) were a hand seen close: reported as a hand")
    if small:
        notes.append(f"{small} body detection(s) too small to be a person left out")
    if unlike:
        notes.append(f"{unlike} body detection(s) that neither the person segmentation nor the pose model's person flag took "
                     "for a person left out")
    return Screened(kept, lone, tuple(notes))
