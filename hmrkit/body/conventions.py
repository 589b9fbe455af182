"""The one registry of keypoint names: each convention is an ordered tuple of joint names.

Names are lower-case, ``left``/``right`` are the person's own sides. Models map onto these
names (see :mod:`hmrkit.body.keypoints`); datasets and detectors are read into them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Convention:
    name: str
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def indices(self, names: tuple[str, ...] | list[str]) -> list[int]:
        return [self.names.index(n) for n in names]


def sides_swapped(names: tuple[str, ...]) -> list[int]:
    """The order of ``names`` with every left/right pair exchanged (a mirror image's joints, or
    labels whose sides were taken the other way): ``left_wrist`` <-> ``right_wrist``, and
    MediaPipe's ``mouth_left`` <-> ``mouth_right`` (the side as any ``_``-separated word); other
    names stay in place."""
    other = {"left": "right", "right": "left"}
    return [names.index("_".join(other.get(word, word) for word in n.split("_"))) for n in names]


def _sides(*names: str) -> tuple[str, ...]:
    return tuple(f"{side}_{n}" for n in names for side in ("left", "right"))


COCO17 = Convention(
    "coco17",
    ("nose",) + _sides("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"),
)

MEDIAPIPE33 = Convention(
    "mediapipe33",
    (
        "nose",
        "left_eye_inner", "left_eye", "left_eye_outer",
        "right_eye_inner", "right_eye", "right_eye_outer",
        "left_ear", "right_ear", "mouth_left", "mouth_right",
    )
    + _sides("shoulder", "elbow", "wrist", "pinky", "index", "thumb", "hip", "knee", "ankle", "heel", "foot_index"),
)

# Leeds Sports Pose order (as in the dataset's joints.mat).
LSP14 = Convention(
    "lsp14",
    (
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
        "neck", "head_top",
    ),
)

# Human3.6M 17-joint order used by most mesh-recovery evaluations.
H36M17 = Convention(
    "h36m17",
    (
        "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
        "spine", "thorax", "neck_nose", "head_top",
        "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
    ),
)

SMPL24 = Convention(
    "smpl24",
    (
        "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
        "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
        "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
    ),
)

FINGERS = ("thumb", "index", "middle", "ring", "little")

# hand21: wrist, then thumb, index, middle, ring, little, four joints each from root to tip.
HAND21 = Convention(
    "hand21",
    ("wrist",)
    + ("thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip")
    + tuple(f"{f}_{j}" for f in FINGERS[1:] for j in ("mcp", "pip", "dip", "tip")),
)

# Names the pipeline's JSON always carries for a body (issue: at least these).
BODY_OUTPUT = Convention(
    "body_output",
    ("nose", "neck", "head_top", "pelvis")
    + _sides("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle", "heel", "big_toe", "small_toe"),
)

BODY_CONVENTIONS = (COCO17, MEDIAPIPE33, LSP14, H36M17, SMPL24, BODY_OUTPUT)
