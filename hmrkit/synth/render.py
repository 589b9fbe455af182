"""A synthetic person drawn with hmrkit's rasterizer, lit by a random light, then composited.

The rasterizer gives per-pixel faces and barycentrics (:func:`hmrkit.render.rasterizer.rasterize`);
here vertex colours and normals are interpolated and lit by one directional light plus ambient
light of a random colour temperature. The person is rasterized at ``supersample`` times the
resolution and averaged down, which gives an anti-aliased alpha; the composite then blurs the
person slightly and adds sensor noise to the whole image so edges are not cleaner than a photo's.
Collapsed (amputated) parts have zero-area faces, which draw nothing: the stump closes where
the collapse joint is.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hmrkit.render.mesh_ops import vertex_normals
from hmrkit.render.rasterizer import Fragments, rasterize


@dataclass(frozen=True)
class Light:
    direction: np.ndarray  # (3,) unit, from the surface towards the light, camera frame
    colour: np.ndarray  # (3,) tint of the direct light
    ambient: float  # share of ambient light


def random_light(rng: np.random.Generator) -> Light:
    """Mostly from above and the front (sun, ceiling lights), sometimes from the side."""
    azimuth = rng.uniform(-np.pi * 0.6, np.pi * 0.6)
    elevation = rng.uniform(np.radians(10), np.radians(70))
    # camera frame: y down, z forward; the light sits towards the camera (negative z) and up (negative y)
    direction = np.array([np.sin(azimuth) * np.cos(elevation), -np.sin(elevation), -np.cos(azimuth) * np.cos(elevation)])
    warmth = rng.uniform(-0.12, 0.12)
    colour = np.array([1 + warmth, 1.0, 1 - warmth]) * rng.uniform(0.85, 1.15)
    return Light(direction / np.linalg.norm(direction), colour, float(rng.uniform(0.3, 0.6)))


@dataclass
class PersonLayer:
    rgb: np.ndarray  # (H, W, 3) float32 in [0, 1], premultiplied by alpha
    alpha: np.ndarray  # (H, W) float32 coverage in [0, 1]
    fragments: Fragments | None = None  # the supersampled rasterization (which face, depth), for labels


def render_person(vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray, intrinsics: np.ndarray,
                  size: tuple[int, int], light: Light, supersample: int = 2) -> PersonLayer:
    """Render one person (camera frame, metres) with per-vertex ``colours`` (V, 3) in [0, 1]."""
    s = supersample
    h, w = size
    fx, fy, cx, cy = intrinsics
    # pixel u of the small image has its centre at s u + (s - 1) / 2 in the large one
    k = (fx * s, fy * s, cx * s + (s - 1) / 2, cy * s + (s - 1) / 2)
    frags = rasterize(vertices, faces, k, (h * s, w * s))
    covered = frags.face_index >= 0
    big = np.zeros((h * s, w * s, 3), np.float32)
    if covered.any():
        tri = faces[frags.face_index[covered]]  # (P, 3)
        bary = frags.bary[covered][..., None]  # (P, 3, 1)
        normals = vertex_normals(vertices.astype(np.float32), faces)
        n = (bary * normals[tri]).sum(1)
        p = (bary * vertices[tri]).sum(1)
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-9
        n *= np.where((n * p).sum(1, keepdims=True) > 0, -1.0, 1.0)  # the side facing the camera
        diffuse = np.clip(n @ light.direction, 0, None)[:, None]
        albedo = (bary * colours[tri]).sum(1)
        big[covered] = albedo * (light.ambient + (1 - light.ambient) * diffuse * light.colour)
    # INTER_AREA with an integer factor is the mean over each s x s block
    alpha = cv2.resize(covered.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    rgb = cv2.resize(np.clip(big, 0, 1), (w, h), interpolation=cv2.INTER_AREA)
    return PersonLayer(rgb, alpha, frags)


def composite(background: np.ndarray, person: PersonLayer, rng: np.random.Generator) -> np.ndarray:
    """Alpha-composite ``person`` over ``background`` (H, W, 3) uint8; a little blur and noise."""
    sigma = rng.uniform(0.3, 0.9)
    rgb = cv2.GaussianBlur(person.rgb, (0, 0), sigma)
    alpha = cv2.GaussianBlur(person.alpha, (0, 0), sigma)[..., None]
    out = background.astype(np.float32) / 255 * (1 - alpha) + rgb
    out += rng.normal(0, rng.uniform(0.004, 0.02), out.shape).astype(np.float32)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def visible_box(alpha: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(4,) x0, y0, x1, y1 of the pixels with coverage >= threshold (pixel centres); NaN if none."""
    ys, xs = np.nonzero(alpha >= threshold)
    if len(xs) == 0:
        return np.full(4, np.nan, np.float32)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)
