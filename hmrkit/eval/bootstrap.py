"""Paired bootstrap intervals: is a difference between two models on the same samples more than
the luck of which samples were drawn? (Used by the Tab. 3 ablation of ``bench_lite_i2l.py``.)"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PairedDifference:
    mean: float  # mean of a - b over the samples
    low: float  # percentile interval of that mean over resampled sample sets
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0


def paired_difference(a: np.ndarray, b: np.ndarray, resamples: int = 2000, level: float = 0.95,
                      seed: int = 0) -> PairedDifference:
    """Mean of ``a - b`` (per-sample scores of two models on the same samples) and its bootstrap
    percentile interval: the samples are resampled with replacement, pairs kept together."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired scores must be two equal 1-D arrays, got {a.shape} and {b.shape}")
    diff = a - b
    draws = np.random.default_rng(seed).integers(0, len(diff), size=(resamples, len(diff)))
    means = diff[draws].mean(1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return PairedDifference(float(diff.mean()), float(low), float(high))
