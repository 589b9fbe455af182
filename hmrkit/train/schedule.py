"""The trainers' learning-rate schedule."""

from __future__ import annotations

import math
from typing import Protocol


class Scheduled(Protocol):
    lr: float  # peak learning rate
    warmup: int  # steps of linear warm-up
    steps: int  # all steps


def learning_rate(cfg: Scheduled, step: int) -> float:
    """Linear warm-up, then cosine decay to 2 % of ``lr``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))
