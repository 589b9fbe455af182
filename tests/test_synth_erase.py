"""Real photos with a limb erased (hmrkit.synth.erase): what is erased, and nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_data
from hmrkit.body.limbs import LIMBS, levels
from hmrkit.perception.types import torso_length
from hmrkit.synth.erase import erase_limb, limb_mask


def standing_person() -> np.ndarray:
    """33 MediaPipe landmarks of a person facing the camera in a 400 x 400 image (left on the right)."""
    xy = np.tile([200.0, 60.0], (33, 1))  # face points at the head
    points = {11: (240, 100), 12: (160, 100), 13: (262, 160), 14: (138, 160), 15: (272, 218), 16: (128, 218),
              17: (280, 238), 18: (120, 238), 19: (274, 244), 20: (126, 244), 21: (266, 236), 22: (134, 236),
              23: (224, 220), 24: (176, 220), 25: (230, 300), 26: (170, 300), 27: (232, 368), 28: (168, 368),
              29: (236, 378), 30: (164, 378), 31: (248, 384), 32: (152, 384)}
    for k, p in points.items():
        xy[k] = p
    return xy


def covers(mask: np.ndarray, point) -> bool:
    x, y = np.round(point).astype(int)
    return bool(mask[y, x])


def midpoint(xy: np.ndarray, a: int, b: int) -> np.ndarray:
    return (xy[a] + xy[b]) / 2


def test_each_level_erases_from_its_cut_on_and_nothing_of_the_other_limbs():
    xy = standing_person()
    shape = (400, 400)
    hand = limb_mask(shape, xy, "left_arm", "hand")
    forearm = limb_mask(shape, xy, "left_arm", "forearm")
    arm = limb_mask(shape, xy, "left_arm", "arm")
    assert covers(hand, xy[15]) and covers(hand, xy[19]) and not covers(hand, xy[13])
    assert covers(forearm, midpoint(xy, 13, 15)) and covers(forearm, xy[19]) and not covers(forearm, midpoint(xy, 11, 13))
    assert covers(arm, midpoint(xy, 11, 13)) and covers(arm, xy[15])
    # each level removes what the more distal one does, and more
    assert (hand & forearm).sum() >= 0.98 * hand.sum() and (forearm & arm).sum() >= 0.98 * forearm.sum()
    assert hand.sum() < forearm.sum() < arm.sum()
    for mask in (hand, forearm, arm):  # the other arm, the legs and the head stay
        assert not any(covers(mask, xy[k]) for k in (0, 12, 14, 16, 23, 24, 25, 26, 27, 28))
    foot = limb_mask(shape, xy, "right_leg", "foot")
    lower = limb_mask(shape, xy, "right_leg", "lower_leg")
    leg = limb_mask(shape, xy, "right_leg", "leg")
    assert covers(foot, xy[28]) and covers(foot, xy[32]) and not covers(foot, xy[26])
    assert covers(lower, midpoint(xy, 26, 28)) and not covers(lower, midpoint(xy, 24, 26))
    assert covers(leg, midpoint(xy, 24, 26)) and not covers(leg, xy[25]) and not covers(leg, xy[27])
    # the bands scale with the person: twice as large, four times the pixels (within rasterisation)
    big = limb_mask((800, 800), 2 * xy, "right_leg", "lower_leg")
    assert 3.6 < big.sum() / lower.sum() < 4.4


def test_bad_requests_are_refused():
    xy = standing_person()
    with pytest.raises(ValueError, match="no level"):
        limb_mask((400, 400), xy, "left_arm", "foot")
    broken = xy.copy()
    broken[25] = np.nan
    with pytest.raises(ValueError, match="incomplete"):
        limb_mask((400, 400), broken, "left_leg", "leg")
    assert torso_length(xy) == pytest.approx(np.hypot(0, 120))


def test_erasing_a_real_photo_changes_the_masked_pixels_only():
    from hmrkit.io.images import load_image
    from hmrkit.perception import MediaPipeBackend, MediaPipeConfig

    rgb = load_image(shared_data("lspet_dev", "images", "im00003.jpg")).rgb
    with MediaPipeBackend(MediaPipeConfig(hands=False)) as backend:
        person = backend.detect(rgb).people[0]
    for limb in LIMBS:
        level = levels(limb)[1]
        edited, mask = erase_limb(rgb, person.body.xy, limb, level)
        assert edited.shape == rgb.shape and edited.dtype == rgb.dtype
        assert np.array_equal(edited[~mask], rgb[~mask])
        changed = np.abs(edited.astype(int) - rgb.astype(int)).sum(-1) > 0
        assert changed[mask].mean() > 0.5  # the fill differs from the limb it replaces
        again, _ = erase_limb(rgb, person.body.xy, limb, level)
        assert np.array_equal(again, edited)  # deterministic


def test_a_decoy_has_the_limbs_shape_beside_the_person_or_is_not_made():
    from hmrkit.synth.erase import decoy_mask

    xy = standing_person() + [100.0, 50.0]
    shape = (520, 600)
    body = np.zeros(shape, bool)
    for limb in LIMBS:
        body |= limb_mask(shape, xy, limb, levels(limb)[-1])
    for limb in LIMBS:
        for level in levels(limb):
            erased, decoy = limb_mask(shape, xy, limb, level), decoy_mask(shape, xy, limb, level)
            assert decoy is not None and decoy.sum() == erased.sum()  # the same shape, moved
            assert (decoy & body).sum() <= 0.02 * body.sum() and not (decoy & erased).any()
    crowded = (standing_person() - [200, 220]) * 2.2 + [200, 220]  # the person fills the photo
    assert decoy_mask((400, 400), crowded, "left_arm", "hand") is None


def test_an_edited_person_is_found_again_and_labelled():
    from hmrkit.io.images import load_image
    from hmrkit.perception import MediaPipeBackend, MediaPipeConfig
    from hmrkit.synth.erase import edit_person

    rgb = load_image(shared_data("lspet_dev", "images", "im00003.jpg")).rgb
    with MediaPipeBackend(MediaPipeConfig(hands=False)) as backend:
        def detect(image):
            return [p.body for p in backend.detect(image).people if p.body is not None]

        body = detect(rgb)[0]
        erased = edit_person(rgb, body, "right_leg", "lower_leg", detect)
        decoy = edit_person(rgb, body, "right_leg", "lower_leg", detect, decoy=True)
        nobody = edit_person(rgb, body, "right_leg", "lower_leg", lambda image: [])
    assert erased is not None and erased.limb_classes.tolist() == [0, 0, 0, 2]
    assert decoy is not None and decoy.limb_classes.tolist() == [0, 0, 0, 0]
    assert not np.array_equal(erased.rgb, decoy.rgb)
    centre = body.xy[[11, 12, 23, 24]].mean(0)
    assert np.linalg.norm(erased.body.xy[[11, 12, 23, 24]].mean(0) - centre) < 0.5 * torso_length(body.xy)  # the same person
    assert nobody is None  # perception lost them
