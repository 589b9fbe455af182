"""Boxes and crops for the perception front end (pure numpy / OpenCV, no model inside).

Boxes are (x0, y0, x1, y1) in pixels. A crop is an axis-aligned window of the full image,
possibly reaching past its border (padded with black); a model's normalised output (u, v) on
the patch maps back to ``(x0 + u * width, y0 + v * height)`` whatever the patch's resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hmrkit.perception.types import BodyLandmarks

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Crop:
    """A window (x0, y0, width, height) of the full image, in full-image pixels."""

    x0: float
    y0: float
    width: float
    height: float

    @property
    def box(self) -> Box:
        return (self.x0, self.y0, self.x0 + self.width, self.y0 + self.height)

    @property
    def centre(self) -> np.ndarray:
        return np.array([self.x0 + self.width / 2, self.y0 + self.height / 2])


def cut(image: np.ndarray, crop: Crop, max_side: int) -> tuple[np.ndarray, float]:
    """The crop as a C-contiguous patch, and its scale (patch pixels per image pixel).

    A crop inside the image comes back at full resolution (scale 1): the MediaPipe graphs
    resample their input themselves, faster than a separate resize would. A crop reaching
    past the border is resampled (bilinear) to a long side of at most ``max_side`` pixels,
    with black outside the image.
    """
    h, w = image.shape[:2]
    x0, y0 = round(crop.x0), round(crop.y0)
    x1, y1 = x0 + round(crop.width), y0 + round(crop.height)
    if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        return np.ascontiguousarray(image[y0:y1, x0:x1]), 1.0
    scale = min(1.0, max_side / max(crop.width, crop.height))
    out_w, out_h = max(1, round(crop.width * scale)), max(1, round(crop.height * scale))
    sx, sy = out_w / crop.width, out_h / crop.height
    m = np.array([[sx, 0.0, -crop.x0 * sx], [0.0, sy, -crop.y0 * sy]])
    patch = cv2.warpAffine(image, m, (out_w, out_h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return patch, sx


def halve_to(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The image halved (2 x 2 pixel means) until its long side is at most ``max_side``, and
    the scale (reduced pixels per image pixel: 1, 1/2, 1/4, ...).

    Halving an even-sized image is OpenCV's fast area path; an odd last row or column is left
    out (it lies past ``width * scale`` reduced pixels, so coordinates map back exactly as
    ``x / scale``). Other area ratios take OpenCV's slow path (~80 ms for a 24-megapixel photo).
    """
    scale = 1.0
    while max(image.shape[:2]) > max_side and min(image.shape[:2]) >= 2:
        h, w = image.shape[0] // 2, image.shape[1] // 2
        image = cv2.resize(image[: 2 * h, : 2 * w], (w, h), interpolation=cv2.INTER_AREA)
        scale /= 2
    return image, scale


def clip_box(box, w: int, h: int) -> Box:
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = min(max(x0, 0.0), w), min(max(x1, 0.0), w)
    y0, y1 = min(max(y0, 0.0), h), min(max(y1, 0.0), h)
    return (x0, y0, max(x0, x1), max(y0, y1))


def pixel_box(box, w: int, h: int) -> tuple[int, int, int, int]:
    """Integer slice bounds covering ``box`` inside a w x h image."""
    x0, y0, x1, y1 = box
    return (max(0, int(np.floor(x0))), max(0, int(np.floor(y0))),
            min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1))))


def points_box(points: np.ndarray, margin: float = 0.1) -> Box:
    """Bounds of (N, 2) points widened by ``margin`` of their extent on each side."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    m = margin * (hi - lo)
    return (float(lo[0] - m[0]), float(lo[1] - m[1]), float(hi[0] + m[0]), float(hi[1] + m[1]))


def box_centre(box: Box) -> np.ndarray:
    """(2,) the centre of a box (x0, y0, x1, y1)."""
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def union_box(boxes: list[Box]) -> Box:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))


def _intersection(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def iou(a: Box, b: Box) -> float:
    inter = _intersection(a, b)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area (1 when one box holds the other)."""
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return _intersection(a, b) / smaller if smaller > 0 else 0.0


def square_tiles(w: int, h: int, side: int) -> list[Crop]:
    """Square windows of ``side`` px with half-side overlap covering a w x h image."""
    side = int(min(side, w, h))
    step = max(1, side // 2)

    def starts(n: int) -> list[int]:
        s = list(range(0, n - side + 1, step))
        if s[-1] + side < n:
            s.append(n - side)
        return s

    return [Crop(float(x), float(y), float(side), float(side)) for y in starts(h) for x in starts(w)]


def unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else np.zeros_like(v)


def hand_crop(
    shoulder: np.ndarray, elbow: np.ndarray, wrist: np.ndarray, knuckles: np.ndarray, scale: float
) -> Crop | None:
    """Square crop for one hand from the pose's arm points and mean hand (knuckle) point.

    Arm length estimate: the largest of the forearm, 0.9 x the upper arm and 2 x the
    wrist-to-knuckles distance (a forearm pointing at the camera looks short; all three
    rarely do). The centre lies 0.35 arm lengths past the wrist along the mean of the forearm
    and wrist-to-knuckles directions (the hand continues the forearm but may bend). Side:
    ``scale`` arm lengths, at least 32 px. None when the arm is degenerate.
    """
    length = max(float(np.linalg.norm(wrist - elbow)), 0.9 * float(np.linalg.norm(elbow - shoulder)),
                 2.0 * float(np.linalg.norm(knuckles - wrist)))
    if not np.isfinite(length) or length < 4.0:
        return None
    centre = wrist + 0.35 * length * unit(unit(wrist - elbow) + unit(knuckles - wrist))
    side = max(scale * length, 32.0)
    return Crop(float(centre[0] - side / 2), float(centre[1] - side / 2), side, side)


def person_crop_from_face(face: Box) -> Crop:
    """Upright window where the body under a face should lie: 5 x 10 face heights.

    A standing adult is about 7.5 head heights, ~9-10 face-box heights; the window starts one
    face height above the face and is narrow so that neighbours in a row are mostly left out.
    """
    x0, y0, x1, y1 = face
    fh = max(y1 - y0, 1.0)
    cx = (x0 + x1) / 2
    return Crop(cx - 2.5 * fh, y0 - fh, 5.0 * fh, 10.0 * fh)


def crop_centre_overlaps(crop: Crop, w: int, h: int, slack: float = 0.25) -> bool:
    """The crop's centre lies inside the image or within ``slack`` crop sides of it."""
    cx, cy = crop.centre
    sx, sy = slack * crop.width, slack * crop.height
    return bool(-sx <= cx <= w + sx and -sy <= cy <= h + sy)


def body_in_window(landmarks, world_landmarks, crop: Crop) -> BodyLandmarks:
    """MediaPipe's 33 pose landmarks (normalised to the patch that showed ``crop``) and its world
    landmarks as :class:`BodyLandmarks` in full-image pixels. MediaPipe's pose graphs leave the
    presence field unset."""
    uv = np.array([(p.x, p.y) for p in landmarks], dtype=np.float64)
    return BodyLandmarks(
        xy=uv * (crop.width, crop.height) + (crop.x0, crop.y0),
        visibility=np.array([p.visibility for p in landmarks]),
        world=np.array([(p.x, p.y, p.z) for p in world_landmarks]),
        presence=None,
    )
