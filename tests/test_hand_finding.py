"""Hand finding around pose wrists (hmrkit.perception.mediapipe_backend): the claims' assignment, and the
second look on real whole-body photos where two hands touch (ehf_dev, skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hmrkit.io import load_image
from hmrkit.perception import MediaPipeBackend, MediaPipeConfig
from hmrkit.perception.geometry import Crop
from hmrkit.perception.mediapipe_backend import _assign, _hand_candidates, _HandHit, _shrunk, _widened
from hmrkit.perception.types import HandLandmarks

EHF = Path(__file__).resolve().parents[2] / "shared" / "data" / "ehf_dev"
needs_ehf = pytest.mark.skipif(not EHF.is_dir(), reason=f"ehf_dev absent: {EHF} (needs ../shared/data)")
TIPS = [4, 8, 12, 16, 20]


def _hand(x: float, y: float, side="left", size=40.0) -> HandLandmarks:
    xy = np.array([x, y]) + np.random.default_rng(int(x + 7 * y)).uniform(0, size, (21, 2))
    xy[0] = (x, y)
    return HandLandmarks(side=side, xy=xy, world=np.zeros((21, 3)), score=0.9, side_source="pose")


def _hit(x: float, y: float, label="left") -> _HandHit:
    h = _hand(x, y)
    return _HandHit(xy=h.xy, world=h.world, label_side=label, label_score=0.9)


def test_candidates_within_a_third_of_the_crop_with_the_label_penalty():
    hits = [_hit(100, 100, "left"), _hit(130, 100, "right"), _hit(200, 100, "left")]
    got = _hand_candidates(hits, np.array([100.0, 100.0]), "left", crop_side=250.0)
    assert [round(c, 3) for _, c in got] == [0.0, round(30 / 250 + 0.15, 3)]  # the third lies 0.4 crop sides away


def test_a_wrist_that_loses_its_best_hand_gets_its_next_candidate():
    """Both wrists' best claim is hand A (seen in both crops); the right wrist, farther from it,
    takes hand B, its second candidate, instead of going without (the old rule kept one claim per wrist)."""
    a, b = _hand(100, 100), _hand(300, 100)
    claims = [(0.05, 0, a), (0.10, 0, b),  # left wrist: A then B
              (0.08, 0, HandLandmarks("right", a.xy, a.world, 0.9, "pose")), (0.12, 0, HandLandmarks("right", b.xy, b.world, 0.9, "pose"))]
    kept = _assign(claims)
    assert [(k, h.side, h.xy[0, 0]) for k, h in kept] == [(0, "left", 100.0), (0, "right", 300.0)]
    # a hand already kept blocks the same hand; a wrist already served takes no other
    assert _assign([(0.0, 0, HandLandmarks("right", a.xy + 1.0, a.world, 0.9, "pose"))], kept) == kept


def test_crop_shrink_and_hull_widening():
    crop = _shrunk(Crop(10.0, 20.0, 200.0, 200.0), 0.5)
    assert (crop.x0, crop.y0, crop.width, crop.height) == (60.0, 70.0, 100.0, 100.0)
    square = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    wide = _widened(square, 0.1)
    # each corner moves 0.1 x the diagonal (the points' extent) straight away from the centre
    np.testing.assert_allclose(np.linalg.norm(wide - square, axis=1), 0.1 * np.hypot(10, 10))
    np.testing.assert_allclose(wide.mean(axis=0), square.mean(axis=0))


def test_second_look_factors_are_checked():
    with pytest.raises(ValueError, match="second_hand_look"):
        MediaPipeConfig(second_hand_look=((1.5, True),))


@needs_ehf
@pytest.mark.slow
@pytest.mark.parametrize("photo, without", [
    ("06", ()),  # the right hand lies on the left one: found once the left one is painted over
    ("03", ((0.75, True), (0.5, True))),  # the right hand mostly under the left: paint hides it too, found unpainted
])
def test_touching_hands_are_found_by_the_second_look(photo: str, without: tuple):
    """ehf_dev photos where both wrists' crops find only the left hand: the second look (default)
    finds the right one too, which the looks in ``without`` miss. Sides judged by the true
    (SMPL-X) fingertips."""
    gt = np.load(EHF / "annotations.npz")
    k = int(photo) - 1
    image = load_image(EHF / "images" / f"{photo}_img.jpg").rgb
    found = {}
    for looks in (without, MediaPipeConfig().second_hand_look):
        with MediaPipeBackend(MediaPipeConfig(second_hand_look=looks)) as backend:
            person = next(p for p in backend.detect(image).people if p.body is not None)
        found[looks] = person.hands
    assert set(found[without]) == {"left"}
    hands = found[MediaPipeConfig().second_hand_look]
    assert set(hands) == {"left", "right"}
    for side, other in (("left", "right"), ("right", "left")):
        tips = hands[side].xy[TIPS]
        own = np.linalg.norm(tips - gt[f"{side}_tips2d_px"][k], axis=1).mean()
        assert own < 30.0 and own < np.linalg.norm(tips - gt[f"{other}_tips2d_px"][k], axis=1).mean()
