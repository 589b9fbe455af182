"""Perception front end: people, 33 body landmarks and 21-point hands from RGB images.

The pipeline talks to a ``PerceptionBackend``; ``MediaPipeBackend`` is the bundled one.
"""

from hmrkit.perception.backend import PerceptionBackend
from hmrkit.perception.mediapipe_backend import MediaPipeBackend, MediaPipeConfig
from hmrkit.perception.types import (
    HAND21_NAMES,
    MEDIAPIPE33_NAMES,
    BodyLandmarks,
    HandLandmarks,
    Perception,
    PersonDetection,
    mp33_index,
)

__all__ = [
    "HAND21_NAMES",
    "MEDIAPIPE33_NAMES",
    "BodyLandmarks",
    "HandLandmarks",
    "MediaPipeBackend",
    "MediaPipeConfig",
    "Perception",
    "PerceptionBackend",
    "PersonDetection",
    "mp33_index",
]
