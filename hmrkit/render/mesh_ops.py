"""Mesh inputs shared by the renderer and the exporters: validation, colours, safe normals.

Body meshes with collapsed limbs (AJAHR-style amputation) contain zero-area faces and
vertices whose every face has zero area. Normals here never divide by zero: zero-area
faces weigh nothing, and a vertex with no usable face gets ``FALLBACK_NORMAL``.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numba
import numpy as np

# Camera frame (OpenCV): -z points from the surface back towards the camera.
FALLBACK_NORMAL = np.array([0.0, 0.0, -1.0], dtype=np.float32)

# Distinct, colour-blind-friendly person colours (Okabe-Ito, without black/yellow).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (86, 180, 233),
    (230, 159, 0),
    (0, 158, 115),
    (204, 121, 167),
    (213, 94, 0),
    (0, 114, 178),
    (240, 228, 66),
)


class ColoredMesh(NamedTuple):
    """One triangle mesh in the camera frame (metres) with an RGB colour.

    ``color``: integers are 0-255, floats are 0-1; None picks ``PALETTE[i]``.
    A plain ``(vertices, faces, color)`` or ``(vertices, faces)`` tuple is accepted too.
    """

    vertices: np.ndarray  # (V, 3) float
    faces: np.ndarray  # (F, 3) int
    color: Sequence[float] | np.ndarray | None = None


def as_colored_meshes(meshes: Sequence) -> list[ColoredMesh]:
    """Validate a list of meshes; return float32 vertices, int64 faces, float RGB in [0, 1]."""
    if isinstance(meshes, tuple) and len(meshes) in (2, 3) and isinstance(meshes[0], np.ndarray):
        meshes = [meshes]  # one bare (vertices, faces[, color]) tuple
    out = []
    for i, mesh in enumerate(meshes):
        if len(mesh) not in (2, 3):
            raise ValueError(f"mesh {i}: expected (vertices, faces[, color]), got {len(mesh)} items")
        vertices, faces = check_mesh(mesh[0], mesh[1], f"mesh {i}")
        color = mesh[2] if len(mesh) == 3 else None
        out.append(ColoredMesh(vertices, faces, parse_color(color, i)))
    return out


def check_mesh(vertices, faces, name: str = "mesh", dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Validate one mesh; return (V, 3) ``dtype`` vertices and (F, 3) int64 faces."""
    vertices = np.ascontiguousarray(vertices, dtype=dtype)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"{name}: vertices must be (V, 3), got {vertices.shape}")
    if faces.size == 0:
        faces = faces.reshape(0, 3).astype(np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"{name}: faces must be (F, 3) integers, got {faces.shape} {faces.dtype}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"{name}: face indices must lie in [0, {len(vertices)})")
    if not np.isfinite(vertices).all():
        raise ValueError(f"{name}: vertices contain NaN or inf")
    return vertices, faces.astype(np.int64, copy=False)


def parse_color(color, index: int = 0) -> np.ndarray:
    """RGB as float32 in [0, 1]: integer values are 0-255, float values 0-1."""
    if color is None:
        color = PALETTE[index % len(PALETTE)]
    arr = np.asarray(color)
    if arr.shape != (3,):
        raise ValueError(f"colour must be 3 values (RGB), got shape {arr.shape}")
    rgb = arr.astype(np.float32) / 255.0 if np.issubdtype(arr.dtype, np.integer) else arr.astype(np.float32)
    if not (np.isfinite(rgb).all() and (rgb >= 0).all() and (rgb <= 1).all()):
        raise ValueError(f"colour {color!r} out of range: integers 0-255 or floats 0-1")
    return rgb


def face_cross(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) cross products (v1 - v0) x (v2 - v0): direction = normal, length = 2 * area."""
    tri = vertices[faces].astype(np.float64)
    return np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])


def degenerate_faces(vertices: np.ndarray, faces: np.ndarray, rel_tol: float = 1e-6) -> np.ndarray:
    """(F,) bool: faces with repeated indices or area below ``rel_tol`` x longest edge squared.

    Relative, so float32 noise on a collapsed limb (vertices 1e-7 m apart) still counts.
    """
    tri = vertices[faces].astype(np.float64)
    cross_norm = np.linalg.norm(face_cross(vertices, faces), axis=1)
    edge2 = ((tri - np.roll(tri, 1, axis=1)) ** 2).sum(-1).max(axis=1)
    repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])
    return repeated | (cross_norm <= rel_tol * edge2) | (edge2 == 0)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) float32 unit area-weighted vertex normals; always finite.

    Zero-area faces add zero; a vertex whose faces sum to ~zero gets ``FALLBACK_NORMAL``.
    The scatter-add is a jitted loop over faces: numpy's bincount/add.at cost ~20x more.
    """
    acc = np.zeros((len(vertices), 3), dtype=np.float64)
    _accumulate_face_normals(
        np.ascontiguousarray(vertices, dtype=np.float64), np.ascontiguousarray(faces, dtype=np.int64), acc
    )
    return _unit_or_fallback(acc)


def _unit_or_fallback(vectors: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    ok = norm > 1e-20
    unit = np.where(ok, vectors / np.where(ok, norm, 1.0), FALLBACK_NORMAL)
    return unit.astype(np.float32)


@numba.njit(cache=True, nogil=True)
def _accumulate_face_normals(vertices, faces, acc):  # pragma: no cover - jitted
    for f in range(faces.shape[0]):
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        ax = vertices[i1, 0] - vertices[i0, 0]
        ay = vertices[i1, 1] - vertices[i0, 1]
        az = vertices[i1, 2] - vertices[i0, 2]
        bx = vertices[i2, 0] - vertices[i0, 0]
        by = vertices[i2, 1] - vertices[i0, 1]
        bz = vertices[i2, 2] - vertices[i0, 2]
        nx, ny, nz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
        for i in (i0, i1, i2):
            acc[i, 0] += nx
            acc[i, 1] += ny
            acc[i, 2] += nz
