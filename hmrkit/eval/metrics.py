"""Standard metrics of 3D human and hand mesh recovery, plus classification metrics.

Inputs are torch tensors or numpy arrays; outputs come back as the same kind. Distances are in
the input's units (metres in hmrkit; multiply by 1000 for the usual millimetres). Per-sample
results keep the batch axis so callers choose how to aggregate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hmrkit.geometry.arrays import Array, as_tensor, like
from hmrkit.geometry.crops import bounding_rect
from hmrkit.geometry.procrustes import procrustes_align


def _point_pair(pred: Array, target: Array, dim: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = as_tensor(pred), as_tensor(target)
    if p.ndim != 3 or p.shape != t.shape or (dim is not None and p.shape[-1] != dim):
        want = "(B, N, D)" if dim is None else f"(B, N, {dim})"
        raise ValueError(f"pred and target must both have shape {want}, got {tuple(p.shape)} and {tuple(t.shape)}")
    return p, t.to(p)


def _point_mask(mask: Array | None, points: torch.Tensor) -> torch.Tensor:
    """(B, N) boolean mask from None, (N,) or (B, N); every sample must keep a point."""
    batch_points = points.shape[:2]
    if mask is None:
        return torch.ones(batch_points, dtype=torch.bool, device=points.device)
    m = as_tensor(mask, floating=False).bool().to(points.device)
    if m.shape not in (batch_points[1:], batch_points):
        raise ValueError(f"mask must have shape (N,) or (B, N) = {tuple(batch_points)}, got {tuple(m.shape)}")
    m = m.expand(batch_points)
    if not bool(m.any(-1).all()):
        raise ValueError("mask leaves a sample with no point")
    return m


def _mean_distance(p: torch.Tensor, t: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Per-sample mean Euclidean distance over the masked points."""
    m = m.to(p.dtype)
    return ((p - t).norm(dim=-1) * m).sum(-1) / m.sum(-1)


def mpjpe(pred: Array, target: Array, mask: Array | None = None, root: int | Sequence[int] | None = None) -> Array:
    """Mean per-joint position error (B,) of (B, J, 3) joints.

    ``root``: joint index, or indices whose mean is the root (e.g. both hips for a pelvis);
    when given, each skeleton is first translated so its root is at the origin.
    """
    p, t = _point_pair(pred, target, 3)
    if root is not None:
        idx = [root] if isinstance(root, int) else list(root)
        if not idx or not all(-p.shape[1] <= i < p.shape[1] for i in idx):
            raise ValueError(f"root indices {root} out of range for {p.shape[1]} joints")
        p = p - p[:, idx].mean(1, keepdim=True)
        t = t - t[:, idx].mean(1, keepdim=True)
    return like(_mean_distance(p, t, _point_mask(mask, p)), pred)


def _pa_error(pred: Array, target: Array, mask: Array | None) -> Array:
    p, t = _point_pair(pred, target, 3)
    m = _point_mask(mask, p)
    aligned, _ = procrustes_align(p, t, m)
    return like(_mean_distance(aligned, t, m), pred)


def pa_mpjpe(pred: Array, target: Array, mask: Array | None = None) -> Array:
    """MPJPE (B,) after similarity Procrustes of pred onto target over the masked joints."""
    return _pa_error(pred, target, mask)


def pve(
    pred_vertices: Array,
    target_vertices: Array,
    mask: Array | None = None,
    pred_root: Array | None = None,
    target_root: Array | None = None,
) -> Array:
    """Per-vertex error (B,) of (B, V, 3) meshes.

    ``pred_root`` / ``target_root`` (B, 3), e.g. each mesh's pelvis joint, are subtracted first
    (the usual root-aligned PVE); without them the meshes are compared as given.
    """
    p, t = _point_pair(pred_vertices, target_vertices, 3)
    for name, r in (("pred_root", pred_root), ("target_root", target_root)):
        if r is not None and tuple(as_tensor(r).shape) != (p.shape[0], 3):
            raise ValueError(f"{name} must have shape ({p.shape[0]}, 3), got {tuple(as_tensor(r).shape)}")
    if pred_root is not None:
        p = p - as_tensor(pred_root).to(p)[:, None]
    if target_root is not None:
        t = t - as_tensor(target_root).to(t)[:, None]
    return like(_mean_distance(p, t, _point_mask(mask, p)), pred_vertices)


def pa_pve(pred_vertices: Array, target_vertices: Array, mask: Array | None = None) -> Array:
    """Per-vertex error (B,) after similarity Procrustes over the masked vertices."""
    return _pa_error(pred_vertices, target_vertices, mask)


@dataclass(frozen=True)
class FScore:
    """F-score, precision and recall, each (B, T) for the T thresholds."""

    thresholds: tuple[float, ...]
    f: Array
    precision: Array
    recall: Array


def f_score(
    pred_points: Array, target_points: Array, thresholds: Sequence[float] = (0.005, 0.015), chunk: int = 2048
) -> FScore:
    """F-score of point sets (B, N, D) and (B, M, D), no correspondence needed (FreiHAND).

    Precision: share of predicted points whose nearest target point is closer than the threshold;
    recall: share of target points whose nearest predicted point is. ``F = 2PR / (P + R)``, 0 when
    both are 0. Default thresholds are FreiHAND's 5 mm and 15 mm in metres. Distances are
    computed ``chunk`` predicted points at a time to bound memory.
    """
    p, t = as_tensor(pred_points), as_tensor(target_points)
    if p.ndim != 3 or t.ndim != 3 or p.shape[0] != t.shape[0] or p.shape[2] != t.shape[2]:
        raise ValueError(
            f"pred_points and target_points must have shapes (B, N, D) and (B, M, D), got {tuple(p.shape)}"
            f" and {tuple(t.shape)}"
        )
    if p.shape[1] == 0 or t.shape[1] == 0:
        raise ValueError("f_score needs at least one point in each set")
    t = t.to(p)
    to_target, to_pred = [], torch.full(t.shape[:2], torch.inf, dtype=p.dtype, device=p.device)
    for start in range(0, p.shape[1], chunk):
        d = torch.cdist(p[:, start : start + chunk], t)  # (B, c, M)
        to_target.append(d.amin(2))
        to_pred = torch.minimum(to_pred, d.amin(1))
    nearest_target = torch.cat(to_target, 1)
    th = torch.as_tensor(list(thresholds), dtype=p.dtype, device=p.device)
    precision = (nearest_target[..., None] < th).to(p.dtype).mean(1)
    recall = (to_pred[..., None] < th).to(p.dtype).mean(1)
    denom = precision + recall
    f = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(torch.finfo(p.dtype).tiny), 0.0)
    return FScore(
        thresholds=tuple(float(x) for x in thresholds),
        f=like(f, pred_points),
        precision=like(precision, pred_points),
        recall=like(recall, pred_points),
    )


@dataclass(frozen=True)
class PCK:
    """Share of visible keypoints within the threshold: over all of them, and per joint (J,)
    (NaN for a joint never visible)."""

    overall: float
    per_joint: Array


def torso_size(keypoints: Array, joint_a: int, joint_b: int) -> Array:
    """(B,) distance between two joints of (B, J, 2) keypoints, e.g. a shoulder and the opposite hip."""
    k = as_tensor(keypoints)
    if k.ndim != 3:
        raise ValueError(f"keypoints must have shape (B, J, 2), got {tuple(k.shape)}")
    return like((k[:, joint_a] - k[:, joint_b]).norm(dim=-1), keypoints)


def box_size(keypoints: Array, visible: Array | None = None) -> Array:
    """(B,) longer side of the tight box around the visible (B, J, 2) keypoints."""
    lo, hi = bounding_rect(keypoints, visible)
    return like((hi - lo).amax(-1), keypoints)


def pck(pred: Array, target: Array, normalizer: Array, alpha: float, visible: Array | None = None) -> PCK:
    """Percentage of correct 2D keypoints: ``|pred - target| <= alpha * normalizer`` per sample.

    ``pred``/``target`` (B, J, 2); ``normalizer`` (B,), e.g. :func:`torso_size` (PCK@0.2 on LSP)
    or :func:`box_size`; ``visible`` (B, J) or (J,) selects the keypoints that count.
    """
    p, t = _point_pair(pred, target, 2)
    n = as_tensor(normalizer).to(p)
    if n.shape != p.shape[:1]:
        raise ValueError(f"normalizer must have shape ({p.shape[0]},), got {tuple(n.shape)}")
    vis = torch.ones(p.shape[:2], dtype=torch.bool) if visible is None else as_tensor(visible, floating=False).bool()
    vis = vis.to(p.device)
    if vis.shape not in (p.shape[1:2], p.shape[:2]):
        raise ValueError(f"visible must have shape (J,) or (B, J) = {tuple(p.shape[:2])}, got {tuple(vis.shape)}")
    vis = vis.expand(p.shape[:2])
    if not bool(vis.any()):
        raise ValueError("pck: no visible keypoint")
    if not bool((n[vis.any(1)] > 0).all()):
        raise ValueError("pck: normalizer must be positive for every sample with a visible keypoint")
    correct = ((p - t).norm(dim=-1) <= alpha * n[:, None]) & vis
    per_joint = correct.sum(0) / vis.sum(0)  # 0/0 -> NaN for never-visible joints
    overall = correct.sum().item() / vis.sum().item()
    return PCK(overall, like(per_joint.to(p.dtype), pred))


def acceleration_error(pred: Array, target: Array, valid: Array | None = None) -> Array:
    """Acceleration error (HMMR/VIBE) of (..., T, N, D) sequences: (..., T - 2) per frame.

    Mean over points of ``|a_pred - a_target|`` with ``a_t = x_{t-1} - 2 x_t + x_{t+1}``, in input
    units per frame^2. ``valid`` (..., T) marks usable frames; a triple touching an invalid frame
    gives NaN (use ``nanmean``).
    """
    p, t = as_tensor(pred), as_tensor(target)
    if p.ndim < 3 or p.shape != t.shape or p.shape[-3] < 3:
        raise ValueError(
            "pred and target must both have shape (..., T, N, D) with T >= 3,"
            f" got {tuple(p.shape)} and {tuple(t.shape)}"
        )
    t = t.to(p)

    def accel(x: torch.Tensor) -> torch.Tensor:
        return x[..., :-2, :, :] - 2 * x[..., 1:-1, :, :] + x[..., 2:, :, :]

    err = (accel(p) - accel(t)).norm(dim=-1).mean(-1)
    if valid is not None:
        v = as_tensor(valid, floating=False).bool().to(p.device)
        if v.shape != p.shape[:-2]:
            raise ValueError(f"valid must have shape {tuple(p.shape[:-2])}, got {tuple(v.shape)}")
        ok = v[..., :-2] & v[..., 1:-1] & v[..., 2:]
        err = torch.where(ok, err, torch.nan)
    return like(err, pred)


@dataclass(frozen=True)
class ClassificationMetrics:
    """Per-class arrays are (C,); ``confusion[i, j]`` counts true class i predicted as j.

    Precision/recall/F1 of a class absent from both labels and predictions are NaN and left out
    of ``macro_f1`` (scikit-learn's default label set); other 0/0 cases count as 0.
    """

    accuracy: float
    precision: Array
    recall: Array
    f1: Array
    macro_f1: float
    confusion: Array


def classification_metrics(pred: Array, target: Array, num_classes: int) -> ClassificationMetrics:
    """Metrics of (N,) integer predictions against (N,) integer labels in ``[0, num_classes)``."""
    p, t = as_tensor(pred, floating=False), as_tensor(target, floating=False)
    if p.ndim != 1 or p.shape != t.shape or p.numel() == 0:
        raise ValueError(f"pred and target must both have shape (N,), N > 0, got {tuple(p.shape)} and {tuple(t.shape)}")
    if p.is_floating_point() or t.is_floating_point():
        raise ValueError("pred and target must be integer class labels")
    p, t = p.long(), t.long().to(p.device)
    for name, x in (("pred", p), ("target", t)):
        if bool((x < 0).any() | (x >= num_classes).any()):
            raise ValueError(f"{name} has labels outside [0, {num_classes})")
    confusion = torch.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)
    tp = confusion.diagonal().double()
    predicted, actual = confusion.sum(0).double(), confusion.sum(1).double()
    precision = torch.where(predicted > 0, tp / predicted.clamp_min(1), 0.0)
    recall = torch.where(actual > 0, tp / actual.clamp_min(1), 0.0)
    pr = precision + recall
    f1 = torch.where(pr > 0, 2 * precision * recall / pr.clamp_min(1e-300), 0.0)
    present = (predicted + actual) > 0
    precision, recall, f1 = (torch.where(present, x, torch.nan) for x in (precision, recall, f1))
    return ClassificationMetrics(
        accuracy=tp.sum().item() / p.numel(),
        precision=like(precision, pred),
        recall=like(recall, pred),
        f1=like(f1, pred),
        macro_f1=f1[present].mean().item(),
        confusion=like(confusion, pred),
    )
