"""Similarity Procrustes (Umeyama 1991): the scale, rotation and translation that best map one
point set onto another, as used by PA-MPJPE and by fitting initializations.

The solver (:func:`rigid_registration`) is Umeyama's SVD in float64: it returns a proper rotation
(det +1) even when the best orthogonal map would be a reflection, with the sign-corrected scale. It
replaces ``roma.rigid_points_registration`` (the same optimum; roma's import costs ``hmrkit run``
about 1.4 s of start-up, see :mod:`hmrkit.geometry.rotations`).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def rigid_registration(
    source: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None, scaling: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rotation (B, D, D), translation (B, D) and scale (B,) (ones unless ``scaling``) minimizing
    ``sum_i w_i |s R x_i + t - y_i|^2`` for (B, N, D) point sets, ``weights`` (B, N) or None (uniform).

    Umeyama (1991): with M = sum_i w_i y_i x_i^T (centred) = U S V^T, R = U diag(1, .., det(U V^T)) V^T,
    s = tr(R^T M) / sum_i w_i |x_i|^2, t = mean(y) - s R mean(x). Solved in float64, returned in the
    input's dtype; differentiable where the singular values are distinct.
    """
    dtype = source.dtype
    x, y = source.double(), target.double()
    w = torch.full(x.shape[:-1], 1.0 / x.shape[-2], dtype=x.dtype) if weights is None else weights.double()
    w = w / w.sum(-1, keepdim=True)
    x_mean, y_mean = torch.einsum("bk,bki->bi", w, x), torch.einsum("bk,bki->bi", w, y)
    x, y = x - x_mean[:, None], y - y_mean[:, None]
    M = torch.einsum("bk,bki,bkj->bij", w, y, x)
    U, _, Vt = torch.linalg.svd(M)
    flip = torch.ones(M.shape[:-1], dtype=M.dtype)
    flip[:, -1] = 1 - 2 * (torch.det(U) * torch.det(Vt) < 0).to(M.dtype)  # a reflection -> the closest rotation
    rotation = (U * flip[:, None, :]) @ Vt
    scale = (rotation * M).sum((-2, -1)) / torch.einsum("bk,bki,bki->b", w, x, x) if scaling else torch.ones_like(w[:, 0])
    translation = y_mean - scale[:, None] * torch.einsum("bij,bj->bi", rotation, x_mean)
    return rotation.to(dtype), translation.to(dtype), scale.to(dtype)


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
    rotation, translation, scale = rigid_registration(source, target, weights, scaling=True)
    transform = Similarity(scale, rotation, translation)
    return transform.apply(source), transform
