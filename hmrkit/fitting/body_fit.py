"""Whole-body fitting: a body model's pose, shape and translation in a perspective camera, to landmarks.

Optimization-only estimation (issue 3, version 1), and the refinement step after a regressor.
All people of an image are fitted together as one batch, each with its own Levenberg-Marquardt
damping (:mod:`hmrkit.fitting.levenberg`). The keypoints, their exact Jacobian and the landmark
residuals come from numba kernels (:mod:`hmrkit.fitting.keypoint_kernels`; the loop works in
float64 numpy); PyTorch runs only the model's shape blend (once a step, with its slopes) and
the final forward pass. Every iteration poses the keypoints once (the trial step's, which the
next step starts from); the mesh is built once.
Works for any model with ``compile_keypoints`` / ``shape_blend`` and the 22 core joints
first (Anny; the user's SMPL / SMPL-X).

Stages:
1. *3D*: orientation and limbs to MediaPipe's metric 3D landmarks (hip-centred), starting
   from the torso frame those landmarks give (or from an initial pose, e.g. a regressor's).
2. *Translation*: solved in closed form so the posed keypoints project onto the 2D landmarks.
3. *2D + 3D*: pose, translation and phenotypes to robust 2D reprojection (hands included; the
   fingers are held at the hand IK's answer) plus the annealed 3D term, with the pose priors,
   hinge limits for knees and elbows, and a shape prior.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np
import torch

from hmrkit.body.base import BodyModel
from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.body.conventions import MEDIAPIPE33
from hmrkit.body.keypoints import KeypointMap
from hmrkit.body.kinematics import tree_of
from hmrkit.fitting import keypoint_kernels
from hmrkit.fitting.keypoint_kernels import KernelSkeleton, LandmarkTerms, PosedSkeleton
from hmrkit.fitting.levenberg import damped_step
from hmrkit.fitting.targets import BODY, FIT_KEYPOINTS, HAND_SLICES, POSE_HAND_POINT_WEIGHT, FitTargets
from hmrkit.geometry.cameras import PerspectiveCamera, per_sample, perspective_project
from hmrkit.geometry.rotations import gram_schmidt, matrix_to_axis_angle
from hmrkit.models.pose_prior import EncoderMean, PosePrior


@dataclass
class BodyFitConfig:
    # Levenberg-Marquardt iterations: (3D stage, 2D stage); with an initial pose (a regressor's,
    # or the previous video frame's) fewer are needed
    iterations_3d: int = 4
    iterations_2d: int = 20
    warm_iterations_3d: int = 2
    warm_iterations_2d: int = 5
    damping: float = 0.01  # initial Levenberg-Marquardt damping (relative to the Hessian's diagonal)
    weight_2d: float = 1.0
    weight_3d: float = 2.0
    final_weight_3d: float = 0.2  # the 3D weight decays to this over stage 3
    weight_pose_prior: float = 0.0002  # L2 on the body's axis-angles (keeps unseen joints near rest)
    weight_vae_prior: float = 1e-4  # the mean part of the mocap-trained VAE prior's KL (nats)
    weight_limits: float = 1.0
    weight_shape: float = 0.02
    # Geman-McClure scale as a fraction of the person's box, annealed from start to end so
    # that far-off points still pull at first and outliers stop pulling at the end
    robust_sigma: tuple[float, float] = (0.3, 0.05)
    fit_shape: bool = True
    # limb proportions the phenotypes cannot express: each joint named here may scale its subtree
    # (e.g. "left_elbow": forearm and hand), with an L2 prior on the log-scale
    bone_scale_joints: tuple[str, ...] = tuple(f"{side}_{joint}" for side in ("left", "right")
                                               for joint in ("shoulder", "elbow", "hip", "knee"))
    weight_bone_scale: float = 0.3
    # the targets (hmrkit.fitting.targets.targets_from_detections): landmarks MediaPipe calls
    # unseen still weigh their (low) visibility; the pose's knuckle points weigh a fifth
    weigh_unseen: bool = True
    pose_hand_point_weight: float = POSE_HAND_POINT_WEIGHT


@dataclass
class FitInit:
    """A starting point for the fit (batched): a regressor's output or the previous frame's fit."""

    rotations: torch.Tensor  # (B, J, 3, 3), joint 0 in the camera frame
    shape: torch.Tensor  # (B, 6)
    translation: torch.Tensor | None = None  # (B, 3); None: solved from the 2D landmarks
    scales: torch.Tensor | None = None  # (B, J) bone scales (the previous frame's); None: all 1


@dataclass
class FixedJoints:
    """Joints the fit must not move: ``rotations`` (B, J, 3, 3) where ``mask`` (B, J) is set."""

    rotations: torch.Tensor
    mask: torch.Tensor


class BodyEstimator(Protocol):
    """A learned body estimator (e.g. HKMR): landmarks in, a starting pose out."""

    name: str  # written to the results ("hkmr", "flat")

    def __call__(self, targets: FitTargets, camera: PerspectiveCamera) -> FitInit: ...


@dataclass
class BodyFit:
    """Batched result (B people). Rotations are local (joint 0 includes the camera orientation)."""

    rotations: torch.Tensor  # (B, J, 3, 3)
    shape: torch.Tensor  # (B, 6)
    translation: torch.Tensor  # (B, 3) camera frame, metres
    keypoints: torch.Tensor  # (B, 75, 3) camera frame
    keypoints2d: torch.Tensor  # (B, 75, 2) pixels
    reprojection_error: torch.Tensor  # (B,) mean visible 2D error in pixels
    scales: torch.Tensor | None = None  # (B, J) bone scales (model ``forward``'s ``scales``); None: all 1
    track_ids: tuple[int | None, ...] = ()  # video: each person's perception track (empty for photos)

    def warm_start_for(self, track_ids: tuple[int | None, ...]) -> FitInit | None:
        """This fit as the start of the next frame's, reordered to ``track_ids`` (the next
        frame's people); None when someone new is there (or the people cannot be matched)."""
        if track_ids and None not in track_ids and set(track_ids) <= set(self.track_ids):
            order = [self.track_ids.index(t) for t in track_ids]
        elif all(t is None for t in track_ids + self.track_ids) and len(track_ids) == self.rotations.shape[0]:  # untracked: by order
            order = list(range(len(track_ids)))
        else:
            return None
        scales = None if self.scales is None else self.scales[order]
        return FitInit(self.rotations[order], self.shape[order], scales=scales)


def torso_frame(world: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) camera-from-body rotation from hip-centred MediaPipe world landmarks.

    Columns: the body's left, up and forward axes in camera coordinates (y down).
    """
    lm = {n: world[:, MEDIAPIPE33.index(n)] for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder")}
    left = (lm["left_hip"] - lm["right_hip"]) + (lm["left_shoulder"] - lm["right_shoulder"])
    up = (lm["left_shoulder"] + lm["right_shoulder"] - lm["left_hip"] - lm["right_hip"]) / 2
    return gram_schmidt(torch.stack([left, up], dim=-1))


def solve_translation(points: torch.Tensor, xy: torch.Tensor, weight: torch.Tensor, camera: PerspectiveCamera) -> torch.Tensor:
    """Least-squares t with ``project(points + t) ~ xy``, linearized: (B, K, 3) -> (B, 3)."""
    fx, fy, cx, cy = (torch.as_tensor(v, dtype=points.dtype) for v in (camera.fx, camera.fy, camera.cx, camera.cy))
    u, v = xy[..., 0] - cx, xy[..., 1] - cy
    x, y, z = points.unbind(-1)
    zero = torch.zeros_like(u)
    # fx (x + tx) = u (z + tz)  ->  fx tx - u tz = u z - fx x ; same for y
    rows = torch.cat([torch.stack([fx + zero, zero, -u], -1), torch.stack([zero, fy + zero, -v], -1)], dim=1)
    rhs = torch.cat([u * z - fx * x, v * z - fy * y], dim=1)
    w = torch.cat([weight, weight], dim=1).sqrt()[..., None]
    a, b = rows * w, rhs[..., None] * w
    ata = a.transpose(1, 2) @ a + 1e-6 * torch.eye(3, dtype=a.dtype)
    t = torch.linalg.solve(ata, a.transpose(1, 2) @ b)[..., 0]
    t[:, 2] = t[:, 2].clamp(min=0.3)
    return t


def hinge_axes(model: BodyModel) -> tuple[list[int], torch.Tensor]:
    """Knees and elbows, and for each the rest-pose axis whose positive rotation flexes it."""
    rest = model.template_joints
    names = ("left_knee", "right_knee", "left_elbow", "right_elbow")
    axes = []
    for name in names:
        j = model.skeleton.index(name)
        child = model.skeleton.children(j)[0]
        bone = rest[child] - rest[j]
        bend = torch.tensor([0.0, 0.0, -1.0]) if "knee" in name else torch.tensor([0.0, 0.0, 1.0])
        axes.append(torch.linalg.cross(bone, bend))  # rotating ``bone`` about bone x bend moves it towards bend
    axes = torch.stack(axes)
    return [model.skeleton.index(n) for n in names], axes / axes.norm(dim=1, keepdim=True)


def centring_matrix() -> torch.Tensor:
    """(K, K) ``C`` with ``C @ points`` = the body part hip-centred and each hand centroid-centred:
    the frames of MediaPipe's world landmarks."""
    k = len(FIT_KEYPOINTS)
    c = torch.eye(k)
    hips = [MEDIAPIPE33.index("left_hip"), MEDIAPIPE33.index("right_hip")]
    rows = torch.arange(k)
    c[rows[BODY][:, None], torch.tensor(hips)] -= 0.5
    for part in HAND_SLICES.values():
        c[part, part] -= 1.0 / (part.stop - part.start)
    return c


class BodyFitter:
    """Holds the model and the fit keypoint map; ``fit`` runs the stages for one image's people."""

    def __init__(self, model: BodyModel, keypoints: KeypointMap, config: BodyFitConfig | None = None,
                 pose_prior: PosePrior | None = None):
        if keypoints.names != FIT_KEYPOINTS.names:
            raise ValueError("BodyFitter needs the FIT_KEYPOINTS map")
        self.model = model
        self.keypoints = keypoints
        self.config = config or BodyFitConfig()
        self.pose_prior = pose_prior
        # the prior's encoder as the fit evaluates it (a snapshot of its weights, in numpy)
        self.prior_mean = None if pose_prior is None else EncoderMean(pose_prior)
        self.hinges, self.hinge_axes = hinge_axes(model)
        self.scaled = [model.skeleton.index(n) for n in self.config.bone_scale_joints]
        if any(j >= NUM_BODY_CORE for j in self.scaled):
            raise ValueError("bone_scale_joints must be core joints")
        self.kernel_skeleton = KernelSkeleton.build(tree_of(tuple(model.skeleton.parents)), keypoints, NUM_BODY_CORE)
        self.centring = _array(centring_matrix())  # the 3D landmarks' frames, made once

    def fit(
        self,
        targets: FitTargets,
        camera: PerspectiveCamera,
        init: FitInit | None = None,
        iterations: tuple[int, int] | None = None,
        fixed: FixedJoints | None = None,
    ) -> BodyFit:
        """Fit everyone in ``targets``. ``init``: a starting pose (a regressor's, or the previous
        video frame's); ``iterations``: Levenberg-Marquardt steps of the (3D stage, 2D stage),
        default from the config (cold or warm); ``fixed``: joints held at given rotations (the
        hand IK's fingers)."""
        cfg = self.config
        batch = targets.batch
        if iterations is None:
            iterations = (cfg.iterations_3d, cfg.iterations_2d) if init is None else (cfg.warm_iterations_3d, cfg.warm_iterations_2d)
        if init is None:
            rotations = self.model.identity_pose(batch)
            rotations[:, 0] = torso_frame(targets.world)
            shape_logit = torch.zeros(batch, self.model.num_shape)
        else:
            rotations = init.rotations.clone()
            shape_logit = torch.atanh((self.unit_shape(init.shape) * 2 - 1).clamp(-0.99, 0.99))
        if fixed is not None:
            rotations = torch.where(fixed.mask[..., None, None], fixed.rotations, rotations)
        # a zero scale in a previous fit is a collapsed limb, not a bone length: it starts at 1
        log_scale = (torch.zeros(batch, len(self.scaled)) if init is None or init.scales is None
                     else torch.where(init.scales[:, self.scaled] > 0, init.scales[:, self.scaled], 1.0).clamp(min=1e-3).log())
        state = _FitState.start(rotations, shape_logit, log_scale, self.scaled, _collapse_array(targets))
        free = torch.ones(batch, NUM_BODY_CORE, dtype=torch.bool)
        if fixed is not None:
            free = ~fixed.mask[:, :NUM_BODY_CORE]
        problem = _Problem(self, targets, camera, free)
        with self.model.reusing_shape_blend():  # the fit differentiates nothing through the model
            # stage 1: orientation and limbs to the 3D landmarks (no translation, no shape)
            state = problem.solve(state, iterations[0], lambda progress: (0.0, cfg.weight_3d, 1.0), with_camera=False)
            # stage 2: closed-form translation (unless the initial guess has one)
            if init is not None and init.translation is not None:
                state.translation = _array(init.translation)
            else:
                rotations, shape, scales = self._model_inputs(state)
                state.translation = _array(self.solve_translation(rotations, shape, targets, camera, scales))

            # stage 3: everything, robust 2D annealed from wide to narrow; MediaPipe's 3D and 2D
            # landmarks disagree a little: the 3D term guides, then yields to 2D
            def schedule(progress: float) -> tuple[float, float, float]:
                sigma = cfg.robust_sigma[0] ** (1 - progress) * cfg.robust_sigma[1] ** progress
                return cfg.weight_2d, cfg.weight_3d ** (1 - progress) * cfg.final_weight_3d ** progress, sigma

            state = problem.solve(state, iterations[1], schedule, with_camera=True)
            rotations, shape, scales = self._model_inputs(state)
            return self.evaluate(rotations, shape, torch.from_numpy(state.translation).float(), targets, camera, scales)

    def _model_inputs(self, state: _FitState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``state``'s rotations, model shape and bone scales for the model's PyTorch forward."""
        rotations = state.rotations(keypoint_kernels.exp_so3(state.theta))
        return rotations, torch.from_numpy(self.model_shape(state.shape())).float(), torch.from_numpy(state.scales()).float()

    def model_shape(self, unit: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """The fit keeps shape in unit form (0..1, neutral 0.5, prior on it); the model's own values span
        its ``shape_range`` (Anny's phenotypes: the same; SMPL betas: -3..3). Tensor or array in, the same out."""
        low, high = self.model.shape_range
        return low + (high - low) * unit

    def unit_shape(self, shape: torch.Tensor) -> torch.Tensor:
        low, high = self.model.shape_range
        return (shape - low) / (high - low)

    @torch.no_grad()
    def solve_translation(self, rotations: torch.Tensor, shape: torch.Tensor, targets: FitTargets, camera: PerspectiveCamera,
                          scales: torch.Tensor | None = None) -> torch.Tensor:
        """The camera translation that best puts this pose onto the 2D landmarks (closed form)."""
        scales = with_collapse(scales, targets.collapse)
        points = self.model(rotations, shape, with_vertices=False, keypoints=self.keypoints, scales=scales).keypoints
        return solve_translation(points, targets.xy, targets.xy_weight, camera)

    @torch.no_grad()
    def evaluate(self, rotations: torch.Tensor, shape: torch.Tensor, translation: torch.Tensor, targets: FitTargets,
                 camera: PerspectiveCamera, scales: torch.Tensor | None = None) -> BodyFit:
        """The :class:`BodyFit` of given parameters (e.g. smoothed ones) against ``targets``; its
        ``scales`` include the targets' collapsed limbs."""
        scales = with_collapse(scales, targets.collapse)
        points = self.model(rotations, shape, translation, with_vertices=False, keypoints=self.keypoints, scales=scales).keypoints
        xy = perspective_project(points, camera)
        seen = targets.seen_mask() & (targets.xy_weight > 0)
        error = ((xy - targets.xy).norm(dim=-1) * seen).sum(1) / seen.sum(1).clamp(min=1)
        return BodyFit(rotations, shape, translation, points, xy, error, scales)


@dataclass
class _FitState:
    """The unknowns of one fit (batched, float64): axis-angles of the core joints (joint 0's turns
    ``root``), the camera translation, the phenotype logits and the bone log-scales; ``held``
    (the other joints: fingers) stays."""

    root: np.ndarray  # (B, 3, 3)
    theta: np.ndarray  # (B, 22, 3)
    held: np.ndarray  # (B, J - 22, 3, 3)
    translation: np.ndarray  # (B, 3)
    shape_logit: np.ndarray  # (B, S)
    log_scale: np.ndarray  # (B, N): log bone scale of each of the ``scaled`` joints
    scaled: list[int]
    collapse: np.ndarray | None = None  # (B, J) fixed joint scales of absent limbs (FitTargets.collapse)

    @classmethod
    def start(cls, rotations: torch.Tensor, shape_logit: torch.Tensor, log_scale: torch.Tensor, scaled: list[int],
              collapse: np.ndarray | None = None) -> "_FitState":
        """From the model's (B, J, 3, 3) rotations (joint 0 in the camera frame: it becomes ``root``)."""
        batch = rotations.shape[0]
        theta = torch.cat([torch.zeros(batch, 1, 3), matrix_to_axis_angle(rotations[:, 1:NUM_BODY_CORE])], dim=1)
        return cls(_array(rotations[:, 0]), _array(theta), _array(rotations[:, NUM_BODY_CORE:]), np.zeros((batch, 3)),
                   _array(shape_logit), _array(log_scale), scaled, collapse)

    def scales(self) -> np.ndarray:
        """(B, J) the model's ``scales``."""
        scales = np.ones((self.theta.shape[0], self.theta.shape[1] + self.held.shape[1]))
        scales[:, self.scaled] = np.exp(self.log_scale)
        return scales if self.collapse is None else scales * self.collapse

    def rotations(self, core: np.ndarray) -> torch.Tensor:
        """(B, J, 3, 3) the model's rotations (float32) from ``core`` = ``exp(theta)``."""
        core = np.concatenate([(self.root @ core[:, 0])[:, None], core[:, 1:], self.held], axis=1)
        return torch.from_numpy(core).float()

    def shape(self) -> np.ndarray:
        return 0.5 + 0.5 * np.tanh(self.shape_logit)

    def moved(self, step: np.ndarray) -> "_FitState":
        """The state after a step laid out as [theta (66), translation (3), shape logits (S), log-scales (N)]."""
        n, s = self.theta.shape[1] * 3, self.shape_logit.shape[1]
        return _FitState(self.root, self.theta + step[:, :n].reshape(self.theta.shape), self.held,
                         self.translation + step[:, n : n + 3], self.shape_logit + step[:, n + 3 : n + 3 + s],
                         self.log_scale + step[:, n + 3 + s :], self.scaled, self.collapse)

    def where(self, keep: np.ndarray, other: "_FitState") -> "_FitState":
        """Per person: this state where ``keep`` (B,) is set, else ``other``."""
        return _FitState(self.root, _pick(keep, self.theta, other.theta), self.held, _pick(keep, self.translation, other.translation),
                         _pick(keep, self.shape_logit, other.shape_logit), _pick(keep, self.log_scale, other.log_scale), self.scaled, self.collapse)


def with_collapse(scales: torch.Tensor | None, collapse: torch.Tensor | None) -> torch.Tensor | None:
    """Bone scales (B, J) or None, times the collapsed limbs' zeros (B, J) or None."""
    if collapse is None:
        return scales
    return collapse.float() if scales is None else scales * collapse


def _collapse_array(targets: FitTargets) -> np.ndarray | None:
    return None if targets.collapse is None else _array(targets.collapse)


def _array(values: torch.Tensor) -> np.ndarray:
    return values.detach().double().numpy().copy()


def _pick(keep: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per person (first dimension): ``a`` where ``keep`` (B,) is set, else ``b``."""
    return np.where(keep.reshape(-1, *([1] * (a.ndim - 1))), a, b)


@dataclass
class _Posed:
    """A fit state through the kernels, with its shape blend and, when the shape moves, the blend's
    slopes per phenotype logit (see :meth:`_Problem.pose`)."""

    skeleton: PosedSkeleton
    coefficients: np.ndarray  # (B, C)
    rest: np.ndarray  # (B, J, 3)
    d_coefficients: np.ndarray  # (B, S, C); zero when the shape is held
    d_rest: np.ndarray  # (B, S, J, 3); zero when the shape is held

    def where(self, keep: np.ndarray, other: "_Posed") -> "_Posed":
        """Per person: this where ``keep`` (B,) is set, else ``other``."""
        mine, theirs = self.skeleton, other.skeleton
        skeleton = PosedSkeleton(*(_pick(keep, getattr(mine, f.name), getattr(theirs, f.name)) for f in fields(PosedSkeleton)))
        return _Posed(skeleton, *(_pick(keep, getattr(self, name), getattr(other, name))
                                  for name in ("coefficients", "rest", "d_coefficients", "d_rest")))


class _PriorPatterns:
    """The constant parts of the priors' Jacobian (rows: pose L2, hinge limits, phenotypes,
    bone scales; columns: the step's layout, see :meth:`_FitState.moved`), made once per fit."""

    def __init__(self, fitter: BodyFitter):
        cfg = fitter.config
        n_theta, n_shape, n_scale = NUM_BODY_CORE * 3, fitter.model.num_shape, len(fitter.scaled)
        self.columns = n_theta + 3 + n_shape + n_scale
        self.body = np.zeros((1, n_theta - 3, self.columns))
        self.body[0, :, 3:n_theta] = cfg.weight_pose_prior**0.5 * np.eye(n_theta - 3)
        self.limits = np.zeros((1, len(fitter.hinges), self.columns))  # times "the hinge is over-extended"
        self.hinge_axes = fitter.hinge_axes.double().numpy()
        for h, j in enumerate(fitter.hinges):
            self.limits[0, h, 3 * j : 3 * j + 3] = -cfg.weight_limits**0.5 * self.hinge_axes[h]
        self.shape = np.zeros((1, n_shape, self.columns))  # times d unit shape / d logit / 0.5
        self.shape[0, :, n_theta + 3 : n_theta + 3 + n_shape] = cfg.weight_shape**0.5 * 0.5 * np.eye(n_shape)
        self.scale = np.zeros((1, n_scale, self.columns))
        self.scale[0, :, n_theta + 3 + n_shape :] = cfg.weight_bone_scale**0.5 * np.eye(n_scale)
        self.vae = fitter.pose_prior is not None and cfg.weight_vae_prior > 0
        self.vae_scale = (cfg.weight_vae_prior / 2) ** 0.5


class _Problem:
    """The fit's robust least-squares objective for one image's people, its residuals and their
    exact Jacobian (the landmark terms from :mod:`hmrkit.fitting.keypoint_kernels`), and the
    Levenberg-Marquardt loop (one damping per person)."""

    def __init__(self, fitter: BodyFitter, targets: FitTargets, camera: PerspectiveCamera, free: torch.Tensor):
        self.fitter, self.targets = fitter, targets
        xy_weight = targets.xy_weight / targets.xy_weight.sum(1, keepdim=True).clamp(min=1)
        world_weight = targets.world_weight / targets.world_weight.sum(1, keepdim=True).clamp(min=1)
        like = targets.xy[..., 0]
        intrinsics = torch.cat([per_sample(v, like, name) for v, name in
                                ((camera.fx, "fx"), (camera.fy, "fy"), (camera.cx, "cx"), (camera.cy, "cy"))], dim=1)
        self.terms = LandmarkTerms(_array(targets.xy), _array(xy_weight), _array(targets.world), _array(world_weight),
                                   _array(targets.box_size), _array(intrinsics), fitter.centring)
        self.free = free.numpy()  # (B, 22) core joints the fit may turn
        self.prior_patterns = _PriorPatterns(fitter)
        self.scaled = np.asarray(fitter.scaled, dtype=np.int64)

    def solve(self, state: _FitState, iterations: int, schedule, with_camera: bool) -> _FitState:
        """``schedule(progress in [0, 1])`` -> (2D weight, 3D weight, robust scale / box)."""
        batch = self.targets.batch
        damping = np.full(batch, self.fitter.config.damping)
        columns = self.columns(with_camera)
        shape_moves = with_camera and self.fitter.config.fit_shape
        posed = self.pose(state, shape_moves)
        for i in range(iterations):
            weights = schedule(i / max(iterations - 1, 1))
            cost, residual, jacobian = self.evaluate(state, posed, weights, with_jacobian=True)
            step = damped_step(jacobian * columns[:, None], residual, damping)
            trial = state.moved(step)
            trial_posed = self.pose(trial, shape_moves)  # one model pass a step: the next step starts from it
            better = self.evaluate(trial, trial_posed, weights, with_jacobian=False)[0] < cost
            state, posed = trial.where(better, state), trial_posed.where(better, posed)
            damping = np.clip(np.where(better, damping * 0.3, damping * 10), 1e-7, 1e7)
        return state

    def pose(self, state: _FitState, shape_moves: bool, step: float = 2e-3) -> _Posed:
        """``state`` through the kernels' keypoints-only pass. ``shape_moves``: also the shape
        blend's slopes per phenotype logit, by forward differences in the same batched call of
        the model's blend (Anny's phenotype blend is piecewise linear in each phenotype, so
        one-sided slopes are exact between its anchors); the keypoints' dependence on the
        coefficients and rest joints is exact in the kernel. Without: the slopes are zero (the
        phenotype columns of the Jacobian too: a stage that holds the shape need not pay for them)."""
        batch, n = state.shape_logit.shape
        logits = state.shape_logit
        if shape_moves:
            logits = np.concatenate([logits, (logits[None] + step * np.eye(n)[:, None]).reshape(-1, n)])  # (B + S * B, S)
        coefficients, rest = self.blend(0.5 + 0.5 * np.tanh(logits))
        if shape_moves:
            def slopes(values: np.ndarray) -> np.ndarray:  # (B + S * B, ...) -> (B, S, ...)
                return ((values[batch:].reshape(n, batch, *values.shape[1:]) - values[:batch]) / step).swapaxes(0, 1)

            d_coefficients, d_rest = slopes(coefficients), slopes(rest)
            coefficients, rest = coefficients[:batch], rest[:batch]
        else:
            d_coefficients, d_rest = np.zeros((batch, n, coefficients.shape[1])), np.zeros((batch, n, *rest.shape[1:]))
        skeleton = keypoint_kernels.pose(self.fitter.kernel_skeleton, state.root, state.theta, state.held, state.scales(),
                                         rest, coefficients)
        return _Posed(skeleton, coefficients, rest, d_coefficients, d_rest)

    def blend(self, unit_shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, S) unit shapes -> the model's (coefficients (B, C), rest joints (B, J, 3))."""
        fitter = self.fitter
        coefficients, rest = fitter.model.shape_blend(torch.from_numpy(fitter.model_shape(unit_shape)).float())
        return _array(coefficients), _array(rest)

    def columns(self, with_camera: bool) -> np.ndarray:
        """(B, P) 1 for the unknowns this stage moves."""
        batch = self.targets.batch
        theta = np.repeat(self.free, 3, axis=1).astype(np.float64)
        camera = np.full((batch, 3 + self.fitter.model.num_shape + len(self.fitter.scaled)), float(with_camera))
        if not self.fitter.config.fit_shape:
            camera[:, 3 : 3 + self.fitter.model.num_shape] = 0
        return np.concatenate([theta, camera], axis=1)

    def evaluate(self, state: _FitState, posed: _Posed, weights: tuple[float, float, float], with_jacobian: bool):
        """(cost (B,), residuals (B, R), Jacobian (B, R, P) or None) at ``state`` (posed as ``posed``)."""
        fitter = self.fitter
        skeleton = posed.skeleton
        points = skeleton.keypoints + state.translation[:, None]
        d_points = None
        if with_jacobian:
            d_points = keypoint_kernels.keypoint_jacobian(fitter.kernel_skeleton, skeleton, posed.d_coefficients, posed.d_rest,
                                                          self.scaled)
        cost, residual, jacobian = keypoint_kernels.landmark_residuals(self.terms, points, d_points, *weights)
        prior, prior_jacobian = self.priors(state, skeleton.core_rotations, skeleton.right if with_jacobian else None)
        cost = cost + np.square(prior).sum(1)
        residual = np.concatenate([residual, prior], axis=1)
        return cost, residual, np.concatenate([jacobian, prior_jacobian], axis=1) if with_jacobian else None

    def priors(self, state: _FitState, core: np.ndarray, right: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Prior residuals (B, Q) and, when ``right`` (the SO(3) right Jacobians of ``theta``) is
        given, their Jacobian (B, Q, P): pose L2, knee/elbow hinge limits, phenotypes near neutral,
        bone scales near 1, VAE latent mean. ``core``: ``exp(theta)``."""
        fitter, cfg, patterns = self.fitter, self.fitter.config, self.prior_patterns
        batch = state.theta.shape[0]
        flex = (state.theta[:, fitter.hinges] * patterns.hinge_axes).sum(-1)
        residuals = [cfg.weight_pose_prior**0.5 * state.theta[:, 1:].reshape(batch, -1), cfg.weight_limits**0.5 * np.maximum(-flex, 0),
                     cfg.weight_shape**0.5 * (state.shape() - 0.5), cfg.weight_bone_scale**0.5 * state.log_scale]
        if right is None:
            if patterns.vae:  # the trial steps need only the value
                residuals.append(patterns.vae_scale * fitter.prior_mean(core[:, 1:], with_jacobian=False)[0])
            return np.concatenate(residuals, axis=1), None
        jacobians = [np.broadcast_to(patterns.body, (batch, *patterns.body.shape[1:])),
                     patterns.limits * (flex < 0)[..., None],
                     patterns.shape * (1 - np.square(np.tanh(state.shape_logit)))[..., None],
                     np.broadcast_to(patterns.scale, (batch, *patterns.scale.shape[1:]))]
        if patterns.vae:
            latent, d_latent = self.latent_mean(core[:, 1:], right[:, 1:])
            residuals.append(patterns.vae_scale * latent)
            jacobians.append(np.pad(patterns.vae_scale * d_latent, ((0, 0), (0, 0), (3, patterns.columns - 3 - d_latent.shape[2]))))
        return np.concatenate(residuals, axis=1), np.concatenate(jacobians, axis=1)

    def latent_mean(self, rotations: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The VAE prior's posterior mean (B, L) at the body joints' rotations ``exp(theta)``
        (B, 21, 3, 3), and its Jacobian (B, L, 63) with respect to theta (``right``: their SO(3)
        right Jacobians): the encoder's closed form chained with d 6D / d theta."""
        mean, d_sixd = self.fitter.prior_mean(rotations, with_jacobian=True)
        # d R / d theta_k = R skew(Jr e_k); the 6D input is R's first two columns, row by row
        d_rotation = rotations[:, :, None] @ _skew(right.swapaxes(-1, -2))  # (B, 21, 3 [k], 3, 3)
        d_input = d_rotation[..., :2].reshape(*rotations.shape[:2], 3, 6).swapaxes(-1, -2)  # (B, 21, 6, 3)
        d_mean = np.einsum("bljs,bjsk->bljk", d_sixd.reshape(*mean.shape, rotations.shape[1], 6), d_input)
        return mean, d_mean.reshape(*mean.shape, -1)


def _skew(v: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) with ``skew(a) @ b == a x b``."""
    out = np.zeros((*v.shape, 3))
    out[..., 0, 1], out[..., 0, 2], out[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    out[..., 1, 0], out[..., 2, 0], out[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    return out
