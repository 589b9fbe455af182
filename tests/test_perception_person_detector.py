"""BlazePose's person detector and the ROI landmark model run directly (hmrkit.perception.person_detector)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hmrkit.io import load_image
from hmrkit.perception.geometry import Crop
from hmrkit.perception.person_detector import ROI_SCALE, PersonDetector, roi_from_points

DEMO = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "demo_images"
needs_demo = pytest.mark.skipif(not DEMO.is_dir(), reason=f"demo images absent: {DEMO} (needs ../shared/data)")


@pytest.mark.parametrize("top, rotation", [((100, 0), 0.0), ((200, 100), math.pi / 2), ((0, 100), -math.pi / 2),
                                           ((100, 200), -math.pi)])
def test_roi_from_points_follows_mediapipes_alignment(top, rotation):
    """Upright (head above the hips) is no rotation; the ROI is 2 x 1.25 x the hip-to-head distance."""
    centre, size, rot = roi_from_points(np.array([100.0, 100.0]), np.array(top, float))
    assert centre.tolist() == [100.0, 100.0]
    assert size == pytest.approx(2 * ROI_SCALE * 100.0)
    assert rot == pytest.approx(rotation)
    assert -math.pi <= rot < math.pi


@needs_demo
def test_detector_finds_several_people_in_one_window_and_landmarks_follow_each_roi():
    """The tennis team's left third (five people in the front rows, counted by eye): one detector
    call finds several, and the landmark model put on each ROI gives that person (the nose near the
    detection's head point), so different ROIs give different people."""
    image = load_image(DEMO / "TennisLessonsHongKong.jpg").rgb
    detector = PersonDetector()
    try:
        rois = detector.people_in(image, Crop(0.0, 0.0, 646.0, 646.0))
        assert len(rois) >= 4
        noses, near = [], 0
        for roi in rois:
            assert 0.5 <= roi.score <= 1.0
            body = detector.landmarks(image, roi)
            assert body is not None
            assert body.world.shape == (33, 3) and ((body.visibility >= 0) & (body.visibility <= 1)).all()
            near += np.linalg.norm(body.xy[0] - roi.head) < 0.25 * roi.size  # the nose under the head point
            noses.append(body.xy[0])
        # a weak second detection of one child (score 0.68) gives the neighbour's landmarks: one such at most
        assert near >= len(rois) - 1
        noses = np.array(noses)
        gaps = np.linalg.norm(noses[:, None] - noses[None], axis=-1)[np.triu_indices(len(noses), 1)]
        assert (gaps > 30).sum() >= len(gaps) - 1  # the same person twice: one pair at most
    finally:
        detector.close()


@needs_demo
@pytest.mark.slow
def test_face_detector_adds_people_the_pose_windows_miss():
    """pexels-photo-3556662 (nine children in a row): with the person detector under the faces the
    pose windows miss, more children are found, each a different one (noses apart). The face ROIs
    (on by default) are off here: they find the same children without the detector."""
    from hmrkit.perception import MediaPipeBackend, MediaPipeConfig, mp33_index

    image = load_image(DEMO / "pexels-photo-3556662.jpeg").rgb
    counts = {}
    for on in (False, True):
        with MediaPipeBackend(MediaPipeConfig(hands=False, face_detector=on, face_rois=())) as be:
            bodies = [p.body for p in be.detect(image).people if p.body is not None]
        counts[on] = len(bodies)
        noses = np.array([b.xy[mp33_index("nose")] for b in bodies])
        gaps = np.linalg.norm(noses[:, None] - noses[None], axis=-1)[np.triu_indices(len(noses), 1)]
        assert (gaps > 50).all()
    assert counts[True] > counts[False]
