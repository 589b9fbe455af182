"""Headless CPU z-buffer rasterizer for triangle meshes in the OpenCV camera frame.

Why this approach: users ask for rendering that "never fails" headless. OpenGL paths
(pyrender, moderngl, EGL/OSMesa) need system libraries or a display; ``warp-lang`` compiles
kernels with a bundled clang and is heavy for this. A numba-jitted loop over triangles
(bounding box, edge functions, perspective-correct barycentrics, z-test) is pip-only, exact
(true per-pixel z-buffer, not painter's order) and fast: a whole overlay of a
27k-triangle body at 1024x1024 takes ~20 ms (~8 ms at 512) on this project's 2-core CPU
machines, single-threaded (``benchmarks/results/render.md``). ``cache=True`` stores the machine
code next to this file (or in numba's per-user cache when that is read-only), so the
~1-2 s compile happens once per machine, not per process. Shading is a second jitted
per-pixel loop (numpy gathers over ~60k covered pixels cost more than the rasterizing);
near-plane clipping and culling are vectorized numpy.

Conventions: x right, y down, z forward, metres; pixel (u, v) has its centre at integer
coordinates (u = fx x / z + cx, as in ``cv2.projectPoints``); a pixel is covered when its
centre lies inside or on the edge of a projected triangle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numba
import numpy as np

from hmrkit.render.mesh_ops import ColoredMesh, as_colored_meshes, check_mesh, face_cross, vertex_normals

DEFAULT_NEAR = 0.01  # metres


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels."""

    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_any(cls, value) -> "Intrinsics":
        """Accept Intrinsics, a 3x3 K matrix, (fx, fy, cx, cy), or any object with scalar
        fx/fy/cx/cy (e.g. ``hmrkit.geometry.cameras.PerspectiveCamera``)."""
        if isinstance(value, cls):
            return value
        if all(hasattr(value, k) for k in ("fx", "fy", "cx", "cy")):
            params = [value.fx, value.fy, value.cx, value.cy]
        else:
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape == (3, 3):
                params = [arr[0, 0], arr[1, 1], arr[0, 2], arr[1, 2]]
            elif arr.shape == (4,):
                params = list(arr)
            else:
                raise ValueError(f"intrinsics must be a 3x3 K matrix or (fx, fy, cx, cy), got shape {arr.shape}")
        fx, fy, cx, cy = (float(p) for p in params)
        if not (fx > 0 and fy > 0 and math.isfinite(fx + fy + cx + cy)):
            raise ValueError(f"intrinsics need finite fx, fy > 0, got fx={fx}, fy={fy}, cx={cx}, cy={cy}")
        return cls(fx, fy, cx, cy)


@dataclass
class Fragments:
    """Per-pixel visible surface. ``face_index`` is -1 and ``depth`` 0 where nothing is drawn.

    ``bary`` are perspective-correct barycentric weights of the pixel's 3D point on the
    input face ``face_index`` (rows sum to 1), so any vertex attribute interpolates as
    ``(bary[..., :, None] * attr[faces[face_index]]).sum(-2)``.
    """

    face_index: np.ndarray  # (H, W) int32
    bary: np.ndarray  # (H, W, 3) float32
    depth: np.ndarray  # (H, W) float32, z in metres

    @property
    def mask(self) -> np.ndarray:
        return self.face_index >= 0


@dataclass
class RenderResult:
    color: np.ndarray  # (H, W, 3) uint8, background where nothing is drawn
    depth: np.ndarray  # (H, W) float32 z in metres, 0 where nothing is drawn
    mask: np.ndarray  # (H, W) bool
    mesh_index: np.ndarray  # (H, W) int32 index into the input mesh list, -1 for background


def rasterize(
    vertices: np.ndarray,
    faces: np.ndarray,
    intrinsics,
    image_size: tuple[int, int],
    *,
    near: float = DEFAULT_NEAR,
    cull_backfaces: bool = False,
) -> Fragments:
    """Z-buffer one triangle mesh (camera frame) into an image of ``image_size`` = (H, W).

    Triangles crossing the plane z = ``near`` are clipped (not dropped); parts behind it are
    not drawn. With ``cull_backfaces``, faces whose right-hand normal (v1-v0)x(v2-v0) points
    away from the camera are skipped (needs consistently wound meshes); zero-area faces
    draw nothing either way.
    """
    height, width = _check_size(image_size)
    if not near > 0:
        raise ValueError(f"near must be > 0 metres, got {near}")
    k = Intrinsics.from_any(intrinsics)
    vertices, faces = check_mesh(vertices, faces, dtype=np.float64)
    candidates = np.arange(len(faces))
    if cull_backfaces:
        facing = np.einsum("fc,fc->f", face_cross(vertices, faces), vertices[faces[:, 0]]) < 0
        candidates, faces = candidates[facing], faces[facing]
    src, weights = None, None
    if (vertices[:, 2] < near).any():  # rare: only then build per-triangle copies to clip
        src, weights = _clip_near(vertices[faces], near)
    if weights is not None:
        vertices = np.einsum("tkj,tjc->tkc", weights, vertices[faces[src]]).reshape(-1, 3)
        faces = np.arange(len(vertices)).reshape(-1, 3)
    elif src is not None:
        faces = faces[src]

    zbuf = np.full((height, width), np.inf, dtype=np.float32)
    tri_id = np.full((height, width), -1, dtype=np.int32)
    bary = np.zeros((height, width, 3), dtype=np.float32)
    _raster_kernel(vertices, np.ascontiguousarray(faces), k.fx, k.fy, k.cx, k.cy, zbuf, tri_id, bary)
    if src is None and not cull_backfaces:  # triangles are the input faces
        return Fragments(tri_id, bary, zbuf)
    src = np.arange(len(faces)) if src is None else src
    covered = tri_id >= 0
    t = tri_id[covered]
    face_index = np.full((height, width), -1, dtype=np.int32)
    face_index[covered] = candidates[src[t]]
    if weights is not None:  # barycentrics on a clipped piece -> on the original face
        bary[covered] = np.einsum("nk,nkj->nj", bary[covered], weights[t].astype(np.float32))
    return Fragments(face_index, bary, zbuf)


def shade(
    fragments: Fragments,
    vertices: np.ndarray,
    faces: np.ndarray,
    face_colors: np.ndarray,
    *,
    ambient: float = 0.3,
    background: Sequence[int] = (0, 0, 0),
    normals: np.ndarray | None = None,
) -> np.ndarray:
    """Per-pixel Lambert shading with the light at the camera: (H, W, 3) uint8.

    Smooth (interpolated vertex) normals, two-sided (|n . l|), so inconsistent winding and
    back faces seen through gaps still look lit. ``face_colors`` is (F, 3) in [0, 1].
    """
    vertices = np.ascontiguousarray(vertices, dtype=np.float32)
    faces = np.ascontiguousarray(faces, dtype=np.int64).reshape(-1, 3)
    if normals is None:
        normals = vertex_normals(vertices, faces)
    out = np.empty(fragments.face_index.shape + (3,), dtype=np.uint8)
    _shade_kernel(
        np.ascontiguousarray(fragments.face_index, dtype=np.int32),
        np.ascontiguousarray(fragments.bary, dtype=np.float32),
        vertices,
        faces,
        np.ascontiguousarray(normals, dtype=np.float32),
        np.ascontiguousarray(face_colors, dtype=np.float32).reshape(-1, 3),
        float(ambient),
        np.asarray(background, dtype=np.uint8).reshape(3),
        out,
    )
    return out


def render_meshes(
    meshes: Sequence[ColoredMesh | tuple],
    intrinsics,
    image_size: tuple[int, int],
    *,
    background: Sequence[int] = (0, 0, 0),
    near: float = DEFAULT_NEAR,
    cull_backfaces: bool = False,
    ambient: float = 0.3,
) -> RenderResult:
    """Render several meshes together (shared z-buffer, so people occlude each other)."""
    parsed = as_colored_meshes(meshes)
    vertices, faces, mesh_of_face, colors = _concatenate(parsed)
    frags = rasterize(vertices, faces, intrinsics, image_size, near=near, cull_backfaces=cull_backfaces)
    color = shade(frags, vertices, faces, colors[mesh_of_face], ambient=ambient, background=background)
    mask = frags.mask
    mesh_index = np.full(mask.shape, -1, dtype=np.int32)
    mesh_index[mask] = mesh_of_face[frags.face_index[mask]]
    return RenderResult(color, frags.depth, mask, mesh_index)


def _concatenate(meshes: list[ColoredMesh]):
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes])
    vertices = np.concatenate([m.vertices for m in meshes] or [np.zeros((0, 3), np.float32)])
    faces = np.concatenate([m.faces + o for m, o in zip(meshes, offsets)] or [np.zeros((0, 3), np.int64)])
    mesh_of_face = np.repeat(np.arange(len(meshes)), [len(m.faces) for m in meshes])
    colors = np.stack([m.color for m in meshes]) if meshes else np.zeros((0, 3), np.float32)
    return vertices, faces, mesh_of_face, colors


def _check_size(image_size) -> tuple[int, int]:
    if len(image_size) != 2 or min(image_size) <= 0:
        raise ValueError(f"image_size must be (height, width) > 0, got {image_size}")
    return int(image_size[0]), int(image_size[1])


def _clip_near(tri: np.ndarray, near: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Clip triangles (T, 3, 3) against z >= near.

    Returns ``src`` (indices into ``tri``) and ``weights`` (N, 3, 3): row k holds the
    barycentric weights of new vertex k on the source triangle (None when nothing is
    clipped, i.e. identity). A triangle with one vertex behind becomes two, with two
    behind one smaller one, with three behind none. Cyclic reordering keeps the winding.
    """
    behind = tri[..., 2] < near
    n_behind = behind.sum(axis=1)
    if not n_behind.any():
        return np.arange(len(tri)), None
    eye = np.eye(3)
    keep = np.flatnonzero(n_behind == 0)
    src = [keep]
    weights = [np.broadcast_to(eye, (len(keep), 3, 3))]
    for count, lone_is_behind in ((1, True), (2, False)):
        idx = np.flatnonzero(n_behind == count)
        if not len(idx):
            continue
        # rotate so the lone vertex (the one behind, or the one in front) comes first
        lone = np.argmax(behind[idx] == lone_is_behind, axis=1)
        order = (lone[:, None] + np.arange(3)) % 3
        e = eye[order]  # (n, 3, 3) one-hot rows for vertices A (lone), B, C
        z = np.take_along_axis(tri[idx, :, 2], order, axis=1)
        t_ab = ((near - z[:, 0]) / (z[:, 1] - z[:, 0]))[:, None]
        t_ac = ((near - z[:, 0]) / (z[:, 2] - z[:, 0]))[:, None]
        p_ab = (1 - t_ab) * e[:, 0] + t_ab * e[:, 1]
        p_ac = (1 - t_ac) * e[:, 0] + t_ac * e[:, 2]
        if lone_is_behind:  # quad p_ab, B, C, p_ac -> two triangles
            src += [idx, idx]
            weights += [np.stack([p_ab, e[:, 1], e[:, 2]], 1), np.stack([p_ab, e[:, 2], p_ac], 1)]
        else:
            src.append(idx)
            weights.append(np.stack([e[:, 0], p_ab, p_ac], 1))
    return np.concatenate(src), np.concatenate(weights)


@numba.njit(cache=True, nogil=True)
def _raster_kernel(vertices, faces, fx, fy, cx, cy, zbuf, tri_id, bary):  # pragma: no cover - jitted
    """Draw every face; afterwards depth is 0 (not inf) where nothing was drawn."""
    height, width = zbuf.shape
    for t in range(faces.shape[0]):
        i0, i1, i2 = faces[t, 0], faces[t, 1], faces[t, 2]
        x0, y0, z0 = vertices[i0, 0], vertices[i0, 1], vertices[i0, 2]
        x1, y1, z1 = vertices[i1, 0], vertices[i1, 1], vertices[i1, 2]
        x2, y2, z2 = vertices[i2, 0], vertices[i2, 1], vertices[i2, 2]
        u0, v0 = fx * x0 / z0 + cx, fy * y0 / z0 + cy
        u1, v1 = fx * x1 / z1 + cx, fy * y1 / z1 + cy
        u2, v2 = fx * x2 / z2 + cx, fy * y2 / z2 + cy
        area = (u1 - u0) * (v2 - v0) - (u2 - u0) * (v1 - v0)
        if not abs(area) > 1e-12:  # zero-area on screen (or NaN): nothing to draw
            continue
        umin = max(min(u0, u1, u2), 0.0)
        umax = min(max(u0, u1, u2), width - 1.0)
        vmin = max(min(v0, v1, v2), 0.0)
        vmax = min(max(v0, v1, v2), height - 1.0)
        if umin > umax or vmin > vmax:
            continue
        inv_area = 1.0 / area
        iz0, iz1, iz2 = 1.0 / z0, 1.0 / z1, 1.0 / z2
        for py in range(int(math.ceil(vmin)), int(math.floor(vmax)) + 1):
            for px in range(int(math.ceil(umin)), int(math.floor(umax)) + 1):
                l0 = ((u1 - px) * (v2 - py) - (u2 - px) * (v1 - py)) * inv_area
                l1 = ((u2 - px) * (v0 - py) - (u0 - px) * (v2 - py)) * inv_area
                l2 = ((u0 - px) * (v1 - py) - (u1 - px) * (v0 - py)) * inv_area
                if l0 < 0.0 or l1 < 0.0 or l2 < 0.0:
                    continue
                w0, w1, w2 = l0 * iz0, l1 * iz1, l2 * iz2
                z = 1.0 / (w0 + w1 + w2)
                if z < zbuf[py, px]:
                    zbuf[py, px] = z
                    tri_id[py, px] = t
                    bary[py, px, 0] = w0 * z
                    bary[py, px, 1] = w1 * z
                    bary[py, px, 2] = w2 * z
    for py in range(height):
        for px in range(width):
            if tri_id[py, px] < 0:
                zbuf[py, px] = 0.0


@numba.njit(cache=True, nogil=True)
def _shade_kernel(
    face_index, bary, vertices, faces, normals, face_colors, ambient, background, out
):  # pragma: no cover - jitted
    height, width = face_index.shape
    for py in range(height):
        for px in range(width):
            f = face_index[py, px]
            if f < 0:
                for c in range(3):
                    out[py, px, c] = background[c]
                continue
            nx = ny = nz = qx = qy = qz = 0.0
            for k in range(3):
                w = bary[py, px, k]
                i = faces[f, k]
                nx += w * normals[i, 0]
                ny += w * normals[i, 1]
                nz += w * normals[i, 2]
                qx += w * vertices[i, 0]
                qy += w * vertices[i, 1]
                qz += w * vertices[i, 2]
            n_len = math.sqrt(nx * nx + ny * ny + nz * nz)
            if n_len < 1e-6:  # opposite vertex normals cancelled: use the face's own normal
                a = vertices[faces[f, 1]] - vertices[faces[f, 0]]
                b = vertices[faces[f, 2]] - vertices[faces[f, 0]]
                nx, ny, nz = a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]
                n_len = math.sqrt(nx * nx + ny * ny + nz * nz)
            q_len = math.sqrt(qx * qx + qy * qy + qz * qz)
            cos = 1.0  # no usable normal at all: treat as facing the light
            if n_len * q_len > 1e-12:
                cos = min(abs(nx * qx + ny * qy + nz * qz) / (n_len * q_len), 1.0)
            intensity = ambient + (1.0 - ambient) * cos
            for c in range(3):
                out[py, px, c] = np.uint8(min(face_colors[f, c] * intensity * 255.0 + 0.5, 255.0))
