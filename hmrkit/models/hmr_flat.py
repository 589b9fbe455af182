"""The flat baseline: HMR's iterative error feedback (IEF) regressor (Kanazawa et al., CVPR 2018).

Features, the current pose (all 22 joints, 6D), shape and camera go through one MLP (two
hidden layers of 1024 with dropout, as in HMR/SPIN) that outputs residuals for all of them
at once; three iterations from the mean pose. No kinematic structure: the HKMR paper's
"features-in-parameters-out" regressor, with the same encoder, outputs and losses as HKMR.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.models.hkmr import CAMERA_DIM, NUM_SHAPE, SIXD, RegressorOutput, camera_from_raw, initial_sixd


@dataclass(frozen=True)
class FlatConfig:
    feature_dim: int = 512
    hidden: int = 1024
    iterations: int = 3
    dropout: float = 0.5


class FlatHead(nn.Module):
    """Phi (B, F) -> :class:`RegressorOutput`, one entry per IEF iteration."""

    def __init__(self, config: FlatConfig = FlatConfig()):
        super().__init__()
        self.config = config
        pose = NUM_BODY_CORE * SIXD
        self.net = nn.Sequential(
            nn.Linear(config.feature_dim + pose + NUM_SHAPE + CAMERA_DIM, config.hidden), nn.ReLU(), nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.hidden), nn.ReLU(), nn.Dropout(config.dropout),
        )  # fmt: skip
        self.pose = nn.Linear(config.hidden, pose)
        self.shape = nn.Linear(config.hidden, NUM_SHAPE)
        self.camera = nn.Linear(config.hidden, CAMERA_DIM)
        for layer in (self.pose, self.shape, self.camera):
            nn.init.xavier_uniform_(layer.weight, gain=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor) -> RegressorOutput:
        b = features.shape[0]
        theta = initial_sixd(b, features.dtype).to(features.device).flatten(1)
        shape_logit = features.new_zeros(b, NUM_SHAPE)
        camera_raw = features.new_zeros(b, CAMERA_DIM)
        out = RegressorOutput()
        for _ in range(self.config.iterations):
            h = self.net(torch.cat([features, theta, shape_logit, camera_raw], dim=1))
            theta = theta + self.pose(h)
            shape_logit = shape_logit + self.shape(h)
            camera_raw = camera_raw + self.camera(h)
            out.append(theta.reshape(b, NUM_BODY_CORE, SIXD), shape_logit, camera_from_raw(camera_raw))
        return out
