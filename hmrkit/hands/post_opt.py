"""Post-optimization (Fan & Wang 2023, sec. 3.4): refine angles and shape to fit 21 target joints.

Angles stay inside their limits by construction (a sigmoid per angle, see
:func:`~hmrkit.hands.biomech.bounded_angles`); phenotypes stay in [0, 1] the same way. The
loss is the mean joint distance plus the bend-direction regularizer (eq. 3), which penalizes
a finger whose DIP bends the other way than its PIP, plus a weak pull towards the angles of
``init`` when one is given: on noisy landmarks the IK net's answer is a better prior than the landmarks
(measured on synthetic hands, ``docs/hands.md``). ``known_shape`` keeps the user's
phenotypes fixed (the paper's "GT shape" setting). Without an ``init`` the fit starts from
the rest hand placed on the target palm: an optimization-only fallback to the IK net.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from hmrkit.geometry.rotations import axis_angle_to_matrix
from hmrkit.hands.biomech import FINGERS4, HAND21_CHAIN, NUM_ANGLES, bounded_angles, rotations_to_angles, unbounded_angles
from hmrkit.hands.hand_model import BiomechHand, HandFit, check_joints21, load_biomech_hand

_CHAINS4 = torch.tensor([HAND21_CHAIN[f] for f in FINGERS4])  # (4, 4): MCP, PIP, DIP, tip


@dataclass(frozen=True)
class PostOptConfig:
    """How the refinement steps (joint distances in mm; the regularizer is unitless).

    Adam (default) moves each hand of a batch independently; its learning rates are per
    parameter kind, in the units the parameters live in (angle and phenotype logits,
    radians for the wrist turn, centimetres for the wrist shift). L-BFGS (strong-Wolfe line
    search) shares one line search across the batch.
    """

    optimizer: Literal["adam", "lbfgs"] = "adam"
    bend_weight: float = 10.0  # mm of joint error one unit of bend violation costs
    prior_weight: float = 5.0  # mm per rad^2 of summed squared angle change from ``init`` (if given)
    angle_lr: float = 0.05
    shape_lr: float = 0.02
    rotation_lr: float = 0.01
    translation_lr: float = 0.05
    lbfgs_lr: float = 1.0


def bend_direction_penalty(joints: torch.Tensor) -> torch.Tensor:
    """(B, 21, 3) -> (B,) eq. 3 summed over index..little: ``relu(-(b_td x b_dp) . (b_dp x b_pm))``.

    ``b_xy`` are unit bone vectors (tip-DIP, DIP-PIP, PIP-MCP), so the value does not depend on
    the hand's size: 0 when PIP and DIP bend the same way (or a joint is straight), up to 1.
    """
    pts = joints[:, _CHAINS4.to(joints.device)]  # (B, 4, 4, 3)
    bones = pts[:, :, 1:] - pts[:, :, :-1]  # PIP-MCP, DIP-PIP, TIP-DIP
    bones = bones / bones.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    pm, dp, td = bones[:, :, 0], bones[:, :, 1], bones[:, :, 2]
    value = (torch.linalg.cross(td, dp) * torch.linalg.cross(dp, pm)).sum(-1)
    return torch.relu(-value).sum(-1)


def _initial(hand: BiomechHand, target: torch.Tensor, init: HandFit | None, known_shape: torch.Tensor | None,
             weights: torch.Tensor | None = None):
    batch = target.shape[0]
    if init is not None:
        angles, shape = init.angles.detach(), init.shape.detach()
        rotation, translation = init.global_rotation.detach(), init.translation.detach()
    else:
        angles = torch.zeros(batch, NUM_ANGLES, dtype=target.dtype)
        shape = hand.default_shape(batch).to(target)
        rotation = translation = None
    if known_shape is not None:
        shape = known_shape
    if rotation is None:
        with torch.no_grad():
            rotation, translation = hand.place(shape, target, weights)
    return angles, shape, rotation, translation


def check_known_shape(known_shape, batch: int, num_shape: int) -> torch.Tensor | None:
    if known_shape is None:
        return None
    shape = torch.as_tensor(known_shape, dtype=torch.float32)
    if shape.dim() == 1:
        shape = shape[None]
    if shape.dim() != 2 or shape.shape[1] != num_shape or shape.shape[0] not in (1, batch):
        raise ValueError(f"known_shape must have shape (B, {num_shape}) or ({num_shape},), got {tuple(shape.shape)}")
    if bool((shape < 0).any() | (shape > 1).any()):
        raise ValueError("known_shape phenotypes must lie in [0, 1]")
    return shape.expand(batch, -1).clone()


def _joint_weights(joint_weights: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
    """(B, 21) weights normalized to sum 1 per hand (uniform when None)."""
    if joint_weights is None:
        return torch.full(target.shape[:2], 1.0 / 21, dtype=target.dtype)
    w = torch.as_tensor(joint_weights, dtype=target.dtype)
    if w.shape not in ((21,), (target.shape[0], 21)):
        raise ValueError(f"joint_weights must have shape (21,) or (B, 21), got {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or bool((w.sum(-1) <= 0).any()):
        raise ValueError("joint_weights must be finite, >= 0 and not all 0")
    w = w.expand(target.shape[0], 21)
    return w / w.sum(-1, keepdim=True)


def fit_hand(
    joints21: torch.Tensor,
    side: str,
    init: HandFit | None = None,
    known_shape: torch.Tensor | None = None,
    iterations: int = 20,
    with_vertices: bool = False,
    config: PostOptConfig = PostOptConfig(),
    hand: BiomechHand | None = None,
    joint_weights: torch.Tensor | None = None,
) -> HandFit:
    """Fit the 23-DoF Anny hand of ``side`` to (B, 21, 3) hand21 joints (metres).

    ``iterations`` optimizer steps (0 returns the initial guess, re-posed; for L-BFGS the
    most iterations of its one ``step``). ``joint_weights`` ((21,) or (B, 21), >= 0): how much
    each target joint counts in the mean distance (default all 1; 0 ignores a joint, e.g. a
    landmark of another keypoint convention). The result's
    ``joints`` are the fitted hand's keypoints in the target's frame.
    """
    target = check_joints21(joints21)
    hand = hand or load_biomech_hand(side)
    if hand.side != side:
        raise ValueError(f"fit_hand: a {hand.side} hand model was given for side {side!r}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    known = check_known_shape(known_shape, target.shape[0], hand.num_shape)
    weights = _joint_weights(joint_weights, target)
    angles, shape, rotation, translation = _initial(hand, target, init, known, weights)

    raw = unbounded_angles(angles, hand.axes).requires_grad_(True)
    shape_raw = torch.logit(shape.clamp(1e-3, 1 - 1e-3)).requires_grad_(known is None)
    turn = torch.zeros(target.shape[0], 3, dtype=target.dtype, requires_grad=True)
    shift_cm = torch.zeros(target.shape[0], 3, dtype=target.dtype, requires_grad=True)

    def current():
        a = bounded_angles(raw, hand.axes)
        s = torch.sigmoid(shape_raw) if known is None else known
        r = rotation @ axis_angle_to_matrix(turn)
        return a, s, r, translation + shift_cm / 100.0

    def loss_value() -> torch.Tensor:
        a, s, r, t = current()
        joints = hand(a, s, r, t).joints
        error = ((joints - target).norm(dim=-1) * weights).sum(-1) * 1000.0  # weighted mean, mm
        loss = error + config.bend_weight * bend_direction_penalty(joints)
        if init is not None:  # a pull towards the given answer; none towards the rest hand
            loss = loss + config.prior_weight * ((a - angles) ** 2).sum(-1)
        return loss.sum()

    groups = [(raw, config.angle_lr), (turn, config.rotation_lr), (shift_cm, config.translation_lr)]
    if known is None:
        groups.append((shape_raw, config.shape_lr))
    if iterations > 0 and config.optimizer == "lbfgs":
        opt = torch.optim.LBFGS([p for p, _ in groups], lr=config.lbfgs_lr, max_iter=iterations, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = loss_value()
            loss.backward()
            return loss

        opt.step(closure)
    elif iterations > 0:
        opt = torch.optim.Adam([{"params": [p], "lr": lr} for p, lr in groups])
        for _ in range(iterations):
            opt.zero_grad()
            loss_value().backward()
            opt.step()
    with torch.no_grad():
        a, s, r, t = current()
        out = hand(a, s, r, t, with_vertices=with_vertices)
    return HandFit(a.detach(), s.detach(), r.detach(), t.detach(), out.joints, out.vertices)


def project_pose(
    rotations: torch.Tensor,
    side: str,
    shape: torch.Tensor | None = None,
    iterations: int = 30,
    lr: float = 0.05,
    hand: BiomechHand | None = None,
) -> torch.Tensor:
    """Closest 23-DoF angles (B, 23) to a full 45-DoF finger pose (B, 15, 3, 3).

    First the analytic per-joint projection (:func:`~hmrkit.hands.biomech.rotations_to_angles`),
    then ``iterations`` Adam steps on the distances of the hand21 joints and of all mesh
    vertices to those of the 45-DoF hand (as the paper makes its 23-DoF ground truth).
    """
    hand = hand or load_biomech_hand(side)
    if rotations.dim() != 4 or rotations.shape[1:] != (15, 3, 3):
        raise ValueError(f"rotations must have shape (B, 15, 3, 3), got {tuple(rotations.shape)}")
    batch = rotations.shape[0]
    shape = hand.default_shape(batch).to(rotations) if shape is None else shape.to(rotations).expand(batch, -1)
    eye = torch.eye(3, dtype=rotations.dtype).expand(batch, 1, 3, 3)
    with torch.no_grad():
        full = hand.posed(torch.cat([eye, rotations], 1), shape, with_vertices=True)
        target_joints, target_vertices = full.joints, full.vertices
    angles = rotations_to_angles(rotations, hand.axes)
    if iterations == 0:
        return angles
    raw = unbounded_angles(angles, hand.axes).requires_grad_(True)
    opt = torch.optim.Adam([raw], lr=lr)
    for _ in range(iterations):
        out = hand(bounded_angles(raw, hand.axes), shape, with_vertices=True)
        loss = ((out.joints - target_joints).norm(dim=-1).mean(-1) + (out.vertices - target_vertices).norm(dim=-1).mean(-1)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return bounded_angles(raw, hand.axes).detach()
