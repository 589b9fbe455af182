"""The interface every perception backend offers, so the pipeline never imports MediaPipe."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from hmrkit.perception.types import Perception


@runtime_checkable
class PerceptionBackend(Protocol):
    """Finds people, body landmarks and hands in RGB uint8 HxWx3 images."""

    def detect(self, image_rgb: np.ndarray) -> Perception:
        """Landmarks of everyone found; an empty ``people`` list when nobody is there."""
        ...

    def close(self) -> None:
        """Free the backend's resources; the object is unusable afterwards."""
        ...
