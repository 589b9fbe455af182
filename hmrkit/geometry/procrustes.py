"""Similarity Procrustes (Umeyama 1991): the scale, rotation and translation that best map one
point set onto another, as used by PA-MPJPE and by fitting initializations.

The solver is ``roma.rigid_points_registration``: it returns a proper rotation (det +1) even when
the best orthogonal map would be a reflection, with Umeyama's sign-corrected scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import roma
import torch


@dataclass(frozen=True)
class Similarity:
    """``x -> scale * rotation @ x + translation``; scale (B,), rotation (B, D, D), translation (B, D)."""

    scale: torch.Tensor
    rotation: torch.Tensor
    translation: torch.Tensor

    def apply(self, points: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D)."""
        return self.scale[:, None, None] * points @ self.rotation.transpose(-1, -2) + self.translation[:, None, :]


def procrustes_align(
    source: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, Similarity]:
    """Align ``source`` (B, N, D) onto ``target`` (B, N, D), minimizing ``sum_i w_i |s R x_i + t - y_i|^2``.

    ``weights`` is (B, N) or (N,), non-negative, or a boolean mask; zero-weight points take no part
    in the fit (they are still transformed). Returns the aligned source and the transform.
    Differentiable. With fewer than D non-collinear weighted points the rotation is not unique.
    """
    if source.ndim != 3 or source.shape != target.shape:
        raise ValueError(
            f"source and target must both have shape (B, N, D), got {tuple(source.shape)} and {tuple(target.shape)}"
        )
    if weights is not None:
        weights = weights.to(source)
        if weights.shape not in (source.shape[1:2], source.shape[:2]):
            raise ValueError(
                f"weights must have shape (N,) or (B, N) = {tuple(source.shape[:2])}, got {tuple(weights.shape)}"
            )
        weights = weights.expand(source.shape[:2])
        if bool((weights < 0).any()) or not bool((weights.sum(-1) > 0).all()):
            raise ValueError("weights must be non-negative with at least one positive weight per sample")
    rotation, translation, scale = roma.rigid_points_registration(source, target, weights, compute_scaling=True)
    transform = Similarity(scale, rotation, translation)
    return transform.apply(source), transform
