"""Landmarks refined on the ROI of their own alignment points (MediaPipeConfig.refine_passes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hmrkit.io import load_image
from hmrkit.perception import BodyLandmarks, MediaPipeBackend, MediaPipeConfig, mp33_index
from hmrkit.perception.mediapipe_backend import _as_found
from hmrkit.perception.person_detector import ROI_SCALE, TOP_PER_TORSO, body_roi

LSP = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lspet_dev"
needs_lsp = pytest.mark.skipif(not LSP.is_dir(), reason=f"lspet_dev absent: {LSP} (needs ../shared/data)")
LSP12 = [mp33_index(n) for n in ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
                                 "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist")]


def standing(x_shift: float = 0.0) -> BodyLandmarks:
    """An upright body facing the camera: its left side at larger x, shoulders 100 px above the hips."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(80, 140, (33, 2))
    for side, dx in (("left", 10.0), ("right", -10.0)):
        xy[mp33_index(f"{side}_shoulder")] = (110 + dx, 100)
        xy[mp33_index(f"{side}_hip")] = (110 + dx, 200)
        xy[mp33_index(f"{side}_wrist")] = (110 + 6 * dx, 190)
        xy[mp33_index(f"{side}_ankle")] = (110 + 3 * dx, 380)
    xy[:, 0] += x_shift
    return BodyLandmarks(xy=xy, visibility=np.full(33, 0.9), world=rng.normal(size=(33, 3)))


def test_body_roi_is_centred_on_the_hips_and_reaches_above_the_head():
    roi = body_roi(standing())
    assert roi.centre.tolist() == pytest.approx([110.0, 200.0])
    assert roi.head.tolist() == pytest.approx([110.0, 200.0 - TOP_PER_TORSO * 100.0])
    assert roi.size == pytest.approx(2 * ROI_SCALE * TOP_PER_TORSO * 100.0)
    assert roi.rotation == pytest.approx(0.0)


def test_sides_exchanged_renames_the_points_and_twice_is_the_same_body():
    body = standing()
    other = body.sides_exchanged()
    assert other.point("left_wrist").tolist() == body.point("right_wrist").tolist()
    assert other.point("nose").tolist() == body.point("nose").tolist()
    again = other.sides_exchanged()
    assert np.array_equal(again.xy, body.xy) and np.array_equal(again.world, body.world)


def test_as_found_keeps_the_sides_found_and_drops_a_drift_or_a_doubt():
    found = standing()
    # the same person read the other way round, 5 px to the right: kept, with the sides as found
    reread = standing(5.0).sides_exchanged()
    kept = _as_found(reread, found)
    assert kept is not None
    assert np.allclose(kept.xy, found.xy + [5.0, 0.0])
    # moved 60 px (0.6 of the 100-px torso) on average: another reading, dropped
    assert _as_found(standing(60.0), found) is None
    # the model less sure of the refined landmarks: dropped
    doubtful = standing(5.0)
    doubtful = BodyLandmarks(xy=doubtful.xy, visibility=np.full(33, 0.8), world=doubtful.world)
    assert _as_found(doubtful, found) is None


def _limb_joints_right(name: str, passes: int) -> int:
    """How many of the labelled athlete's 12 limb joints lie within 0.2 torso lengths of the one body found."""
    d = np.load(LSP / "joints.npz")
    joints = d["joints"][[str(n) for n in d["image_names"]].index(name)]
    labelled, torso = joints[:12, 2] > 0, float(np.linalg.norm(joints[9, :2] - joints[2, :2]))
    with MediaPipeBackend(MediaPipeConfig(hands=False, hands_fallback=False, refine_passes=passes)) as be:
        bodies = [p.body for p in be.detect(load_image(LSP / "images" / name).rgb).people if p.body is not None]
    assert len(bodies) == 1
    return int((np.linalg.norm(bodies[0].xy[LSP12] - joints[:12, :2], axis=1)[labelled] < 0.2 * torso).sum())


@needs_lsp
@pytest.mark.parametrize("name", ["im00003.jpg", "im00034.jpg"])
def test_refining_on_the_landmarks_own_roi_puts_more_limb_joints_right(name):
    assert _limb_joints_right(name, 3) >= _limb_joints_right(name, 0) + 3


@needs_lsp
def test_a_refinement_that_loses_the_person_is_not_kept():
    """im00065 (found by the second look): the refined landmarks drift off the athlete, and the
    model is less sure of them; the landmarks found stay (12 limb joints right either way)."""
    assert _limb_joints_right("im00065.jpg", 3) == _limb_joints_right("im00065.jpg", 0) == 12
