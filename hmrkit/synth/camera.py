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
    truncation_depth: tuple[float, float] = (0.1, 0.35)  # how much of the body's 2D box leaves the frame


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
    # the body's 2D box when centred on the principal point (perspective makes it larger than
    # ``fill``), then the offsets that keep it in the frame
    def translation_for(offset: np.ndarray) -> np.ndarray:
        return np.array([z * offset[0] / focal - centre[0], z * offset[1] / focal - centre[1], z - centre[2]])

    intrinsics = np.array([focal, focal, cx, cy])
    uv = project(points + translation_for(np.zeros(2)), intrinsics)
    low = np.minimum(uv.min(0), [cx, cy])  # how far the box reaches left/up ...
    high = np.maximum(uv.max(0), [cx, cy])  # ... and right/down of the frame's edges
    size_wh = np.array([width - 1, height - 1], float)
    room_low, room_high = np.maximum(low, 0), np.maximum(size_wh - high, 0)
    offset = -room_low + rng.random(2) * (room_low + room_high)
    axis, edge = -1, 0.0  # the axis cut at the frame's edge, and where the box's near edge goes
    if rng.random() < settings.truncation_prob:
        axis = int(rng.integers(2))
        cut = rng.uniform(*settings.truncation_depth) * (high - low)[axis]  # a share of the box along that axis
        low_side = rng.random() < 0.5
        offset[axis] = -(room_low[axis] + cut) if low_side else room_high[axis] + cut
        edge = -cut if low_side else size_wh[axis] + cut
    for _ in range(4):  # off-axis, near points shift more than the centre: pull back what sticks out
        uv = project(points + translation_for(offset), intrinsics)
        fix = np.maximum(-uv.min(0), 0) - np.maximum(uv.max(0) - size_wh, 0)
        if axis >= 0:
            fix[axis] = edge - (uv[:, axis].min() if edge < 0 else uv[:, axis].max())
        if (np.abs(fix) < 0.5).all():
            break
        offset += fix
    return Placement(intrinsics, translation_for(offset))


def project(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points -> (N, 2) pixels (centres at integers)."""
    fx, fy, cx, cy = intrinsics
    return np.stack([fx * points[:, 0] / points[:, 2] + cx, fy * points[:, 1] / points[:, 2] + cy], -1)
