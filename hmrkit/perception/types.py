"""What the perception front end hands to the rest of hmrkit: typed, backend-neutral results.

All 2D coordinates are pixels of the image given to ``detect`` (x right, y down). World
coordinates are metres with MediaPipe's axes, which match the OpenCV camera's orientation
(x towards image right, y down, z away from the camera) but not its origin: body world
points are centred between the hips, hand world points at the hand's geometric centre.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from hmrkit.body.conventions import HAND21, MEDIAPIPE33, sides_swapped

Side = Literal["left", "right"]
SideSource = Literal["pose", "hand_model"]

# Names come from the one registry (hmrkit.body.conventions); MediaPipe's output orders match
# them (checked against MediaPipe's own enums in the tests). Sides are the PERSON's sides.
MEDIAPIPE33_NAMES: tuple[str, ...] = MEDIAPIPE33.names
_SIDES_EXCHANGED = np.array(sides_swapped(MEDIAPIPE33_NAMES))  # landmark order with left and right exchanged
HAND21_NAMES: tuple[str, ...] = HAND21.names  # wrist, thumb, index, middle, ring, little (MediaPipe's "pinky")


def mp33_index(name: str) -> int:
    """Index of a MediaPipe pose landmark by name (ValueError with the valid names)."""
    try:
        return MEDIAPIPE33_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown mediapipe33 landmark {name!r}; one of {MEDIAPIPE33_NAMES}") from None


_SHOULDERS = (mp33_index("left_shoulder"), mp33_index("right_shoulder"))
_HIPS = (mp33_index("left_hip"), mp33_index("right_hip"))


def torso_length(xy: np.ndarray) -> float:
    """Distance from the shoulders' centre to the hips' centre of 33 MediaPipe landmarks (pixels or metres)."""
    xy = np.asarray(xy)
    return float(np.linalg.norm(xy[list(_SHOULDERS)].mean(axis=0) - xy[list(_HIPS)].mean(axis=0)))


def _as(a: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    if a.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {a.shape}")
    return a


@dataclass(frozen=True)
class BodyLandmarks:
    """33 body landmarks of one person (MediaPipe order, see MEDIAPIPE33_NAMES).

    xy: (33, 2) pixels. Landmarks outside the picture are still predicted (extrapolated);
        check ``visibility`` before trusting one.
    visibility: (33,) in [0, 1], the model's belief that the point is in view and unoccluded.
    presence: (33,) in [0, 1] that the point lies inside the image, or None when the backend
        does not give it (legacy MediaPipe Pose does not).
    world: (33, 3) metres, origin between the hips (see the module notes for the axes).
    """

    xy: np.ndarray
    visibility: np.ndarray
    world: np.ndarray
    presence: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "xy", _as(self.xy, (33, 2), "body xy"))
        object.__setattr__(self, "visibility", _as(self.visibility, (33,), "body visibility"))
        object.__setattr__(self, "world", _as(self.world, (33, 3), "body world"))
        if self.presence is not None:
            object.__setattr__(self, "presence", _as(self.presence, (33,), "body presence"))

    def point(self, name: str) -> np.ndarray:
        """Pixel position of a named landmark."""
        return self.xy[mp33_index(name)]

    def sides_exchanged(self) -> BodyLandmarks:
        """The same points with the person's left and right exchanged (the left wrist's point
        named the right wrist and so on; nothing moves)."""
        order = _SIDES_EXCHANGED
        return BodyLandmarks(xy=self.xy[order], visibility=self.visibility[order], world=self.world[order],
                             presence=None if self.presence is None else self.presence[order])


@dataclass(frozen=True)
class HandLandmarks:
    """21 landmarks of one hand (hand21 order, see HAND21_NAMES).

    side: the PERSON's side ('left' = the person's own left hand).
    side_source: 'pose' when the side came from the body landmarks (the hand was searched
        around that wrist), 'hand_model' when only the hand model's handedness was available.
    xy: (21, 2) pixels. world: (21, 3) metres, origin at the hand's geometric centre.
    score: the hand model's handedness confidence in [0, 1] for the reported side (the
        legacy MediaPipe API exposes no other per-hand score).
    crop: (x0, y0, x1, y1) pixels of the square region the hand model saw, or None for a
        whole-image search.
    """

    side: Side
    xy: np.ndarray
    world: np.ndarray
    score: float
    side_source: SideSource
    crop: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.side not in ("left", "right"):
            raise ValueError(f"hand side must be 'left' or 'right', got {self.side!r}")
        if self.side_source not in ("pose", "hand_model"):
            raise ValueError(f"side_source must be 'pose' or 'hand_model', got {self.side_source!r}")
        object.__setattr__(self, "xy", _as(self.xy, (21, 2), "hand xy"))
        object.__setattr__(self, "world", _as(self.world, (21, 3), "hand world"))


@dataclass(frozen=True)
class PersonDetection:
    """One person: a box, the body landmarks (None when only hands were found) and hands.

    box: (x0, y0, x1, y1) pixels, clipped to the image. It bounds the landmarks (visible
        body landmarks with a margin, plus any hands), it is not a detector's box.
    score: in [0, 1]; mean visibility of the torso and head landmarks for a body, the best
        hand score for a hands-only detection.
    hands: side -> HandLandmarks, at most one per side.
    track_id: in video mode, the tracker slot that follows this person from frame to frame
        (stable while tracking holds); None for photos.
    """

    box: tuple[float, float, float, float]
    score: float
    body: BodyLandmarks | None
    hands: dict[Side, HandLandmarks] = field(default_factory=dict)
    track_id: int | None = None

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = (float(v) for v in self.box)
        if not (x1 >= x0 and y1 >= y0):
            raise ValueError(f"box must be (x0, y0, x1, y1) with x1 >= x0, y1 >= y0, got {self.box}")
        object.__setattr__(self, "box", (x0, y0, x1, y1))
        for side, hand in self.hands.items():
            if hand.side != side:
                raise ValueError(f"hands[{side!r}] holds a {hand.side} hand")


@dataclass(frozen=True)
class Perception:
    """Everything found in one image. ``people`` is empty when nobody was found."""

    image_size: tuple[int, int]  # (width, height)
    people: list[PersonDetection]
    notes: tuple[str, ...] = ()
