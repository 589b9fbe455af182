"""Person segmentation under a body's landmarks: a second model's view of whether a body is a person.

MediaPipe's pose model places a confident body on person-like things: a fire hydrant, a dog, a
toy, a strip of railing at the border. The selfie segmentation model in the same wheel is trained
on other data and errs elsewhere, so where it sees no person under most of a body's seen
landmarks, the body is doubtful (``hmrkit.perception.plausibility`` then asks the landmark model's
own person flag as well). The mask is made on a square crop around the landmarks, so a small
person is seen at the model's resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from hmrkit.light_import import import_module_lightly
from hmrkit.perception.types import BodyLandmarks


class Silhouette:
    """Selfie segmentation on the crop around one body at a time. Not thread-safe."""

    def __init__(self, side: int = 256, margin: float = 0.3) -> None:
        self.side = side  # the crop's side in pixels (the model sees 256)
        self.margin = margin  # the crop reaches this share of the landmarks' extent past them
        self._model = None

    def close(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None

    def coverage(self, image: np.ndarray, body: BodyLandmarks, visible: float) -> float:
        """Mean person probability at the body's seen landmarks (visibility >= ``visible``;
        0 when none is seen or all lie outside the image)."""
        seen = body.visibility >= visible
        if not seen.any():
            return 0.0
        lo, hi = body.xy.min(axis=0), body.xy.max(axis=0)
        half = float(max(hi - lo)) / 2 * (1 + self.margin) + 4.0
        centre = (lo + hi) / 2
        k = self.side / (2 * half)
        to_crop = np.array([[k, 0.0, -(centre[0] - half) * k], [0.0, k, -(centre[1] - half) * k]])
        crop = cv2.warpAffine(image, to_crop, (self.side, self.side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        mask = self._segmenter().process(np.ascontiguousarray(crop)).segmentation_mask
        h, w = image.shape[:2]
        xy = body.xy[seen]
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
        if not inside.any():
            return 0.0
        ij = np.clip(np.round(xy[inside] @ to_crop[:, :2].T + to_crop[:, 2]).astype(int), 0, self.side - 1)
        return float(mask[ij[:, 1], ij[:, 0]].mean())

    def _segmenter(self):
        if self._model is None:
            solution = import_module_lightly("mediapipe.python.solutions.selfie_segmentation")
            self._model = solution.SelfieSegmentation(model_selection=0)  # the general (square) model
        return self._model
