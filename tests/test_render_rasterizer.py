"""Rasterizer against independent geometry: ray casting per pixel centre, analytic areas."""

import numpy as np
import pytest
import trimesh
from matplotlib.path import Path as MplPath

from hmrkit.geometry.cameras import PerspectiveCamera
from hmrkit.render import Intrinsics, rasterize, render_meshes, vertex_normals

K = Intrinsics(fx=100.0, fy=110.0, cx=31.3, cy=29.7)
H, W = 64, 72


def pixel_rays(k: Intrinsics, h: int, w: int) -> np.ndarray:
    """(h, w, 3) ray directions with z = 1 through every pixel centre."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([(u - k.cx) / k.fx, (v - k.cy) / k.fy, np.ones_like(u)], axis=-1)


def ray_cast(tri: np.ndarray, k: Intrinsics, h: int, w: int, near: float = 0.0):
    """Per pixel: depth where the ray hits triangle ``tri`` (3, 3) at z >= near, and how far
    (in barycentric units) the hit is from the triangle's border (negative = outside)."""
    d = pixel_rays(k, h, w)
    a, b, c = tri
    normal = np.cross(b - a, c - a)
    t = (normal @ a) / (d @ normal)  # ray-plane intersection, z = t since d_z = 1
    p = d * t[..., None]
    # barycentrics of p in 3D by solving p = a + s (b - a) + r (c - a) in least squares
    m = np.stack([b - a, c - a], axis=1)
    sr = (p - a) @ np.linalg.pinv(m).T
    bary = np.concatenate([1 - sr.sum(-1, keepdims=True), sr], axis=-1)
    margin = np.minimum(bary.min(-1), t - near)
    return t, margin


def test_triangle_mask_and_depth_match_ray_casting():
    tri = np.array([[-0.31, -0.22, 2.0], [0.27, -0.05, 2.6], [-0.05, 0.33, 1.7]])
    frags = rasterize(tri, [[0, 1, 2]], K, (H, W))
    t, margin = ray_cast(tri, K, H, W)
    sure = np.abs(margin) > 1e-6
    assert sure.mean() > 0.99
    np.testing.assert_array_equal(frags.mask[sure], (margin > 0)[sure])
    inside = frags.mask
    np.testing.assert_allclose(frags.depth[inside], t[inside], rtol=1e-5)
    assert (frags.depth[~inside] == 0).all()
    # perspective-correct barycentrics reproduce the 3D hit point
    hit = np.einsum("hwk,kc->hwc", frags.bary.astype(np.float64), tri)
    np.testing.assert_allclose(hit[inside], (pixel_rays(K, H, W) * t[..., None])[inside], atol=1e-5)


def test_coverage_matches_projected_polygon_point_test():
    """Independent 2D test: matplotlib's point-in-polygon on the projected vertices."""
    tri = np.array([[0.4, -0.2, 3.0], [-0.5, 0.1, 3.5], [0.1, 0.5, 2.5]])
    uv = np.stack([K.fx * tri[:, 0] / tri[:, 2] + K.cx, K.fy * tri[:, 1] / tri[:, 2] + K.cy], axis=1)
    v, u = np.mgrid[0:H, 0:W]
    centres = np.stack([u.ravel(), v.ravel()], axis=1).astype(float)
    expected = MplPath(uv).contains_points(centres).reshape(H, W)
    got = rasterize(tri, [[0, 1, 2]], K, (H, W)).mask
    assert (got != expected).sum() <= 2  # only pixel centres within float noise of an edge
    (ax, ay), (bx, by) = uv[1] - uv[0], uv[2] - uv[0]
    area = 0.5 * abs(ax * by - ay * bx)
    perimeter = np.linalg.norm(uv - np.roll(uv, 1, axis=0), axis=1).sum()
    assert abs(got.sum() - area) < perimeter


def test_fronto_parallel_square_covers_exact_pixel_block():
    k = Intrinsics(100.0, 100.0, 32.0, 32.0)
    z = 2.0
    # edges at u = 21.75 .. 41.75 and v = 10.25 .. 30.25 (never on a pixel centre)
    x0, x1 = (21.75 - 32) * z / 100, (41.75 - 32) * z / 100
    y0, y1 = (10.25 - 32) * z / 100, (30.25 - 32) * z / 100
    verts = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])
    frags = rasterize(verts, [[0, 1, 2], [0, 2, 3]], k, (64, 64))
    expected = np.zeros((64, 64), bool)
    expected[11:31, 22:42] = True
    np.testing.assert_array_equal(frags.mask, expected)
    np.testing.assert_allclose(frags.depth[expected], z, rtol=1e-6)


@pytest.mark.parametrize("near_first", [True, False])
def test_occlusion_independent_of_face_order(near_first):
    near_tri = np.array([[-0.4, -0.4, 2.0], [0.4, -0.4, 2.0], [0.0, 0.4, 2.0]])
    far_tri = near_tri * [1.5, 1.5, 1.0] + [0.1, 0.0, 1.0]
    tris = [near_tri, far_tri] if near_first else [far_tri, near_tri]
    frags = rasterize(np.concatenate(tris), [[0, 1, 2], [3, 4, 5]], K, (H, W))
    t_near, m_near = ray_cast(near_tri, K, H, W)
    t_far, m_far = ray_cast(far_tri, K, H, W)
    both = (m_near > 1e-6) & (m_far > 1e-6)
    only_far = (m_near < -1e-6) & (m_far > 1e-6)
    assert both.sum() > 100 and only_far.sum() > 100
    near_id = 0 if near_first else 1
    assert (frags.face_index[both] == near_id).all()
    np.testing.assert_allclose(frags.depth[both], 2.0, rtol=1e-6)
    assert (frags.face_index[only_far] == 1 - near_id).all()


def test_interpenetrating_triangles_resolved_per_pixel():
    """Each triangle is in front on one side of their crossing line: painter's order fails."""
    a = np.array([[-0.6, -0.5, 1.5], [0.6, -0.5, 2.5], [0.0, 0.5, 2.0]])  # depth grows with x
    b = np.array([[-0.6, -0.5, 2.5], [0.6, -0.5, 1.5], [0.0, 0.5, 2.0]])  # depth falls with x
    frags = rasterize(np.concatenate([a, b]), [[0, 1, 2], [3, 4, 5]], K, (H, W))
    ta, ma = ray_cast(a, K, H, W)
    tb, mb = ray_cast(b, K, H, W)
    both = (ma > 1e-4) & (mb > 1e-4) & (np.abs(ta - tb) > 1e-3)
    expected = np.where(ta < tb, 0, 1)
    assert (expected[both] == 0).sum() > 50 and (expected[both] == 1).sum() > 50
    np.testing.assert_array_equal(frags.face_index[both], expected[both])
    np.testing.assert_allclose(frags.depth[both], np.minimum(ta, tb)[both], rtol=1e-5)


def test_empty_inputs_draw_nothing():
    for verts, faces in [(np.zeros((0, 3)), np.zeros((0, 3), int)), (np.ones((5, 3)), np.zeros((0, 3), int))]:
        frags = rasterize(verts, faces, K, (H, W))
        assert not frags.mask.any() and (frags.depth == 0).all()
    result = render_meshes([], K, (H, W), background=(7, 8, 9))
    assert (result.color == [7, 8, 9]).all() and not result.mask.any()


def test_triangle_behind_camera_draws_nothing():
    tri = np.array([[-0.3, -0.3, -2.0], [0.3, -0.3, -2.0], [0.0, 0.3, -2.0]])
    assert not rasterize(tri, [[0, 1, 2]], K, (H, W)).mask.any()
    # all three vertices between camera and near plane
    assert not rasterize(tri * [1, 1, -0.001], [[0, 1, 2]], K, (H, W), near=0.01).mask.any()


@pytest.mark.parametrize("n_behind", [1, 2])
def test_near_plane_clipping_keeps_the_front_part(n_behind):
    near = 1.0
    tri = np.array([[-0.6, -0.5, 2.5], [0.7, -0.3, 0.4 if n_behind == 2 else 2.2], [0.0, 0.6, 0.3]])
    frags = rasterize(tri, [[0, 1, 2]], K, (H, W), near=near)
    t, margin = ray_cast(tri, K, H, W, near=near)
    sure = np.abs(margin) > 1e-4
    assert (margin > 1e-4).sum() > 100 and (margin[sure] < 0).sum() > 100
    np.testing.assert_array_equal(frags.mask[sure], (margin > 0)[sure])
    assert (frags.depth[frags.mask] >= near * (1 - 1e-6)).all()
    np.testing.assert_allclose(frags.depth[frags.mask], t[frags.mask], rtol=1e-5)
    b = frags.bary[frags.mask]
    assert (b > -1e-5).all() and np.allclose(b.sum(-1), 1, atol=1e-5)


def test_backface_culling():
    front = np.array([[-0.3, -0.3, 2.0], [0.0, 0.3, 2.0], [0.3, -0.3, 2.0]])  # normal towards camera
    assert np.cross(front[1] - front[0], front[2] - front[0])[2] < 0
    assert rasterize(front, [[0, 1, 2]], K, (H, W), cull_backfaces=True).mask.any()
    assert not rasterize(front, [[0, 2, 1]], K, (H, W), cull_backfaces=True).mask.any()
    assert rasterize(front, [[0, 2, 1]], K, (H, W)).mask.any()
    # closed, consistently wound mesh: culling changes nothing visible
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    v = sphere.vertices + [0.1, 0.0, 3.0]
    full = rasterize(v, sphere.faces, K, (H, W))
    culled = rasterize(v, sphere.faces, K, (H, W), cull_backfaces=True)
    np.testing.assert_array_equal(full.mask, culled.mask)
    np.testing.assert_array_equal(full.face_index, culled.face_index)


def test_sphere_silhouette_area_and_centre_depth():
    k = Intrinsics(300.0, 300.0, 80.0, 80.0)
    radius, dist = 0.5, 3.0
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    result = render_meshes([(sphere.vertices + [0, 0, dist], sphere.faces, (1.0, 0.5, 0.2))], k, (160, 160))
    r_img = k.fx * radius / np.sqrt(dist**2 - radius**2)  # silhouette cone of a centred sphere
    assert result.mask.sum() == pytest.approx(np.pi * r_img**2, rel=0.02)
    assert result.depth[80, 80] == pytest.approx(dist - radius, abs=2e-3)
    # headlight Lambert: brightest at the centre, red > green > blue as the colour says
    centre = result.color[80, 80].astype(int)
    assert centre[0] > centre[1] > centre[2]
    assert centre[0] >= result.color[result.mask][:, 0].max() - 1


def test_zero_area_faces_render_without_nan():
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    v = np.asarray(sphere.vertices + [0, 0, 3.0], dtype=np.float32)
    f = np.asarray(sphere.faces)
    v[f[:40].ravel()] = v[f[0, 0]]  # collapse a patch onto one point, like an amputated limb
    f = np.concatenate([f, [[0, 0, 1], [2, 2, 2]]])
    normals = vertex_normals(v, f)
    assert np.isfinite(normals).all()
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, rtol=1e-5)
    result = render_meshes([(v, f, (200, 200, 200))], K, (H, W))
    assert result.mask.any() and np.isfinite(result.depth).all()
    assert (result.color[result.mask] > 0).all()


def test_intrinsics_forms_agree_and_bad_input_fails():
    kmat = np.array([[K.fx, 0, K.cx], [0, K.fy, K.cy], [0, 0, 1]])
    assert Intrinsics.from_any(kmat) == K == Intrinsics.from_any((K.fx, K.fy, K.cx, K.cy))
    assert Intrinsics.from_any(PerspectiveCamera(K.fx, K.fy, K.cx, K.cy)) == K
    with pytest.raises(ValueError, match="intrinsics"):
        Intrinsics.from_any((1.0, 2.0))
    with pytest.raises(ValueError, match="fx, fy > 0"):
        Intrinsics.from_any((0.0, 1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="image_size"):
        rasterize(np.zeros((3, 3)), [[0, 1, 2]], K, (0, 10))
    with pytest.raises(ValueError, match="face indices"):
        rasterize(np.zeros((3, 3)), [[0, 1, 3]], K, (H, W))
    with pytest.raises(ValueError, match="mesh 0: face indices"):
        render_meshes([(np.zeros((3, 3)), np.array([[0, 1, 5]]), None)], K, (H, W))
