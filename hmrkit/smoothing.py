"""Temporal smoothing for video: the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012).

Little lag on fast motion, strong smoothing of jitter when still: the cutoff frequency grows
with the (smoothed) speed. Applied to the fitted parameters, so the mesh, keypoints and
hands all stay consistent; rotations are filtered in their 6D form and re-orthonormalized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from hmrkit.fitting.body_fit import BodyFit
from hmrkit.geometry.rotations import matrix_to_sixd, sixd_to_matrix


@dataclass
class OneEuroConfig:
    min_cutoff: float = 1.5  # Hz: smoothing when still (lower = smoother)
    beta: float = 0.3  # how fast the cutoff rises with speed (higher = less lag)
    derivative_cutoff: float = 1.0  # Hz


def _alpha(cutoff: torch.Tensor | float, dt: float) -> torch.Tensor | float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters a tensor signal sample by sample; ``reset`` when the signal's meaning changes."""

    def __init__(self, config: OneEuroConfig | None = None):
        self.config = config or OneEuroConfig()
        self.reset()

    def reset(self) -> None:
        self.value: torch.Tensor | None = None
        self.speed: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor, dt: float) -> torch.Tensor:
        if self.value is None or self.value.shape != x.shape:
            self.value, self.speed = x.clone(), torch.zeros_like(x)
            return x
        cfg = self.config
        speed = (x - self.value) / dt
        a_d = _alpha(cfg.derivative_cutoff, dt)
        self.speed = a_d * speed + (1 - a_d) * self.speed
        a = _alpha(cfg.min_cutoff + cfg.beta * self.speed.abs(), dt)
        self.value = a * x + (1 - a) * self.value
        return self.value


class FitSmoother:
    """One-Euro filters on a video's fitted rotations (6D), translations and shapes."""

    def __init__(self, config: OneEuroConfig | None = None):
        self.rotations = OneEuroFilter(config)
        self.translation = OneEuroFilter(config)
        self.shape = OneEuroFilter(OneEuroConfig(min_cutoff=0.2, beta=0.0))  # a person's build barely changes
        self.track_ids: tuple[int | None, ...] = ()  # whose parameters the filters hold, in order

    def __call__(self, fit: BodyFit, dt: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if fit.track_ids != self.track_ids:  # other people (or the same in another order): start afresh
            for f in (self.rotations, self.translation, self.shape):
                f.reset()
            self.track_ids = fit.track_ids
        rotations = sixd_to_matrix(self.rotations(matrix_to_sixd(fit.rotations), dt))
        return rotations, self.shape(fit.shape, dt), self.translation(fit.translation, dt)
