"""Other views of a photo for a second look when nobody was found in it (issue 15).

MediaPipe's person detector is neither mirror- nor rotation-invariant, and it needs the
whole body's ROI inside its input. On the first 300 lspet_dev photos, 26 gave nobody; the pose
model found a person in 22 of them on at least one of: the photo padded by a quarter of its long
side (10), mirrored (10), or turned by 90 (10), 180 (11) or 270 degrees (13) -- sports photos of
people cut by the border, upside down or lying (a development run; what the retries give
through the pipeline is measured in benchmarks/results/people_*.md).

Each view is the transformed image and the way back: an affine map from the view's pixels to
the photo's, the turn of the camera axes for MediaPipe's metric world points, and whether the
view is mirrored (then the person's left and right landmarks swap).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hmrkit.perception.types import BodyLandmarks


@dataclass(frozen=True)
class View:
    """A transformed copy of a photo and the way back to the photo's pixels and axes."""

    image: np.ndarray
    to_photo: np.ndarray  # (2, 3): view pixel (x, y, 1) -> photo pixel
    axes: np.ndarray  # (3, 3): view camera axes -> photo camera axes (world points)
    mirrored: bool

    def points_back(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) pixels of this view as pixels of the photo."""
        return np.asarray(xy, np.float64) @ self.to_photo[:, :2].T + self.to_photo[:, 2]

    def body_back(self, body: BodyLandmarks) -> BodyLandmarks:
        """Landmarks found in this view, as landmarks of the photo."""
        back = BodyLandmarks(xy=self.points_back(body.xy), visibility=body.visibility,
                             world=body.world.astype(np.float64) @ self.axes.T, presence=body.presence)
        return back.sides_exchanged() if self.mirrored else back  # in a mirror the left looks like a right


def retry_views(image: np.ndarray, pad: float = 0.25) -> list[View]:
    """The views tried in turn: padded (black border of ``pad`` x the long side), mirrored,
    then the :func:`turned_views`."""
    h, w = image.shape[:2]
    p = int(round(pad * max(h, w)))
    return [
        View(cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_CONSTANT, value=(0, 0, 0)),
             np.array([[1.0, 0.0, -p], [0.0, 1.0, -p]]), np.eye(3), False),
        mirrored_view(image),
        *turned_views(image),
    ]


def mirrored_view(image: np.ndarray) -> View:
    """The photo mirrored left to right."""
    w = image.shape[1]
    return View(np.ascontiguousarray(image[:, ::-1]), np.array([[-1.0, 0.0, w - 1.0], [0.0, 1.0, 0.0]]),
                np.diag([-1.0, 1.0, 1.0]), True)


def turned_views(image: np.ndarray) -> list[View]:
    """The photo turned 90 degrees clockwise, 90 counter-clockwise and 180 (pixel centres at integers)."""
    h, w = image.shape[:2]
    z = np.array([[0.0, 0.0, 1.0]])
    turn = lambda a, b, c, d: np.vstack([np.array([[a, b, 0.0], [c, d, 0.0]]), z])  # noqa: E731
    return [
        # clockwise: photo (x, y) -> view (h - 1 - y, x)
        View(cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE), np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, h - 1.0]]),
             turn(0.0, 1.0, -1.0, 0.0), False),
        # counter-clockwise: photo (x, y) -> view (y, w - 1 - x)
        View(cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE), np.array([[0.0, -1.0, w - 1.0], [1.0, 0.0, 0.0]]),
             turn(0.0, -1.0, 1.0, 0.0), False),
        View(cv2.rotate(image, cv2.ROTATE_180), np.array([[-1.0, 0.0, w - 1.0], [0.0, -1.0, h - 1.0]]),
             np.diag([-1.0, -1.0, 1.0]), False),
    ]
