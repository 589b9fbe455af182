"""Where the hands' landmarks come from, a stage between perception and the fit.

MediaPipe Hands on wrist crops is perception's own and the default. The Lite I2L MeshNet
(``hmrkit.hands.lite_i2l_estimator``, trained on synthetic hands only) can replace it on every
seen wrist, or serve as a second opinion on the wrists where MediaPipe found no hand. Both
network uses are off by default: on real hands the network measured far worse than MediaPipe
(docs/lite_i2l.md). The network's module is imported only when it is used (start-up time).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from hmrkit.perception.types import Perception


class HandEstimator(Enum):
    MEDIAPIPE = "mediapipe"  # MediaPipe Hands on wrist crops (perception's hands)
    LITE_I2L = "lite-i2l"  # the Lite I2L MeshNet on every seen wrist


@dataclass(frozen=True)
class HandChoice:
    estimator: HandEstimator = HandEstimator.MEDIAPIPE
    fallback: bool = False  # with MEDIAPIPE: the network on the wrists where MediaPipe found no hand

    @property
    def uses_network(self) -> bool:
        return self.estimator is HandEstimator.LITE_I2L or self.fallback

    def stage(self) -> NetworkHands | None:
        """The network stage this choice needs, loaded now (its weights checked: a damaged file is one
        ``ModelAssetError`` line before any image; loaded once per process), or None."""
        return NetworkHands(self) if self.uses_network else None


class NetworkHands:
    """The stage: ``choice.stage()(rgb, perception) -> Perception`` with the network's hands in."""

    def __init__(self, choice: HandChoice):
        from hmrkit.hands.lite_i2l_estimator import shipped_estimator

        self.replace_all = choice.estimator is HandEstimator.LITE_I2L
        self.estimator = shipped_estimator()

    def __call__(self, rgb: np.ndarray, perception: Perception) -> Perception:
        from hmrkit.hands.lite_i2l_estimator import network_hands

        return network_hands(rgb, perception, replace_all=self.replace_all, estimator=self.estimator)
