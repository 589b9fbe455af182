"""Post-optimization: the bend-direction regularizer, error reduction, limits, known shape."""

import pytest
import torch

from hmrkit.hands.biomech import NUM_ANGLES, limit_violation
from hmrkit.hands.hand_model import HandFit, load_biomech_hand, mirror_points
from hmrkit.hands.post_opt import bend_direction_penalty, fit_hand
from hmrkit.hands.synth import SynthConfig, synth_batch

FINGER_POINTS = (5, 6, 7, 8)  # index MCP, PIP, DIP, tip


def hand_with_index(points):
    joints = torch.zeros(1, 21, 3)
    # the other fingers straight along y, so they add nothing
    for chain in ((9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20)):
        joints[0, list(chain), 1] = torch.tensor([0.0, 1.0, 2.0, 3.0])
    joints[0, list(FINGER_POINTS)] = torch.tensor(points, dtype=torch.float32)
    return joints


def test_bend_penalty_zero_for_a_correctly_bent_finger():
    curled = hand_with_index([[0, 0, 0], [0, 4, 0], [0, 6, 1], [0, 7, 2.5]])  # PIP and DIP bend the same way
    assert float(bend_direction_penalty(curled)[0]) == 0.0
    straight = hand_with_index([[0, 0, 0], [0, 4, 0], [0, 6, 0], [0, 8, 0]])
    assert float(bend_direction_penalty(straight)[0]) == 0.0


def test_bend_penalty_positive_for_hyperextended_or_sideways_bend():
    s_bend = hand_with_index([[0, 0, 0], [0, 4, 0], [0, 6, 1], [0, 8, 0.6]])  # DIP bends back
    # hand-computed eq. 3 with unit bones: (td x dp) . (dp x pm)
    td, dp, pm = torch.tensor([0, 2, -0.4]), torch.tensor([0, 2, 1.0]), torch.tensor([0, 4, 0.0])
    td, dp, pm = td / td.norm(), dp / dp.norm(), pm / pm.norm()
    expected = -float(torch.linalg.cross(td, dp) @ torch.linalg.cross(dp, pm))
    assert expected > 0
    assert float(bend_direction_penalty(s_bend)[0]) == pytest.approx(expected, rel=1e-5)
    sideways = hand_with_index([[0, 0, 0], [0, 4, 0], [0, 6, 1], [0.8, 7.5, 0.2]])  # hyper-extended and sideways
    assert float(bend_direction_penalty(sideways)[0]) > 0
    # the same hand at another scale: the penalty only sees directions
    assert float(bend_direction_penalty(s_bend * 0.01)[0]) == pytest.approx(expected, rel=1e-4)


@pytest.fixture(scope="module")
def data():
    hand = load_biomech_hand("left")
    batch = synth_batch(hand, 12, SynthConfig(clean_share=0.0), torch.Generator().manual_seed(5))
    return hand, batch


def perturbed_init(hand, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    angles = (batch.angles + 0.25 * torch.randn(batch.angles.shape, generator=g))
    angles = torch.maximum(torch.minimum(angles, hand.axes.upper), hand.axes.lower)
    shape = torch.full_like(batch.shape, 0.5)
    rotation, translation = hand.place(shape, batch.joints)
    return HandFit(angles, shape, rotation, translation, hand(angles, shape, rotation, translation).joints)


def mean_error(fit, target):
    return float((fit.joints - target).norm(dim=-1).mean())


def test_post_opt_reduces_the_error_and_respects_limits(data):
    hand, batch = data
    init = perturbed_init(hand, batch)
    fit = fit_hand(batch.joints, "left", init=init, iterations=20)
    assert mean_error(fit, batch.joints) < 0.7 * mean_error(init, batch.joints)
    assert float(limit_violation(fit.angles, hand.axes).max()) == 0.0
    assert bool(((fit.shape >= 0) & (fit.shape <= 1)).all())
    # the fitted joints are the hand's own keypoints for the returned parameters
    again = hand(fit.angles, fit.shape, fit.global_rotation, fit.translation).joints
    assert torch.allclose(again, fit.joints, atol=1e-6)


def test_lbfgs_option_also_reduces_the_error(data):
    from hmrkit.hands.post_opt import PostOptConfig

    hand, batch = data
    init = perturbed_init(hand, batch, seed=1)
    fit = fit_hand(batch.joints, "left", init=init, iterations=20, config=PostOptConfig(optimizer="lbfgs"))
    assert mean_error(fit, batch.joints) < mean_error(init, batch.joints)


def test_known_shape_is_kept(data):
    hand, batch = data
    init = perturbed_init(hand, batch, seed=2)
    fit = fit_hand(batch.joints, "left", init=init, known_shape=batch.shape, iterations=10)
    assert torch.equal(fit.shape, batch.shape)
    single = fit_hand(batch.joints[:2], "left", known_shape=batch.shape[0], iterations=2)
    assert torch.equal(single.shape, batch.shape[:1].expand(2, -1))


def test_fit_without_init_and_right_side(data):
    hand, batch = data
    right = fit_hand(mirror_points(batch.joints[:4]), "right", iterations=15, with_vertices=True)
    left = fit_hand(batch.joints[:4], "left", iterations=15)
    assert right.vertices is not None and right.vertices.shape[0] == 4
    # the same problem mirrored gives the mirrored answer
    assert torch.allclose(mirror_points(left.joints), right.joints, atol=2e-4)
    assert mean_error(left, batch.joints[:4]) < mean_error(fit_hand(batch.joints[:4], "left", iterations=0), batch.joints[:4])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"\(B, 21, 3\)"):
        fit_hand(torch.zeros(2, 20, 3), "left")
    with pytest.raises(ValueError, match="NaN"):
        fit_hand(torch.full((1, 21, 3), float("nan")), "left")
    with pytest.raises(ValueError, match="known_shape"):
        fit_hand(torch.zeros(1, 21, 3), "left", known_shape=torch.zeros(1, 5))
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        fit_hand(torch.zeros(1, 21, 3), "left", known_shape=torch.full((1, 6), 2.0))
    with pytest.raises(ValueError, match="hand side"):
        fit_hand(torch.zeros(1, 21, 3), "up")
    assert NUM_ANGLES == 23
