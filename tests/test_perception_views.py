"""Other views of a photo (hmrkit.perception.views) and their use by the backend: second looks where nobody
was found, and the person detector on the photo turned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hmrkit.io import load_image
from hmrkit.perception import BodyLandmarks, MediaPipeBackend, MediaPipeConfig, mp33_index
from hmrkit.perception.views import retry_views

LSP = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lspet_dev"
needs_lsp = pytest.mark.skipif(not LSP.is_dir(), reason=f"lspet_dev absent: {LSP} (needs ../shared/data)")
# LSP's 12 limb joints in its own order, as MediaPipe landmarks
LSP12 = [mp33_index(n) for n in ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
                                 "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist")]


def test_each_view_maps_its_pixels_back_to_the_photo():
    """A marked pixel of the photo is found in every view where ``to_photo`` says it comes from."""
    h, w = 30, 50
    image = np.zeros((h, w, 3), np.uint8)
    marks = np.array([[3, 4], [40, 25], [49, 0]])
    for k, (x, y) in enumerate(marks):
        image[y, x] = (10 * (k + 1), 0, 255)
    for view in retry_views(image):
        for k, (x, y) in enumerate(marks):
            vy, vx = np.argwhere((view.image[..., 0] == 10 * (k + 1)) & (view.image[..., 2] == 255))[0]
            back = view.to_photo @ np.array([vx, vy, 1.0])
            assert back.tolist() == [x, y]
        # the world axes turn as the picture does (mirror included)
        assert np.allclose(view.axes[:2, :2], view.to_photo[:, :2]) and view.axes[2, 2] == 1.0
        assert view.mirrored == (np.linalg.det(view.to_photo[:, :2]) < 0)


def test_a_mirrored_view_swaps_the_persons_sides():
    view = retry_views(np.zeros((20, 40, 3), np.uint8))[1]
    assert view.mirrored
    xy = np.stack([np.arange(33.0), np.zeros(33)], axis=1)
    body = BodyLandmarks(xy=xy, visibility=np.linspace(0, 1, 33), world=np.zeros((33, 3)))
    back = view.body_back(body)
    left, right = mp33_index("left_wrist"), mp33_index("right_wrist")
    assert back.xy[left, 0] == 39 - right and back.xy[right, 0] == 39 - left  # mirrored in x, sides swapped
    assert back.visibility[left] == pytest.approx(body.visibility[right])
    assert back.xy[mp33_index("nose"), 0] == 39 - mp33_index("nose")
    mouth_left, mouth_right = mp33_index("mouth_left"), mp33_index("mouth_right")  # MediaPipe names these side last
    assert back.xy[mouth_left, 0] == 39 - mouth_right and back.xy[mouth_right, 0] == 39 - mouth_left
    twice = view.body_back(back)  # a mirror of a mirror is the photo again: the order is a true exchange
    np.testing.assert_array_equal(twice.xy, body.xy)
    np.testing.assert_array_equal(twice.visibility, body.visibility)


def _labelled(name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """lspet_dev's 12 limb joints of ``name`` (12, 2), which are labelled, and the torso length."""
    d = np.load(LSP / "joints.npz")
    joints = d["joints"][[str(n) for n in d["image_names"]].index(name)]
    return joints[:12, :2], joints[:12, 2] > 0, float(np.linalg.norm(joints[9, :2] - joints[2, :2]))


@needs_lsp
@pytest.mark.parametrize("name", ["im00038.jpg", "im00065.jpg"])
def test_second_look_finds_the_athlete_where_the_first_found_nobody(name):
    """On these lspet_dev photos the plain search finds nobody; a second look finds the labelled
    athlete: at least 10 of the labelled limb joints within 0.2 torso lengths of the labels."""
    joints, labelled, torso = _labelled(name)
    image = load_image(LSP / "images" / name).rgb
    with MediaPipeBackend(MediaPipeConfig(hands=False, hands_fallback=False, second_look=False, turned_search=False)) as plain:
        assert plain.detect(image).people == []
    with MediaPipeBackend(MediaPipeConfig(hands=False, hands_fallback=False)) as be:
        people = be.detect(image).people
    assert len(people) == 1
    err = np.linalg.norm(people[0].body.xy[LSP12] - joints, axis=1)[labelled]
    assert (err < 0.2 * torso).sum() >= min(10, labelled.sum())


def _without_and_with_turned_search(name: str) -> tuple[list, list]:
    """The people found on lspet_dev photo ``name`` with the turned search off, and on."""
    image = load_image(LSP / "images" / name).rgb
    found = []
    for turned in (False, True):
        with MediaPipeBackend(MediaPipeConfig(hands=False, hands_fallback=False, turned_search=turned)) as be:
            found.append(be.detect(image).people)
    return found[0], found[1]


def _nearest(people, joints: np.ndarray, labelled: np.ndarray, torso: float) -> float:
    """Mean distance (torso lengths) from the labels to the nearest person's landmarks."""
    return min((float(np.linalg.norm(p.body.xy[LSP12] - joints, axis=1)[labelled].mean()) / torso
                for p in people if p.body is not None), default=np.inf)


@needs_lsp
@pytest.mark.parametrize("name", ["im00710.jpg", "im00733.jpg"])
def test_turned_search_finds_the_athlete_in_the_air_beside_people_found_upright(name):
    """A high jumper over the bar and a free runner upside down: the upright search finds only the
    people standing by; the person detector on the turned photo adds the labelled athlete."""
    joints, labelled, torso = _labelled(name)
    upright, people = _without_and_with_turned_search(name)
    assert upright and _nearest(upright, joints, labelled, torso) > 1.0
    assert len(people) == len(upright) + 1
    assert _nearest(people, joints, labelled, torso) < 0.5


@needs_lsp
@pytest.mark.parametrize("name", ["im00050.jpg", "im00682.jpg", "im00800.jpg"])
def test_turned_search_does_not_report_a_person_found_upright_again(name):
    """On these photos the detector on a turned copy finds the athlete already found, with landmarks
    different enough that their boxes' IoU stays under 0.5: the same person is not added twice."""
    joints, labelled, torso = _labelled(name)
    upright, people = _without_and_with_turned_search(name)
    assert _nearest(upright, joints, labelled, torso) < 0.5  # found upright
    assert len(people) == len(upright)


@needs_lsp
@pytest.mark.parametrize("name", ["im00169.jpg", "im00885.jpg"])
def test_detector_windows_find_the_athlete_where_every_view_found_nobody(name):
    """On these lspet_dev photos neither the plain search nor any view of the second look finds
    anyone; the person detector on windows of the photo (or of its mirror image) finds the labelled
    athlete: the landmarks' mean distance to the labels under 0.75 torso lengths (the benchmarks
    count a person found under 1)."""
    joints, labelled, torso = _labelled(name)
    image = load_image(LSP / "images" / name).rgb
    with MediaPipeBackend(MediaPipeConfig(hands=False, hands_fallback=False, window_tries=0)) as before:
        assert before.detect(image).people == []
    with MediaPipeBackend(MediaPipeConfig(hands=False, hands_fallback=False)) as be:
        people = be.detect(image).people
    assert len(people) == 1
    assert _nearest(people, joints, labelled, torso) < 0.75


def test_detector_windows_cover_the_photo_at_each_scale():
    """``people_on_windows`` on a blank 600 x 300 photo finds no one, and asks the detector about one
    window of the long side and three each of 0.75 and 0.5 of it: three across, one down (the
    photo's 300-px height is no taller than those windows, which are centred on it)."""
    from hmrkit.perception.person_detector import PersonDetector

    detector = PersonDetector()
    asked = []
    people_in = detector.people_in
    detector.people_in = lambda image, window: asked.append(window) or people_in(image, window)
    try:
        assert detector.people_on_windows(np.zeros((300, 600, 3), np.uint8)) == []
    finally:
        detector.close()
    sides = sorted({round(w.width) for w in asked})
    assert sides == [300, 450, 600]
    assert len(asked) == 1 + 3 + 3
    assert all(w.y0 + w.height / 2 == 150 for w in asked)
    assert sorted(w.x0 for w in asked if round(w.width) == 300) == [0, 150, 300]
