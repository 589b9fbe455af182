"""MediaPipe backend on real photos from ../shared/data/demo_images (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hmrkit.io import ImageError, VideoReader, load_image
from hmrkit.perception import (
    MediaPipeBackend,
    MediaPipeConfig,
    Perception,
    PerceptionBackend,
    PersonDetection,
    mp33_index,
)

DEMO = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "demo_images"
needs_demo = pytest.mark.skipif(not DEMO.is_dir(), reason=f"demo images absent: {DEMO} (needs ../shared/data)")

NOSE, L_SH, R_SH = mp33_index("nose"), mp33_index("left_shoulder"), mp33_index("right_shoulder")
L_HIP, R_HIP = mp33_index("left_hip"), mp33_index("right_hip")
WRISTS = {"left": mp33_index("left_wrist"), "right": mp33_index("right_wrist")}

# Single, upright people facing the camera (their left is on the image's right).
FRONTAL = ["astronaut.png", "grace_hopper.jpg", "hands/test5.jpg", "hand4whole_input.png"]
PHOTOS_WITH_PEOPLE = FRONTAL + ["Leo_Messi.jpg", "bus.jpg", "camera.png", "pexels-anete-lusina-4793258.jpg"]


@pytest.fixture(scope="module")
def backend():
    with MediaPipeBackend(MediaPipeConfig(max_people=1)) as be:
        yield be


@pytest.fixture(scope="module")
def rgb():
    cache: dict[str, np.ndarray] = {}

    def get(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = load_image(DEMO / name).rgb
        return cache[name]

    return get


def _check_person(p: PersonDetection, w: int, h: int) -> None:
    body = p.body
    assert body is not None
    assert 0 <= p.box[0] < p.box[2] <= w and 0 <= p.box[1] < p.box[3] <= h
    assert 0.5 < p.score <= 1.0
    seen = body.visibility >= 0.5
    inside = (body.xy[:, 0] >= 0) & (body.xy[:, 0] < w) & (body.xy[:, 1] >= 0) & (body.xy[:, 1] < h)
    # the box holds every seen landmark that lies in the picture
    pts = body.xy[seen & inside]
    assert len(pts) >= 5
    assert (pts[:, 0] >= p.box[0] - 1).all() and (pts[:, 0] <= p.box[2] + 1).all()
    assert (pts[:, 1] >= p.box[1] - 1).all() and (pts[:, 1] <= p.box[3] + 1).all()
    # upright: nose above the shoulders, shoulders above the hips (image y grows downwards)
    assert body.xy[NOSE, 1] < body.xy[[L_SH, R_SH], 1].mean() < body.xy[[L_HIP, R_HIP], 1].mean()
    for side, i in WRISTS.items():
        if body.visibility[i] > 0.8:
            assert 0 <= body.xy[i, 0] < w and 0 <= body.xy[i, 1] < h, f"{side} wrist outside the image"
    # metric world points: hip-centred, human-sized, y down like the image
    hips = body.world[[L_HIP, R_HIP]]
    assert np.linalg.norm(hips.mean(axis=0)) < 0.05
    shoulder_width = np.linalg.norm(body.world[L_SH] - body.world[R_SH])
    assert 0.2 < shoulder_width < 0.6
    assert body.world[NOSE, 1] < body.world[[L_HIP, R_HIP], 1].mean() - 0.3


def test_backend_satisfies_protocol(backend) -> None:
    assert isinstance(backend, PerceptionBackend)


@needs_demo
@pytest.mark.parametrize("name", PHOTOS_WITH_PEOPLE)
def test_person_found_with_plausible_landmarks(backend, rgb, name: str) -> None:
    image = rgb(name)
    h, w = image.shape[:2]
    result = backend.detect(image)
    assert isinstance(result, Perception) and result.image_size == (w, h)
    assert len(result.people) == 1
    _check_person(result.people[0], w, h)


@needs_demo
@pytest.mark.parametrize("name", FRONTAL)
def test_frontal_people_have_their_left_on_the_image_right(backend, rgb, name: str) -> None:
    body = backend.detect(rgb(name)).people[0].body
    assert body.xy[L_SH, 0] > body.xy[R_SH, 0]
    assert body.world[L_SH, 0] > body.world[R_SH, 0]  # world x points to the image's right


@needs_demo
def test_landmarks_follow_the_image_when_it_is_shifted(backend, rgb) -> None:
    """Pixel coordinates must move with the picture (checks every crop-to-image mapping)."""
    image = rgb("hands/test5.jpg")
    dx, dy = 150, 90
    canvas = np.full((image.shape[0] + dy + 40, image.shape[1] + dx + 60, 3), 128, np.uint8)
    canvas[dy: dy + image.shape[0], dx: dx + image.shape[1]] = image
    a, b = backend.detect(image).people[0], backend.detect(canvas).people[0]
    size = np.linalg.norm(a.body.xy[L_SH] - a.body.xy[R_SH])
    core = [NOSE, L_SH, R_SH, L_HIP, R_HIP]
    assert np.abs(b.body.xy[core] - (a.body.xy[core] + [dx, dy])).max() < 0.08 * size
    assert set(a.hands) == set(b.hands) == {"left", "right"}
    for side in a.hands:
        gap = np.linalg.norm(b.hands[side].xy - (a.hands[side].xy + [dx, dy]), axis=1).mean()
        assert gap < 0.1 * size


@needs_demo
def test_large_photos_are_searched_halved_with_the_same_landmarks(backend, rgb) -> None:
    """A photo larger than ``body_search_px`` (1200 x 1799: an odd last row) is searched at
    600 x 899; landmarks and hands must map back onto the full photo's."""
    image = rgb("hands/test5.jpg")
    a = backend.detect(image).people[0]
    with MediaPipeBackend(MediaPipeConfig(max_people=1, body_search_px=1024)) as halved:
        b = halved.detect(image).people[0]
    size = np.linalg.norm(a.body.xy[L_SH] - a.body.xy[R_SH])
    core = [NOSE, L_SH, R_SH, L_HIP, R_HIP]
    assert np.abs(b.body.xy[core] - a.body.xy[core]).max() < 0.04 * size  # 0.023 measured
    assert set(a.hands) == set(b.hands) == {"left", "right"}
    for side in a.hands:  # wrist crops come from the full photo: 0.012 measured
        assert np.linalg.norm(b.hands[side].xy - a.hands[side].xy, axis=1).mean() < 0.025 * size


@needs_demo
def test_hands_on_a_hands_photo(backend, rgb) -> None:
    """test5: a woman holds both hands to her face; her right hand is on the image's left."""
    image = rgb("hands/test5.jpg")
    person = backend.detect(image).people[0]
    assert set(person.hands) == {"left", "right"}
    for side, hand in person.hands.items():
        assert hand.side == side and hand.side_source == "pose"
        assert hand.xy.shape == (21, 2) and hand.world.shape == (21, 3)
        # the hand's wrist sits near the pose's wrist for that side
        forearm = np.linalg.norm(person.body.xy[WRISTS[side]] - person.body.xy[WRISTS[side] - 2])
        assert np.linalg.norm(hand.xy[0] - person.body.xy[WRISTS[side]]) < 0.5 * forearm
        # metric hand: wrist to middle-finger knuckle 6-12 cm, fingertip spread < 30 cm
        assert 0.05 < np.linalg.norm(hand.world[9] - hand.world[0]) < 0.12
        assert np.ptp(hand.world, axis=0).max() < 0.3
        assert abs(hand.world.mean(axis=0)).max() < 0.05  # centred on the hand
        assert hand.crop is not None
    assert person.hands["right"].xy[:, 0].mean() < person.hands["left"].xy[:, 0].mean()
    # the box grew to hold the hands
    for hand in person.hands.values():
        assert (hand.xy[:, 0] >= person.box[0] - 1).all() and (hand.xy[:, 0] <= person.box[2] + 1).all()


@needs_demo
def test_lite_hand_models_find_the_same_hands(backend, rgb) -> None:
    """hand_model_complexity=0 (MediaPipe's lite palm and hand models, also in the wheel) on test5:
    both hands, each the same hand as the full models found (mean landmark gap under 15 % of its
    size, the backend's own test for one hand seen twice)."""
    image = rgb("hands/test5.jpg")
    full = backend.detect(image).people[0]
    with MediaPipeBackend(MediaPipeConfig(max_people=1, hand_model_complexity=0)) as be:
        lite = be.detect(image).people[0]
    assert set(lite.hands) == set(full.hands) == {"left", "right"}
    for side, hand in lite.hands.items():
        size = np.ptp(full.hands[side].xy, axis=0).max()
        gap = np.linalg.norm(hand.xy - full.hands[side].xy, axis=1).mean()
        assert 0 < gap < 0.15 * size  # a different model: close, not equal (9.7 % for the right hand here)
    with pytest.raises(ValueError, match="hand_model_complexity"):
        MediaPipeConfig(hand_model_complexity=2)


@needs_demo
def test_wrist_crops_below_the_minimum_size_are_not_searched(rgb) -> None:
    """The same photo with hands found at full size, none when its wrist crops count as too small
    (and the whole-image hand search of the screening is off: it would find them on its own)."""
    image = rgb("hands/test5.jpg")
    with MediaPipeBackend(MediaPipeConfig(max_people=1, min_hand_crop_px=100_000, hands_fallback=False,
                                          plausibility=None)) as be:
        (person,) = be.detect(image).people
    assert person.body is not None and person.hands == {}


@needs_demo
def test_hands_only_sides_from_the_hand_model_match_the_pose(rgb) -> None:
    """MediaPipe's handedness label is mirrored; after our swap it agrees with the pose."""
    image = rgb("hands/test5.jpg")
    with MediaPipeBackend(MediaPipeConfig(max_people=1)) as full, \
            MediaPipeBackend(MediaPipeConfig(hands_only=True)) as only:
        by_pose = full.detect(image).people[0].hands
        result = only.detect(image)
    assert len(result.people) == 1 and result.people[0].body is None
    hands = result.people[0].hands
    assert set(hands) == {"left", "right"}
    assert any("hands only" in n for n in result.notes)
    for side, hand in hands.items():
        assert hand.side_source == "hand_model"
        # same physical hand as the pose-guided search found for that side
        gap = np.linalg.norm(hand.xy - by_pose[side].xy, axis=1).mean()
        size = np.linalg.norm(hand.xy.max(axis=0) - hand.xy.min(axis=0))
        assert gap < 0.15 * size


@needs_demo
def test_mirrored_input_flips_hand_model_sides(rgb) -> None:
    image = rgb("hands/test5.jpg")
    with MediaPipeBackend(MediaPipeConfig(hands_only=True, mirrored_input=True)) as be:
        hands = be.detect(image).people[0].hands
    # taken as a selfie, the hand on the image's left is the person's LEFT hand
    assert hands["left"].xy[:, 0].mean() < hands["right"].xy[:, 0].mean()


def test_nobody_in_a_uniform_image(backend) -> None:
    for colour in (0, 128, 255):
        result = backend.detect(np.full((480, 640, 3), colour, np.uint8))
        assert result.people == [] and result.image_size == (640, 480)


def test_nobody_in_noise() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    with MediaPipeBackend() as be:
        assert be.detect(noise).people == []


@needs_demo
def test_two_people_side_by_side(rgb) -> None:
    """zidane.jpg: two men; MediaPipe alone finds neither, the face-seeded search both."""
    image = rgb("zidane.jpg")
    h, w = image.shape[:2]
    with MediaPipeBackend(MediaPipeConfig(max_people=4)) as be:
        people = be.detect(image).people
    assert len(people) == 2
    noses = sorted(p.body.xy[NOSE, 0] for p in people)
    assert noses[1] - noses[0] > 0.15 * w  # two different people, not one found twice
    for p in people:
        assert 0 <= p.box[0] < p.box[2] <= w and 0 <= p.box[1] < p.box[3] <= h
    plain = MediaPipeConfig(max_people=2, face_seeds=False, hands_fallback=False, second_look=False, turned_search=False)
    with MediaPipeBackend(plain) as be:
        assert be.detect(image).people == []  # the limit the face seeds (second looks, turned search) work around


@needs_demo
def test_several_people_in_a_group_photo(rgb) -> None:
    image = rgb("637168518940300000.jpg")
    with MediaPipeBackend(MediaPipeConfig(max_people=6, hands=False)) as be:
        people = be.detect(image).people
    assert len(people) == 6
    noses = np.array([p.body.xy[NOSE] for p in people])
    gaps = np.linalg.norm(noses[:, None] - noses[None], axis=-1) + np.eye(6) * 1e9
    assert gaps.min() > 30  # six different people


@needs_demo
def test_concurrent_searches_give_the_serial_answer(rgb) -> None:
    """Hand and face searches run on worker threads while bodies are searched: with one worker
    (every search in turn) and with three, the same people and hands come out."""
    image = rgb("TennisLessonsHongKong.jpg")
    answers = []
    for workers in (1, 3):
        with MediaPipeBackend(MediaPipeConfig(max_people=8, workers=workers)) as be:
            answers.append(be.detect(image).people)
    serial, concurrent = answers
    assert len(serial) == len(concurrent) >= 5
    assert sum(len(p.hands) for p in serial) >= 4
    for a, b in zip(serial, concurrent):
        np.testing.assert_allclose(a.body.xy, b.body.xy)
        assert a.hands.keys() == b.hands.keys()
        for side in a.hands:
            np.testing.assert_allclose(a.hands[side].xy, b.hands[side].xy)


@needs_demo
def test_video_mode_tracks_a_player() -> None:
    path = DEMO / "sample_video.mp4"
    noses = []
    with MediaPipeBackend(MediaPipeConfig(video=True, max_people=1)) as be, VideoReader(path) as video:
        for frame in video:
            people = be.detect(frame.rgb).people
            noses.append(people[0].body.xy[NOSE] if people else None)
            if people:
                assert people[0].track_id == 0
            if frame.index == 14:
                break
    found = [n for n in noses if n is not None]
    assert len(found) >= 12
    steps = np.linalg.norm(np.diff(np.array(found), axis=0), axis=1)
    assert np.median(steps) < 40  # one player followed, not jumps between players


@needs_demo
def test_video_wrists_without_a_hand_wait_before_the_next_search() -> None:
    """hand_retry_every=3: a tracked wrist whose crop found no hand is skipped for two frames."""
    searches = {}
    for every in (1, 3):
        with MediaPipeBackend(MediaPipeConfig(video=True, max_people=2, hand_retry_every=every)) as be, \
                VideoReader(DEMO / "sample_video.mp4") as video:
            search = be._hands_in
            count = [0]

            def counted(image, crop, search=search, count=count):
                count[0] += 1
                return search(image, crop)

            be._hands_in = counted
            for frame in video:
                be.detect(frame.rgb)
                if frame.index == 11:
                    break
        searches[every] = count[0]
    assert searches[1] >= 10
    assert searches[3] < 0.8 * searches[1]  # measured 22 vs 38


def test_bad_input_and_closed_backend() -> None:
    be = MediaPipeBackend()
    with pytest.raises(ImageError, match="uint8"):
        be.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ImageError, match="HxWx3"):
        be.detect(np.zeros((10, 10), np.uint8))
    be.close()
    with pytest.raises(RuntimeError, match="closed"):
        be.detect(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="max_people"):
        MediaPipeConfig(max_people=0)
    with pytest.raises(ValueError, match="workers"):
        MediaPipeConfig(workers=0)
    with pytest.raises(ValueError, match="hand_retry_every"):
        MediaPipeConfig(hand_retry_every=0)
