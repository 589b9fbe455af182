"""Limb differences as in AJAHR: an absent limb is its subtree collapsed onto its root joint.

Collapsing is a zero scale of the subtree root's local transform (see
:func:`hmrkit.body.kinematics.forward_kinematics`): every vertex the subtree carries lands on
the root joint, so the stump ends there, and gradients stay finite. The faces of a collapsed
part become zero-area; renderers and exporters must tolerate (or drop) them.

The 12 types are, per side: ``hand`` (collapse at the wrist), ``forearm`` (at the elbow),
``arm`` (at the shoulder), ``foot`` (below the ankle), ``lower_leg`` (below the knee), ``leg``
(at the hip). Joints strictly below the collapse joint are reported absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hmrkit.body.base import Skeleton


@dataclass(frozen=True)
class LimbLoss:
    name: str  # e.g. "left_forearm"
    joint: str  # the joint whose subtree collapses onto it


def _types() -> tuple[LimbLoss, ...]:
    parts = (("hand", "wrist"), ("forearm", "elbow"), ("arm", "shoulder"), ("foot", "ankle"), ("lower_leg", "knee"), ("leg", "hip"))
    return tuple(LimbLoss(f"{side}_{part}", f"{side}_{joint}") for side in ("left", "right") for part, joint in parts)


LIMB_LOSSES: tuple[LimbLoss, ...] = _types()


def limb_loss(name: str) -> LimbLoss:
    for loss in LIMB_LOSSES:
        if loss.name == name:
            return loss
    raise ValueError(f"unknown limb type {name!r}; known: {', '.join(l.name for l in LIMB_LOSSES)}")


def collapse_scales(skeleton: Skeleton, losses: list[LimbLoss] | tuple[LimbLoss, ...], batch: int = 1) -> torch.Tensor:
    """(B, J) joint scales for :meth:`BodyModel.forward`: 0 at each collapse joint, 1 elsewhere."""
    scales = torch.ones(batch, len(skeleton))
    for loss in losses:
        scales[:, skeleton.index(loss.joint)] = 0.0
    return scales


def absent_joints(skeleton: Skeleton, losses: list[LimbLoss] | tuple[LimbLoss, ...]) -> list[str]:
    """Names of the joints removed by ``losses`` (strict descendants of each collapse joint)."""
    gone: set[int] = set()
    for loss in losses:
        root = skeleton.index(loss.joint)
        gone.update(j for j in skeleton.subtree(root) if j != root)
    return [skeleton.names[j] for j in sorted(gone)]


def absent_keypoints(names: tuple[str, ...], owners: torch.Tensor, skeleton: Skeleton, losses) -> list[str]:
    """Keypoint names whose owning joint (:func:`hmrkit.body.keypoints.keypoint_owners`) is removed."""
    gone = set(absent_joints(skeleton, losses))
    return [n for n, j in zip(names, owners.tolist()) if skeleton.names[j] in gone]
