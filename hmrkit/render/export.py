"""Write meshes to .glb (default; :mod:`hmrkit.render.gltf`), .obj or .ply (trimesh), offline.

Frames: vertices are written in the OpenCV camera frame, metres (x right, y down,
z forward) -- the frame of every other hmrkit output, so a mesh lines up with the
joints in the JSON results. glTF viewers (and Blender's importer) expect +y up and the
viewer looking down -z; pass ``y_up=True`` to rotate 180 deg about x, (x, y, z) ->
(x, -y, -z), which shows the person upright and facing the viewer. Default: ``y_up=False``.

Each mesh keeps its own node in .glb (``person_0``, ``person_1``, ...); .obj and .ply hold
one merged mesh with per-vertex colours. Vertex normals are written and always finite:
zero-area faces (collapsed limbs) weigh nothing and isolated vertices get a fallback normal.
Vertex indices are never renumbered, even with ``drop_degenerate=True`` (which only removes
faces), so per-vertex data elsewhere still matches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from hmrkit.render.gltf import GlbMesh, glb_bytes
from hmrkit.render.mesh_ops import ColoredMesh, as_colored_meshes, degenerate_faces, vertex_normals

FORMATS = ("glb", "obj", "ply")
_Y_UP = np.diag([1.0, -1.0, -1.0]).astype(np.float32)  # 180 deg about x


def export_meshes(
    path: str | Path,
    meshes: Sequence[ColoredMesh | tuple],
    *,
    y_up: bool = False,
    drop_degenerate: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write ``meshes`` (list of ``(vertices, faces[, color])``) to ``path``; return the path.

    The format follows the suffix (.glb, .obj, .ply); a path without a suffix gets .glb.
    Raises FileExistsError if the file exists and ``overwrite`` is False.
    """
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".glb")
    fmt = path.suffix[1:].lower()
    if fmt not in FORMATS:
        raise ValueError(f"unsupported mesh format {path.suffix!r}: use one of {', '.join('.' + f for f in FORMATS)}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    parsed = as_colored_meshes(meshes)
    if not parsed:
        raise ValueError("no meshes to export")
    prepared = [_prepared(f"person_{i}", m, y_up=y_up, drop_degenerate=drop_degenerate) for i, m in enumerate(parsed)]
    if fmt == "glb":
        data = glb_bytes(prepared)
    else:
        import trimesh  # only here: importing it costs ~0.5 s

        merged = _merged(prepared)
        if fmt == "obj":
            data = trimesh.exchange.obj.export_obj(merged, include_normals=True, include_color=True)
        else:
            data = trimesh.exchange.ply.export_ply(merged, encoding="binary", vertex_normal=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "wb" if overwrite else "xb") as fh:  # "xb": no race with another writer
            fh.write(payload)
    except FileExistsError:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it") from None
    return path


def export_mesh(path: str | Path, vertices: np.ndarray, faces: np.ndarray, color=None, **kwargs) -> Path:
    """One mesh: ``export_meshes(path, [(vertices, faces, color)], **kwargs)``."""
    return export_meshes(path, [(vertices, faces, color)], **kwargs)


def _prepared(name: str, mesh: ColoredMesh, *, y_up: bool, drop_degenerate: bool) -> GlbMesh:
    vertices, faces = mesh.vertices, mesh.faces
    if drop_degenerate and len(faces):
        faces = faces[~degenerate_faces(vertices, faces)]
    normals = vertex_normals(vertices, faces)
    if y_up:
        vertices, normals = vertices @ _Y_UP, normals @ _Y_UP  # diagonal: transpose not needed
    rgba = np.append(np.round(mesh.color * 255), 255).astype(np.uint8)
    return GlbMesh(name, vertices, faces, normals, np.tile(rgba, (len(vertices), 1)))


def _merged(meshes: list[GlbMesh]):
    """One trimesh.Trimesh of all ``meshes``, vertex order kept (no merging or removal)."""
    import trimesh

    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes])
    return trimesh.Trimesh(
        vertices=np.concatenate([m.vertices for m in meshes]),
        faces=np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]),
        vertex_normals=np.concatenate([m.normals for m in meshes]),
        vertex_colors=np.concatenate([m.colors for m in meshes]),
        process=False,
        validate=False,
    )
