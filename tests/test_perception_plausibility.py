"""Plausibility screening of detected bodies (hmrkit.perception.plausibility) and the backend's
use of it: hand close-ups give a hand and no body, textures give nobody, real people stay,
bodies too small to be people go, and a reached ``max_people`` is said."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hmrkit.io import load_image
from hmrkit.perception import BodyLandmarks, HandLandmarks, MediaPipeBackend, MediaPipeConfig, PersonDetection, mp33_index
from hmrkit.perception.person_detector import PersonDetector, body_roi
from hmrkit.perception.plausibility import PersonEvidence, PlausibilityConfig, needs_flag, screen, share_inside
from hmrkit.perception.silhouette import Silhouette

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
HANDS = DATA / "hands_ge2019_dev" / "images"
DEMO = DATA / "demo_images"
needs_hands = pytest.mark.skipif(not HANDS.is_dir(), reason=f"hand crops absent: {HANDS} (needs ../shared/data)")
needs_demo = pytest.mark.skipif(not DEMO.is_dir(), reason=f"demo images absent: {DEMO} (needs ../shared/data)")


def _body(centre: tuple[float, float], height: float, visibility: float = 0.9) -> PersonDetection:
    """An upright stick person of ``height`` px: head on top, feet at the bottom (33 landmarks)."""
    rng = np.random.default_rng(0)
    cx, cy = centre
    # fractions of the height below the top for each landmark group, and a small spread sideways
    ys = np.full(33, 0.1)
    ys[11:13], ys[13:15], ys[15:23] = 0.25, 0.4, 0.5
    ys[23:25], ys[25:27], ys[27:33] = 0.55, 0.75, 0.95
    xs = rng.uniform(-0.2, 0.2, 33)
    xy = np.stack([cx + xs * height, cy - height / 2 + ys * height], axis=1)
    body = BodyLandmarks(xy=xy, visibility=np.full(33, visibility), world=np.zeros((33, 3)))
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    return PersonDetection(box=(x0, y0, x1, y1), score=visibility, body=body)


def _hand(box: tuple[float, float, float, float]) -> HandLandmarks:
    x0, y0, x1, y1 = box
    t = np.linspace(0, 1, 21)
    xy = np.stack([x0 + t * (x1 - x0), y0 + (1 - t) * (y1 - y0)], axis=1)
    return HandLandmarks(side="left", xy=xy, world=np.zeros((21, 3)), score=0.9, side_source="hand_model")


def test_share_inside_counts_points_in_the_grown_box():
    hand = _hand((0, 0, 100, 100))
    pts = np.array([[50, 50], [105, 50], [115, 50], [-20, -20]], float)
    assert share_inside(pts, hand.xy, margin=0.1) == pytest.approx(0.5)  # 105 is inside the 10 % margin, 115 not
    assert share_inside(pts, hand.xy, margin=0.0) == pytest.approx(0.25)
    assert share_inside(np.zeros((0, 2)), hand.xy, margin=0.1) == 0.0


def test_a_body_inside_a_hand_becomes_that_hand():
    body = _body((100, 100), 150)
    hand = _hand((20, 20, 180, 180))
    out = screen([body], [hand], 200, 200)
    assert out.people == [] and out.lone_hands == [hand]
    assert any("hand seen close" in n for n in out.notes)


def test_a_body_holding_a_hand_half_its_size_is_that_hand():
    """A hand and its forearm taken for a body: most landmarks outside the hand, but the body's
    box holds the hand's box and is under twice its size."""
    body = _body((100, 100), 180)
    hand = _hand((55, 40, 145, 160))  # 90 x 120 inside a body box of about 144 x 153
    assert screen([body], [hand], 200, 200).people == []
    assert screen([body], [_hand((70, 60, 130, 120))], 200, 200).people == [body]  # a quarter of its size: a person's hand


def test_a_person_beside_a_hand_stays_and_smaller_bodies_go_in_a_close_up():
    body = _body((300, 250), 350)  # a person to the right of a hand
    hand = _hand((0, 0, 120, 120))
    out = screen([body], [hand], 500, 500)
    assert out.people == [body] and out.lone_hands == [] and out.notes == ()
    # in a close-up (a hand covers one body), a "body" under twice the hand's size is not a person
    fake, strip = _body((60, 60), 100), _body((160, 400), 100)
    out = screen([fake, strip, body], [hand], 500, 500)
    assert out.people == [body] and out.lone_hands == [hand]


def test_a_body_too_small_goes_and_the_threshold_is_the_configs():
    tiny, person = _body((50, 50), 14), _body((200, 200), 200)
    assert screen([tiny, person], [], 400, 400).people == [person]
    assert screen([tiny, person], [], 400, 400, PlausibilityConfig(min_body_px=10)).people == [tiny, person]


def test_odd_limb_landmarks_alone_never_reject_a_person():
    """A missing limb is decided later (limb status): a body whose arm landmarks are unseen or
    flung far away, as MediaPipe guesses for an absent arm, stays."""
    person = _body((200, 200), 200)
    xy, vis = person.body.xy.copy(), person.body.visibility.copy()
    arm = [mp33_index(n) for n in ("left_elbow", "left_wrist", "left_pinky", "left_index", "left_thumb")]
    xy[arm] += [150.0, -120.0]
    vis[arm] = 0.05
    odd = PersonDetection(box=person.box, score=person.score,
                          body=BodyLandmarks(xy=xy, visibility=vis, world=person.body.world))
    assert screen([odd], [_hand((0, 0, 40, 40))], 400, 400).people == [odd]


def test_config_checks_its_values():
    with pytest.raises(ValueError, match="hand_share"):
        PlausibilityConfig(hand_share=0.0)
    with pytest.raises(ValueError, match="min_body_px"):
        PlausibilityConfig(min_body_px=-1)
    with pytest.raises(ValueError, match="min_silhouette"):
        PlausibilityConfig(min_flag=1.5)


def test_a_body_goes_only_when_both_other_models_doubt_it():
    cfg = PlausibilityConfig()
    people = [_body((100, 200), 200), _body((400, 200), 200), _body((700, 200), 200), _body((1000, 200), 200)]
    evidence = [PersonEvidence(0.9),  # the segmentation sees a person: the flag is not asked
                PersonEvidence(0.1, flag=0.95),  # no silhouette, but the pose model is sure
                PersonEvidence(0.1, flag=0.2),  # neither: not a person
                None]  # not judged
    out = screen(people, [], 1200, 400, cfg, evidence)
    assert [p.box for p in out.people] == [people[k].box for k in (0, 1, 3)]
    assert any("neither the person segmentation" in n for n in out.notes)
    # at the thresholds themselves a body stays
    assert PersonEvidence(cfg.min_silhouette).is_person(cfg) and PersonEvidence(0.0, cfg.min_flag).is_person(cfg)
    assert needs_flag(cfg.min_silhouette - 1e-6, cfg) and not needs_flag(cfg.min_silhouette, cfg)
    with pytest.raises(ValueError, match="person flag"):
        PersonEvidence(0.1).is_person(cfg)
    with pytest.raises(ValueError, match="evidence for 1 people"):
        screen(people, [], 1200, 400, cfg, evidence[:1])
    assert len(screen(people, [], 1200, 400, cfg, None).people) == 4  # no evidence: no such check


# ---------------------------------------------------------------------- real MediaPipe runs
@pytest.fixture(scope="module")
def backend():
    with MediaPipeBackend(MediaPipeConfig()) as be:
        yield be


@needs_hands
@pytest.mark.parametrize("name", ["00007.jpg", "00015.jpg", "00021.jpg", "00083.jpg"])
def test_hand_close_ups_give_a_hand_and_no_body(backend, name):
    """These real crops gave a whole body (and a second strip-body on 00083) before the screening."""
    found = backend.detect(load_image(HANDS / name).rgb)
    assert [p for p in found.people if p.body is not None] == []
    hands = [h for p in found.people for h in p.hands.values()]
    assert len(hands) == 1 and hands[0].side_source == "hand_model"
    x0, y0, x1, y1 = found.people[0].box
    assert (x1 - x0) * (y1 - y0) > 0.3 * 256 * 256  # the close-up's hand, not a speck


def test_textures_give_nobody(backend):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640]
    images = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8),
              np.repeat((((xx // 40 + yy // 40) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2),
              np.repeat(((np.sin(xx / 7.0) > 0) * 200 + 30).astype(np.uint8)[..., None], 3, axis=2)]
    for image in images:
        assert backend.detect(image).people == []


@needs_demo
def test_real_people_are_kept(backend):
    """Photos of people with their hands in view: nobody is screened out (hands/test3.jpg: a man
    gesturing in front of his face, most of his seen landmarks inside the hands' box)."""
    for name, least in (("hands/test5.jpg", 1), ("hands/test3.jpg", 1), ("zidane.jpg", 2), ("hand4whole_input.png", 1)):
        found = backend.detect(load_image(DEMO / name).rgb)
        assert sum(p.body is not None for p in found.people) >= least, name
        assert not any("hand seen close" in n for n in found.notes), name


@needs_demo
def test_a_reached_max_people_is_said():
    image = load_image(DEMO / "TennisLessonsHongKong.jpg").rgb
    with MediaPipeBackend(MediaPipeConfig(max_people=2, hands=False)) as be:
        found = be.detect(image)
    assert len(found.people) == 2
    assert any("max_people (2) reached" in n for n in found.notes)


@needs_demo
@pytest.mark.slow
def test_a_print_on_a_dress_is_not_a_person(backend):
    """pexels-photo-3556662: the face search took a dress print for a face and found a 6 x 14 px
    "person" under it (before the screening). Every body kept is larger than that."""
    found = backend.detect(load_image(DEMO / "pexels-photo-3556662.jpeg").rgb)
    bodies = [p for p in found.people if p.body is not None]
    assert len(bodies) >= 7
    assert all(max(p.box[2] - p.box[0], p.box[3] - p.box[1]) >= 32 for p in bodies)


@needs_hands
def test_without_any_hand_search_only_the_size_check_runs():
    """hands=False and hands_fallback=False: no hand model runs (callers that only want bodies pay
    nothing for the screening), so a hand close-up's body is kept as MediaPipe gave it."""
    image = load_image(HANDS / "00007.jpg").rgb
    with MediaPipeBackend(MediaPipeConfig(hands=False, hands_fallback=False)) as be:
        found = be.detect(image)
        assert be._hand_graphs == []
    assert any(p.body is not None for p in found.people)


def test_whole_image_hands_go_to_a_free_wrist_or_stand_alone():
    """Hands only the whole-image search found: near a free pose wrist -> that person's hand, side
    from the pose; outside every body's box -> a lone hand; on a body but near no free wrist ->
    dropped; the same as a hand already found -> ignored."""
    from dataclasses import replace

    from hmrkit.perception.mediapipe_backend import _claim_whole_image_hands

    person = _body((200, 250), 350)
    wrist = person.body.xy[mp33_index("left_wrist")]
    near = _hand((wrist[0] - 5, wrist[1] - 60, wrist[0] + 55, wrist[1]))
    near = replace(near, xy=near.xy - near.xy[0] + wrist + [3.0, 2.0], side="right", score=0.8)  # its wrist next to the pose's
    far = _hand((420, 20, 480, 80))
    on_body = _hand((190, 120, 210, 140))
    people, alone = _claim_whole_image_hands([person], [near, far, on_body], 500, 500)
    assert set(people[0].hands) == {"left"}
    hand = people[0].hands["left"]
    assert hand.side_source == "pose" and hand.score == pytest.approx(0.2)  # the model said right with 0.8
    assert alone == [far]
    people2, alone2 = _claim_whole_image_hands(people, [near], 500, 500)  # already there: nothing changes
    assert people2[0].hands == people[0].hands and alone2 == []


@needs_demo
def test_hands_the_wrist_crops_skip_are_found_on_the_whole_image():
    """hands/test5.jpg with its wrist crops counted too small: the whole-image search still finds
    the hands and puts them on the person's wrists, sides from the pose."""
    image = load_image(DEMO / "hands/test5.jpg").rgb
    with MediaPipeBackend(MediaPipeConfig(max_people=1, min_hand_crop_px=100_000, hands_fallback=False)) as be:
        people = be.detect(image).people
    (person,) = [p for p in people if p.body is not None]
    assert person.hands and all(h.side_source == "pose" for h in person.hands.values())
    for side, hand in person.hands.items():
        wrist = person.body.xy[mp33_index(f"{side}_wrist")]
        size = np.linalg.norm(hand.xy.max(axis=0) - hand.xy.min(axis=0))
        assert np.linalg.norm(hand.xy[0] - wrist) < 0.5 * size


# ---------------------------------------------------------------------- the second opinion, real models
def test_the_two_other_models_see_the_astronaut_as_a_person_and_not_a_texture():
    """The person segmentation and the landmark model's person flag on a real person (the bundled
    astronaut photo) and on the same body's landmarks over a checkerboard and over noise (the flag
    alone is fooled by the board: 0.83 -- hence both)."""
    rgb = load_image(Path(__file__).resolve().parents[1] / "assets" / "samples" / "astronaut.png").rgb
    with MediaPipeBackend(MediaPipeConfig(hands=False)) as be:
        person = be.detect(rgb).people[0]
    yy, xx = np.mgrid[0:rgb.shape[0], 0:rgb.shape[1]]
    board = np.repeat((((xx // 24 + yy // 24) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
    silhouette, detector = Silhouette(), PersonDetector()
    try:
        assert silhouette.coverage(rgb, person.body, 0.5) > 0.8
        assert silhouette.coverage(board, person.body, 0.5) < 0.2
        assert detector.person_flag(rgb, body_roi(person.body)) > 0.9
        noise = np.random.default_rng(0).integers(0, 255, rgb.shape, dtype=np.uint8)
        assert detector.person_flag(noise, body_roi(person.body)) < 0.1
        unseen = BodyLandmarks(xy=person.body.xy, visibility=np.zeros(33), world=person.body.world)
        assert silhouette.coverage(rgb, unseen, 0.5) == 0.0  # nothing seen: no evidence of a person
    finally:
        silhouette.close()
        detector.close()


def test_things_taken_for_people_go_and_people_stay():
    """Real photos: coco_mini_dev 000000284218 (cakes on a table; COCO labels no person, the pose
    model found one) gives nobody with the check and a body without it; the demo's people all stay."""
    from conftest import shared_data

    cakes = load_image(shared_data("coco_mini_dev", "images", "000000284218.jpg")).rgb
    with MediaPipeBackend(MediaPipeConfig(hands=False)) as be:
        found = be.detect(cakes)
    assert [p for p in found.people if p.body is not None] == []
    assert any("neither the person segmentation" in n for n in found.notes)
    off = PlausibilityConfig(min_silhouette=0.0)
    with MediaPipeBackend(MediaPipeConfig(hands=False, plausibility=off)) as be:
        assert [p for p in be.detect(cakes).people if p.body is not None] != []
        zidane = load_image(shared_data("demo_images", "zidane.jpg")).rgb
        before = len(be.detect(zidane).people)
    with MediaPipeBackend(MediaPipeConfig(hands=False)) as be:
        assert len(be.detect(zidane).people) == before >= 2
