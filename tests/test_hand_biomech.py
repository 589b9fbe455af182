"""The 23-DoF biomechanical hand: mapping, inverse, limits, signs, mirror symmetry."""

import math

import pytest
import roma
import torch

from hmrkit.body.anny_keypoints import anny_keypoint_map
from hmrkit.body.anny_model import load_anny_hand
from hmrkit.body.conventions import HAND21
from hmrkit.hands.biomech import (
    ANGLE_NAMES,
    ANGLE_SPECS,
    NUM_ANGLES,
    angles_to_rotations,
    bounded_angles,
    clamp_angles,
    limit_violation,
    rotations_to_angles,
    unbounded_angles,
)
from hmrkit.hands.hand_model import load_biomech_hand, mirror_points, mirror_rotation
from hmrkit.hands.post_opt import project_pose
from hmrkit.hands.synth import random_rotations


@pytest.fixture(scope="module")
def left():
    return load_biomech_hand("left")


@pytest.fixture(scope="module")
def right():
    return load_biomech_hand("right")


def random_feasible(hand, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    lo, hi = hand.axes.lower, hand.axes.upper
    return lo + (hi - lo) * torch.rand(n, NUM_ANGLES, generator=g)


def test_angle_names_are_23_unique_and_named_like_robot_joints():
    assert len(ANGLE_NAMES) == 23 and len(set(ANGLE_NAMES)) == 23
    assert sum(n.startswith("thumb_") for n in ANGLE_NAMES) == 7
    for finger in ("index", "middle", "ring", "little"):
        assert [n for n in ANGLE_NAMES if n.startswith(finger)] == [
            f"{finger}_mcp_flexion", f"{finger}_mcp_abduction", f"{finger}_pip_flexion", f"{finger}_dip_flexion"]
    assert all(s.lower_deg < s.upper_deg for s in ANGLE_SPECS)


def test_limits_contain_the_rest_pose(left):
    assert bool((left.axes.lower < 0).all() and (left.axes.upper > 0).all())
    # anatomical = angle + rest angle
    spec = ANGLE_SPECS[ANGLE_NAMES.index("index_pip_flexion")]
    i = ANGLE_NAMES.index("index_pip_flexion")
    assert math.degrees(left.axes.upper[i] + left.axes.rest_angles[i]) == pytest.approx(spec.upper_deg, abs=1e-3)


def test_round_trip_recovers_angles(left):
    angles = random_feasible(left, 500)
    back = rotations_to_angles(angles_to_rotations(angles, left.axes), left.axes)
    assert torch.allclose(back, angles, atol=1e-4)


def test_single_angle_is_a_rotation_about_its_axis(left):
    """Independent check: a lone angle gives exactly that angle about that axis at its joint."""
    for i in range(NUM_ANGLES):
        a = torch.zeros(1, NUM_ANGLES)
        a[0, i] = 0.3
        rot = angles_to_rotations(a, left.axes)[0]
        moved = [j for j in range(15) if not torch.allclose(rot[j], torch.eye(3), atol=1e-6)]
        assert len(moved) == 1
        rotvec = roma.rotmat_to_rotvec(rot[moved[0]])
        assert torch.allclose(rotvec, 0.3 * left.axes.axes[i], atol=1e-5)


def test_zero_angles_are_the_anny_rest_hand(left):
    z = left(torch.zeros(1, NUM_ANGLES), with_vertices=True)
    anny = load_anny_hand("left")
    ref = anny(anny.identity_pose(1), keypoints=anny_keypoint_map(anny, HAND21, side="left"))
    wrist = ref.joints[:, :1]
    assert torch.allclose(z.joints, ref.keypoints - wrist, atol=1e-6)
    assert torch.allclose(z.vertices, ref.vertices - wrist, atol=1e-6)


def test_fast_phenotype_coefficients_equal_anny(left):
    """Values and gradients against Anny's own phenotype weighting (anchors included)."""
    from anny.models.phenotype import make_phenotype_anchors, phenotype_blendshape_weights

    from hmrkit.body.anny_model import anny_data

    data = anny_data()
    shapes = torch.rand(64, 6)
    shapes[:3] = torch.tensor([[0.0, 1.0, 0.5, 0.0, 1.0, 0.0], [0.5] * 6, [1 / 3, 2 / 3, 1.0, 0.5, 0.25, 0.75]])
    a, b = shapes.clone().requires_grad_(True), shapes.clone().requires_grad_(True)
    ours = left.model.blend_coefficients(a)
    weights = phenotype_blendshape_weights(b, list(left.model.shape_names), make_phenotype_anchors(torch.float32),
                                           data.phenotype_mask, extrapolate=False)
    reference = weights @ data.phenotype_projection
    assert torch.allclose(ours, reference, atol=1e-6)
    g = torch.randn(reference.shape)
    (ours * g).sum().backward()
    (reference * g).sum().backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-4)


def palmar(hand):
    rest = hand(torch.zeros(1, NUM_ANGLES)).joints[0]
    n = torch.linalg.cross(rest[5] - rest[0], rest[17] - rest[0])
    n = n / n.norm()
    return n if float(n @ (rest[8] - rest[5])) > 0 else -n


@pytest.mark.parametrize("finger,tip", [("index", 8), ("middle", 12), ("ring", 16), ("little", 20)])
def test_positive_flexion_bends_towards_the_palm_and_abduction_towards_the_thumb(left, right, finger, tip):
    for hand in (left, right):
        rest = hand(torch.zeros(1, NUM_ANGLES)).joints[0]
        a = torch.zeros(1, NUM_ANGLES)
        a[0, ANGLE_NAMES.index(f"{finger}_pip_flexion")] = 0.5
        moved = hand(a).joints[0]
        assert float((moved[tip] - rest[tip]) @ palmar(hand)) > 0.005
        b = torch.zeros(1, NUM_ANGLES)
        b[0, ANGLE_NAMES.index(f"{finger}_mcp_abduction")] = 0.2
        radial = rest[5] - rest[17]
        assert float((hand(b).joints[0, tip] - rest[tip]) @ radial) > 0


def test_thumb_signs(left):
    rest = left(torch.zeros(1, NUM_ANGLES)).joints[0]

    def tip_after(name, value=0.4):
        a = torch.zeros(1, NUM_ANGLES)
        a[0, ANGLE_NAMES.index(name)] = value
        return left(a).joints[0, 4]

    across = rest[17] - rest[2]  # towards the little finger
    assert float((tip_after("thumb_cmc_flexion") - rest[4]) @ across) > 0
    assert float((tip_after("thumb_cmc_abduction") - rest[4]) @ palmar(left)) > 0


def test_right_hand_mirrors_left(left, right):
    angles = random_feasible(left, 16, seed=1)
    shape = torch.rand(16, 6)
    rotation, translation = random_rotations(16), torch.randn(16, 3) * 0.1
    a = left(angles, shape, rotation, translation, with_vertices=True)
    b = right(angles, shape, mirror_rotation(rotation), mirror_points(translation), with_vertices=True)
    assert torch.allclose(mirror_points(a.joints), b.joints, atol=1e-5)
    # the right mesh is the left one mirrored, vertex for vertex up to order
    order = torch.cdist(mirror_points(left.model.template_vertices), right.model.template_vertices).argmin(1)
    assert torch.allclose(mirror_points(a.vertices), b.vertices[:, order], atol=1e-5)
    assert torch.allclose(right.axes.rest_angles, left.axes.rest_angles)


def test_bounded_parameterization_respects_limits(left):
    raw = torch.randn(100, NUM_ANGLES) * 10
    angles = bounded_angles(raw, left.axes)
    assert float(limit_violation(angles, left.axes).max()) == 0.0
    inside = random_feasible(left, 10)
    assert torch.allclose(bounded_angles(unbounded_angles(inside, left.axes), left.axes), inside, atol=1e-4)
    assert float(limit_violation(clamp_angles(torch.randn(10, NUM_ANGLES) * 5, left.axes), left.axes).max()) == 0.0


def test_projection_of_a_45_dof_pose(left):
    angles = random_feasible(left, 8, seed=2)
    exact = angles_to_rotations(angles, left.axes)
    # representable poses come back exactly
    assert torch.allclose(project_pose(exact, "left", iterations=0, hand=left), angles, atol=1e-4)
    # off-model twists: the position refinement never does worse than the analytic projection
    g = torch.Generator().manual_seed(3)
    twisted = exact @ roma.rotvec_to_rotmat(0.15 * torch.randn(8, 15, 3, generator=g))
    target = left.model(torch.cat([torch.eye(3).expand(8, 1, 3, 3), twisted], 1), keypoints=left.keypoint_map)
    target = target.keypoints - target.joints[:, :1]

    def error(a):
        return float((left(a).joints - target).norm(dim=-1).mean())

    analytic = project_pose(twisted, "left", iterations=0, hand=left)
    refined = project_pose(twisted, "left", iterations=10, hand=left)
    assert float(limit_violation(refined, left.axes).max()) == 0.0
    assert error(refined) < error(analytic)


def test_bad_inputs_raise(left):
    with pytest.raises(ValueError, match="angles must have shape"):
        angles_to_rotations(torch.zeros(2, 22), left.axes)
    with pytest.raises(ValueError, match="rotations must have shape"):
        rotations_to_angles(torch.zeros(2, 16, 3, 3), left.axes)
    with pytest.raises(ValueError, match="hand side"):
        load_biomech_hand("middle")
