"""Landmark name tables and the typed perception results."""

from __future__ import annotations

import numpy as np
import pytest

from hmrkit.perception import (
    HAND21_NAMES,
    MEDIAPIPE33_NAMES,
    BodyLandmarks,
    HandLandmarks,
    PersonDetection,
    mp33_index,
)


def test_mediapipe33_names_follow_mediapipe_enum() -> None:
    import mediapipe as mp

    enum_names = tuple(lm.name.lower() for lm in mp.solutions.pose.PoseLandmark)
    assert MEDIAPIPE33_NAMES == enum_names
    assert len(set(MEDIAPIPE33_NAMES)) == 33


def test_hand21_names_follow_mediapipe_enum() -> None:
    import mediapipe as mp

    # MediaPipe calls the little finger "pinky" and the thumb's first joints CMC/MCP/IP.
    enum_names = tuple(lm.name.lower().replace("_finger", "").replace("pinky", "little") for lm in mp.solutions.hands.HandLandmark)
    assert HAND21_NAMES == enum_names
    assert HAND21_NAMES[0] == "wrist" and HAND21_NAMES[4] == "thumb_tip" and HAND21_NAMES[20] == "little_tip"
    assert HAND21_NAMES[1:5] == ("thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip")
    assert HAND21_NAMES[5:9] == ("index_mcp", "index_pip", "index_dip", "index_tip")


def test_mp33_index() -> None:
    assert mp33_index("nose") == 0
    assert mp33_index("left_wrist") == 15 and mp33_index("right_foot_index") == 32
    with pytest.raises(ValueError, match="unknown mediapipe33"):
        mp33_index("left_tail")


def _body() -> BodyLandmarks:
    return BodyLandmarks(xy=np.zeros((33, 2)), visibility=np.ones(33), world=np.zeros((33, 3)))


def _hand(side: str = "left") -> HandLandmarks:
    return HandLandmarks(side=side, xy=np.zeros((21, 2)), world=np.zeros((21, 3)), score=0.9,
                         side_source="pose")


def test_shapes_are_checked_and_cast() -> None:
    body = _body()
    assert body.xy.dtype == np.float32 and body.presence is None
    assert body.point("nose").shape == (2,)
    with pytest.raises(ValueError, match=r"body xy must have shape \(33, 2\)"):
        BodyLandmarks(xy=np.zeros((17, 2)), visibility=np.ones(33), world=np.zeros((33, 3)))
    with pytest.raises(ValueError, match="hand world"):
        HandLandmarks(side="left", xy=np.zeros((21, 2)), world=np.zeros((20, 3)), score=1.0, side_source="pose")
    with pytest.raises(ValueError, match="side"):
        _hand("middle")


def test_person_detection_checks() -> None:
    p = PersonDetection(box=(1, 2, 3, 4), score=0.5, body=_body(), hands={"left": _hand("left")})
    assert p.box == (1.0, 2.0, 3.0, 4.0) and p.track_id is None
    with pytest.raises(ValueError, match="box"):
        PersonDetection(box=(3, 2, 1, 4), score=0.5, body=None)
    with pytest.raises(ValueError, match="holds a left hand"):
        PersonDetection(box=(0, 0, 1, 1), score=0.5, body=None, hands={"right": _hand("left")})
