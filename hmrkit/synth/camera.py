"""Where the synthetic camera stands: the person fills a realistic share of the frame.

A pinhole camera with a random field of view looks at the posed body; its distance makes the
body's larger 2D extent a random share of the image, its image position is random inside the
frame, and sometimes (``truncation_prob``) shifted so the body is cut at an edge, as people
often are in photos.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CameraSettings:
    fov_degrees: tuple[float, float] = (40.0, 75.0)  # along the image's longer side
    fill: tuple[float, float] = (0.45, 0.95)  # the body's larger 2D extent / the image's shorter side
    truncation_prob: float = 0.15  # body partly outside the frame
    truncation_depth: tuple[float, float] = (0.1, 0.35)  # how much of the body's extent leaves the frame


@dataclass(frozen=True)
class Placement:
    intrinsics: np.ndarray  # (4,) fx, fy, cx, cy
    translation: np.ndarray  # (3,) added to the body (camera frame)


def place_person(points: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
                 settings: CameraSettings = CameraSettings()) -> Placement:
    """Camera and body translation for ``points`` (N, 3), the posed body at zero translation in
    camera axes; ``size`` = (H, W) pixels. Every point stays >= 0.3 m in front of the camera."""
    height, width = size
    fov = np.radians(rng.uniform(*settings.fov_degrees))
    focal = max(height, width) / (2 * np.tan(fov / 2))
    cx, cy = (width - 1) / 2, (height - 1) / 2
    lo, hi = points.min(0), points.max(0)
    centre = (lo + hi) / 2
    extent = float((hi - lo)[:2].max())
    fill = rng.uniform(*settings.fill) * min(height, width)
    z = max(focal * extent / fill, centre[2] - lo[2] + 0.3)  # depth of the body's centre
    half = fill / 2
    room = np.maximum(np.array([width, height]) / 2 - half, 0)
    offset = rng.uniform(-1, 1, 2) * room  # centre's image offset from the principal point
    if rng.random() < settings.truncation_prob:
        axis = int(rng.integers(2))
        offset[axis] = rng.choice([-1, 1]) * (room[axis] + rng.uniform(*settings.truncation_depth) * fill)
    translation = np.array([z * offset[0] / focal - centre[0], z * offset[1] / focal - centre[1], z - centre[2]])
    return Placement(np.array([focal, focal, cx, cy]), translation)


def project(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points -> (N, 2) pixels (centres at integers)."""
    fx, fy, cx, cy = intrinsics
    return np.stack([fx * points[:, 0] / points[:, 2] + cx, fy * points[:, 1] / points[:, 2] + cy], -1)
