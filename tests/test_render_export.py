"""Mesh export: trimesh round trips, frames, no-overwrite, finite normals on zero-area faces."""

import numpy as np
import pytest
import trimesh

from hmrkit.render import degenerate_faces, export_mesh, export_meshes


def collapsed_sphere():
    """A sphere with a patch collapsed onto one point (zero-area faces), camera frame."""
    s = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    v = np.asarray(s.vertices + [0.2, -0.1, 3.0], dtype=np.float32)
    f = np.asarray(s.faces)
    v[f[:30].ravel()] = v[f[0, 0]]
    return v, f


def load_meshes(path):
    """Geometry in file order, as trimesh reads it back (no processing)."""
    loaded = trimesh.load(path, process=False)
    if isinstance(loaded, trimesh.Scene):
        return [loaded.geometry[name] for name in sorted(loaded.geometry)]
    return [loaded]


@pytest.mark.parametrize("suffix", [".glb", ".obj", ".ply"])
def test_round_trip_keeps_vertices_and_faces(tmp_path, suffix):
    v, f = collapsed_sphere()
    v2 = v + np.float32([0.8, 0.0, 0.5])
    path = export_meshes(tmp_path / f"people{suffix}", [(v, f, (255, 0, 0)), (v2, f, None)])
    got = load_meshes(path)
    if suffix == ".glb":  # one node per person
        assert [g.vertices.shape for g in got] == [v.shape, v2.shape]
        np.testing.assert_allclose(got[0].vertices, v, atol=1e-6)
        np.testing.assert_allclose(got[1].vertices, v2, atol=1e-6)
        np.testing.assert_array_equal(got[0].faces, f)
    else:  # merged into one mesh, vertex order kept
        (mesh,) = got
        np.testing.assert_allclose(mesh.vertices, np.concatenate([v, v2]), atol=1e-5)
        np.testing.assert_array_equal(mesh.faces, np.concatenate([f, f + len(v)]))
    for g in got:
        n = np.asarray(g.vertex_normals)
        assert np.isfinite(n).all()
        np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-4)


def test_stored_normals_are_ours_and_finite_on_zero_area_faces(tmp_path):
    v, f = collapsed_sphere()
    path = export_mesh(tmp_path / "body", v, f)
    assert path.suffix == ".glb"
    (g,) = load_meshes(path)
    n = np.asarray(g.vertex_normals)
    assert np.isfinite(n).all()
    # away from the collapsed patch the normal points outward from the sphere centre
    bad = degenerate_faces(v, f)
    near_patch = np.isin(f, f[bad]).any(1)
    far = np.setdiff1d(np.arange(len(v)), f[near_patch].ravel())
    radial = v[far] - np.float32([0.2, -0.1, 3.0])
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    assert len(far) > 80 and (np.einsum("ij,ij->i", n[far], radial) > 0.95).all()
    # vertices with only zero-area faces get the documented fallback (towards the camera)
    only_bad = np.setdiff1d(f[bad].ravel(), f[~bad].ravel())
    assert len(only_bad) > 0
    np.testing.assert_allclose(n[only_bad], np.tile([0.0, 0.0, -1.0], (len(only_bad), 1)))


def test_y_up_rotates_180_about_x(tmp_path):
    v, f = collapsed_sphere()
    (g,) = load_meshes(export_mesh(tmp_path / "up.glb", v, f, y_up=True))
    np.testing.assert_allclose(g.vertices, v * [1, -1, -1], atol=1e-6)


def test_no_overwrite_unless_asked(tmp_path):
    v, f = collapsed_sphere()
    path = tmp_path / "m.obj"
    export_mesh(path, v, f)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_mesh(path, v + 1, f)
    assert path.read_bytes() == before
    export_mesh(path, v + 1, f, overwrite=True)
    assert path.read_bytes() != before


def test_drop_degenerate_removes_only_zero_area_faces(tmp_path):
    v, f = collapsed_sphere()
    bad = degenerate_faces(v, f)
    # independent check: area from Heron's formula on float64 edges
    tri = v[f].astype(float)
    a, b, c = (np.linalg.norm(tri[:, i] - tri[:, (i + 1) % 3], axis=1) for i in range(3))
    s = (a + b + c) / 2
    heron = np.sqrt(np.clip(s * (s - a) * (s - b) * (s - c), 0, None))
    np.testing.assert_array_equal(bad, heron < 1e-9)
    assert bad.sum() >= 30
    (g,) = load_meshes(export_mesh(tmp_path / "clean.ply", v, f, drop_degenerate=True))
    assert len(g.vertices) == len(v)  # indices unchanged
    np.testing.assert_array_equal(g.faces, f[~bad])


def test_bad_requests_fail_clearly(tmp_path):
    v, f = collapsed_sphere()
    with pytest.raises(ValueError, match="unsupported mesh format"):
        export_mesh(tmp_path / "m.stl", v, f)
    with pytest.raises(ValueError, match="no meshes"):
        export_meshes(tmp_path / "m.glb", [])


def test_glb_layout_follows_the_spec_and_holds_our_data(tmp_path):
    """The .glb is written by hmrkit (render/gltf.py): header length, 4-byte chunk alignment, one
    named node per mesh, POSITION min/max, and trimesh reads back our normals and colours exactly."""
    import json
    import struct

    from hmrkit.render.mesh_ops import vertex_normals

    v, f = collapsed_sphere()
    path = export_meshes(tmp_path / "two.glb", [(v, f, (255, 0, 0)), (v + 1, f[:7], (0, 0, 255))])
    data = path.read_bytes()
    magic, version, length = struct.unpack("<4sII", data[:12])
    assert (magic, version, length) == (b"glTF", 2, len(data))
    json_length, json_kind = struct.unpack("<I4s", data[12:20])
    bin_length, bin_kind = struct.unpack("<I4s", data[20 + json_length : 28 + json_length])
    assert (json_kind, bin_kind) == (b"JSON", b"BIN\0") and json_length % 4 == 0 and bin_length % 4 == 0
    assert 28 + json_length + bin_length == len(data)
    document = json.loads(data[20 : 20 + json_length])
    assert [n["name"] for n in document["nodes"]] == ["person_0", "person_1"]
    assert document["buffers"] == [{"byteLength": bin_length}]
    assert all(view["byteOffset"] % 4 == 0 for view in document["bufferViews"])
    position = document["accessors"][document["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    np.testing.assert_allclose(position["min"], v.min(axis=0)), np.testing.assert_allclose(position["max"], v.max(axis=0))
    first, second = load_meshes(path)
    np.testing.assert_array_equal(first.vertex_normals, vertex_normals(v, f))
    np.testing.assert_array_equal(first.visual.vertex_colors, np.tile([255, 0, 0, 255], (len(v), 1)))
    np.testing.assert_array_equal(second.faces, f[:7])
    np.testing.assert_array_equal(second.visual.vertex_colors[0], [0, 0, 255, 255])


def test_glb_stores_shared_triangles_and_colours_once(tmp_path):
    """Two people of one body model: one index accessor and one colour accessor serve both,
    and both still read back whole."""
    import json
    import struct

    v, f = collapsed_sphere()
    path = export_meshes(tmp_path / "pair.glb", [(v, f, (10, 20, 30)), (v + 1, f, (10, 20, 30))])
    data = path.read_bytes()
    (json_length,) = struct.unpack("<I", data[12:16])
    first, second = (m["primitives"][0] for m in json.loads(data[20 : 20 + json_length])["meshes"])
    assert first["indices"] == second["indices"]
    assert first["attributes"]["COLOR_0"] == second["attributes"]["COLOR_0"]
    assert first["attributes"]["POSITION"] != second["attributes"]["POSITION"]
    a, b = load_meshes(path)
    np.testing.assert_array_equal(a.faces, f), np.testing.assert_array_equal(b.faces, f)
    np.testing.assert_allclose(b.vertices, v + 1, atol=1e-6)
