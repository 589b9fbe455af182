"""HMR's adversarial pose prior (Kanazawa et al. 2018), for HKMR's "discriminator" ablation.

A shared small network embeds each joint's rotation matrix (HMR's 1x1 convolutions); one
linear score per joint reads its embedding, and an MLP reads all of them for a whole-pose
score. Trained as a least-squares GAN against real (mocap) poses.
"""

from __future__ import annotations

import torch
from torch import nn

from hmrkit.models.pose_prior import NUM_POSE_JOINTS


class PoseDiscriminator(nn.Module):
    """(B, 21, 3, 3) body-joint rotations (no global orientation) -> (B, 22) scores (21 joints + whole)."""

    def __init__(self, joints: int = NUM_POSE_JOINTS, width: int = 32, hidden: int = 1024):
        super().__init__()
        self.joints = joints
        self.embed = nn.Sequential(nn.Linear(9, width), nn.LeakyReLU(0.1), nn.Linear(width, width), nn.LeakyReLU(0.1))
        self.per_joint = nn.Parameter(torch.randn(joints, width) * (1.0 / width) ** 0.5)
        self.per_joint_bias = nn.Parameter(torch.zeros(joints))
        self.whole = nn.Sequential(
            nn.Linear(joints * width, hidden), nn.LeakyReLU(0.1),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.1),
            nn.Linear(hidden, 1),
        )  # fmt: skip

    def forward(self, rotations: torch.Tensor) -> torch.Tensor:
        if rotations.ndim != 4 or rotations.shape[1:] != (self.joints, 3, 3):
            raise ValueError(f"discriminator takes rotations of shape (B, {self.joints}, 3, 3), got {tuple(rotations.shape)}")
        h = self.embed(rotations.flatten(2))  # (B, J, width)
        joint_scores = (h * self.per_joint).sum(-1) + self.per_joint_bias
        return torch.cat([joint_scores, self.whole(h.flatten(1))], dim=1)


def generator_loss(scores: torch.Tensor) -> torch.Tensor:
    """LSGAN: the regressor wants its poses scored as real (1)."""
    return (scores - 1).square().mean()


def discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """LSGAN: real poses to 1, regressed ones to 0."""
    return (real_scores - 1).square().mean() + fake_scores.square().mean()
