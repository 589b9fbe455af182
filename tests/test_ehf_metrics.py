"""The whole-body scores of benchmarks/bench_ehf.py (hmrkit.eval.whole_body) against independent computations."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hmrkit.eval.whole_body import (
    POINT_NAMES,
    anny_points,
    apply_similarity,
    nearest_surface_distance,
    project,
    similarity_align,
    vertex_spacing,
)


def test_similarity_recovers_a_known_transform_exactly():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(21, 3))
    rotation = Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix()
    target = 1.7 * points @ rotation.T + np.array([0.2, -0.5, 3.0])
    aligned, (scale, r, t) = similarity_align(points, target)
    np.testing.assert_allclose(aligned, target, atol=1e-9)
    assert scale == pytest.approx(1.7, abs=1e-9)
    np.testing.assert_allclose(r, rotation, atol=1e-9)
    # other points of the same body are carried by the same transform
    extra = rng.normal(size=(5, 3))
    np.testing.assert_allclose(apply_similarity(extra, (scale, r, t)), 1.7 * extra @ rotation.T + [0.2, -0.5, 3.0], atol=1e-9)


def test_similarity_fit_mask_ignores_outliers():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(21, 3))
    rotation = Rotation.from_rotvec([0.0, 0.4, 0.0]).as_matrix()
    target = 0.9 * points @ rotation.T
    target[-3:] += 5.0  # three points far off: left out of the fit, they stay off
    fit = np.ones(21, bool)
    fit[-3:] = False
    aligned, _ = similarity_align(points, target, fit)
    np.testing.assert_allclose(aligned[:-3], target[:-3], atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(aligned[-3:] - target[-3:], axis=1), np.sqrt(75.0), atol=1e-9)


def test_similarity_matches_a_closed_form_umeyama():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))  # no exact transform: the least-squares one
    mx, my = x.mean(0), y.mean(0)
    u, d, vt = np.linalg.svd((y - my).T @ (x - mx) / len(x))
    s = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ s @ vt
    c = np.trace(np.diag(d) @ s) / ((x - mx) ** 2).sum(1).mean()
    expected = c * (x - mx) @ r.T + my
    aligned, _ = similarity_align(x, y)
    np.testing.assert_allclose(aligned, expected, atol=1e-8)


def test_nearest_surface_distance_against_brute_force_and_a_plane():
    rng = np.random.default_rng(3)
    surface, points = rng.normal(size=(500, 3)), rng.normal(size=(40, 3))
    brute = np.linalg.norm(points[:, None] - surface[None], axis=2).min(1)
    np.testing.assert_allclose(nearest_surface_distance(points, surface), brute, atol=1e-12)
    # a plane z=0 sampled on a 1 cm grid: points above grid nodes are exactly their height away,
    # points above cell centres overestimate by the half-diagonal's Pythagorean share
    g = np.stack(np.meshgrid(np.arange(-10, 11) * 0.01, np.arange(-10, 11) * 0.01), -1).reshape(-1, 2)
    plane = np.c_[g, np.zeros(len(g))]
    assert vertex_spacing(plane) == pytest.approx(0.01)
    d = nearest_surface_distance(np.array([[0.0, 0.0, 0.02], [0.005, 0.005, 0.02]]), plane)
    np.testing.assert_allclose(d, [0.02, np.hypot(0.02, np.hypot(0.005, 0.005))])


def test_projection_is_the_pinhole():
    p = np.array([[0.1, -0.2, 2.0]])
    np.testing.assert_allclose(project(p, 1000.0, 900.0, 800.0, 600.0), [[850.0, 510.0]])


def test_anny_points_are_the_named_keypoints_and_the_hands():
    from hmrkit.body.anny_model import load_anny_body
    from hmrkit.body.anny_keypoints import anny_keypoint_library

    anny = anny_points()
    assert anny.weights.shape[0] == len(POINT_NAMES) == 21
    np.testing.assert_allclose(anny.weights.sum(1), 1.0, atol=1e-5)
    model = load_anny_body()
    rest = model.template_vertices.double().numpy()
    lib = anny_keypoint_library()
    tip = lib["left_hand:index_tip"].vertices[0][0]
    np.testing.assert_allclose(anny.points(rest)[POINT_NAMES.index("left_hand:index_tip")], rest[tip])
    # the hand vertices lie beyond the wrists (|x| past the wrist joints on the T-posed template)
    joints = model.template_joints.double().numpy()
    wrist_x = abs(joints[model.skeleton.index("left_wrist"), 0])
    hand_x = np.abs(rest[anny.hand_vertices, 0])
    assert np.median(hand_x) > wrist_x and 0.05 < len(anny.hand_vertices) / len(rest) < 0.5
