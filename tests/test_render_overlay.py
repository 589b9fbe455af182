"""Overlay blending, multi-person occlusion and colours, side view geometry."""

import numpy as np
import pytest
import trimesh

from hmrkit.render import Intrinsics, render_meshes, render_overlay, render_side_view

K = Intrinsics(fx=200.0, fy=200.0, cx=64.0, cy=48.0)
SIZE = (96, 128)


def box(extents, centre):
    b = trimesh.creation.box(extents=extents)
    return np.asarray(b.vertices + centre, dtype=np.float32), np.asarray(b.faces)


def extent(mask, axis):
    """Pixels spanned by the mask across columns (axis=0) or rows (axis=1)."""
    idx = np.flatnonzero(mask.any(axis))
    return idx[-1] - idx[0] + 1


def test_overlay_blends_only_covered_pixels():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, size=SIZE + (3,), dtype=np.uint8)
    v, f = box((0.4, 0.6, 0.3), (0.0, 0.0, 3.0))
    mesh_only = render_meshes([(v, f, (255, 0, 0))], K, SIZE)
    out = render_overlay(photo, [(v, f, (255, 0, 0))], K, alpha=0.7)
    assert out.dtype == np.uint8 and out.shape == photo.shape
    mask = mesh_only.mask
    np.testing.assert_array_equal(out[~mask], photo[~mask])
    expected = 0.7 * mesh_only.color[mask].astype(float) + 0.3 * photo[mask].astype(float)
    assert np.abs(out[mask].astype(float) - expected).max() <= 1.0
    # silhouette of the box front face: 0.4 x 0.6 m at 2.85 m
    assert mask.sum() == pytest.approx((200 * 0.4 / 2.85) * (200 * 0.6 / 2.85), rel=0.1)


def test_two_people_distinct_colours_and_nearer_hides_farther():
    near = box((0.3, 0.8, 0.2), (-0.1, 0.0, 2.5))
    far = box((0.3, 0.8, 0.2), (0.15, 0.0, 4.0))
    result = render_meshes([(*far, None), (*near, None)], K, SIZE)
    ids = result.mesh_index
    assert (ids == 0).sum() > 50 and (ids == 1).sum() > 50
    # where the near box's projected rectangle is, it wins even though it was listed second
    u = np.arange(SIZE[1])
    near_cols = (u > 200 * (-0.25) / 2.4 + 64 + 1) & (u < 200 * 0.05 / 2.4 + 64 - 1)
    far_cols = (u > 200 * 0.0 / 3.9 + 64 + 1) & (u < 200 * 0.3 / 3.9 + 64 - 1)
    rows = slice(40, 56)
    assert (ids[rows][:, near_cols & far_cols] == 1).all()
    # default palette: the two people get clearly different hues
    c0 = result.color[ids == 0].astype(float).mean(0)
    c1 = result.color[ids == 1].astype(float).mean(0)
    assert np.abs(c0 / c0.sum() - c1 / c1.sum()).max() > 0.1


def test_side_view_turns_scene_about_vertical_axis():
    # a wide, thin slab: 0.8 m wide (x), 0.1 m deep (z); turned 90 deg it looks 0.1 m wide
    v, f = box((0.8, 0.5, 0.1), (0.0, 0.0, 3.0))
    front = render_meshes([(v, f, None)], K, SIZE).mask
    side = render_side_view([(v, f, None)], K, SIZE, background=(10, 20, 30))
    side_mask = (side != [10, 20, 30]).any(-1)
    assert extent(front, axis=0) == pytest.approx(200 * 0.8 / 2.95, abs=2)
    assert extent(side_mask, axis=0) == pytest.approx(200 * 0.1 / 2.6, abs=2)
    assert extent(side_mask, axis=1) == pytest.approx(200 * 0.5 / 2.6, abs=2)  # nearest edge at 2.6 m
    # rotation about the common centroid: an off-centre pair keeps its centre of mass on screen
    a = box((0.2, 0.5, 0.2), (-0.5, 0.0, 3.0))
    b = box((0.2, 0.5, 0.2), (0.5, 0.0, 3.0))
    side2 = render_side_view([(*a, None), (*b, None)], K, SIZE)
    cols = np.flatnonzero((side2 != 255).any(-1).any(0))
    assert abs(cols.mean() - K.cx) < 3


def test_overlay_rejects_bad_image():
    v, f = box((0.3, 0.3, 0.3), (0, 0, 3))
    with pytest.raises(ValueError, match="RGB uint8"):
        render_overlay(np.zeros(SIZE, np.uint8), [(v, f, None)], K)
    with pytest.raises(ValueError, match="RGB uint8"):
        render_overlay(np.zeros(SIZE + (3,), np.float32), [(v, f, None)], K)
