"""Whole-body fitting: a body model's pose, shape and translation in a perspective camera, to landmarks.

Optimization-only estimation (issue 3, version 1), and the refinement step after a regressor.
All people of an image are fitted together as one batch, each with its own Levenberg-Marquardt
damping (:mod:`hmrkit.fitting.levenberg`: exact Jacobians from the model's per-joint keypoint
parts). Every iteration runs the keypoints-only pass once (no mesh: the trial step's, which the
next step starts from); the mesh is built once.
Works for any model with ``compile_keypoints`` / ``keypoint_parts`` and the 22 core joints
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

from dataclasses import dataclass
from typing import Protocol

import roma
import torch

from hmrkit.body.base import BodyModel
from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.body.conventions import MEDIAPIPE33
from hmrkit.body.keypoint_skinning import KeypointParts, skinned_keypoint_directions
from hmrkit.body.keypoints import KeypointMap
from hmrkit.body.kinematics import tree_of
from hmrkit.fitting.targets import BODY, FIT_KEYPOINTS, HAND_SLICES, POSE_HAND_POINT_WEIGHT, FitTargets
from hmrkit.models.pose_prior import PosePrior
from hmrkit.fitting.levenberg import damped_step, levers, projection_jacobian, rotation_jacobian, skew, so3_right_jacobian, subtree_matrix
from hmrkit.geometry.cameras import PerspectiveCamera, perspective_project


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
    return roma.special_gramschmidt(torch.stack([left, up], dim=-1))


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
        if pose_prior is not None:
            pose_prior.requires_grad_(False)
        self.hinges, self.hinge_axes = hinge_axes(model)
        self.core = list(range(NUM_BODY_CORE))
        self.scaled = [model.skeleton.index(n) for n in self.config.bone_scale_joints]
        self.subtree = subtree_matrix(model.skeleton.parents, self.core)
        self.tree = tree_of(model.skeleton.parents)
        self.centring = centring_matrix()

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
        state = _FitState(
            root=rotations[:, 0],
            theta=torch.cat([torch.zeros(batch, 1, 3), roma.rotmat_to_rotvec(rotations[:, 1:NUM_BODY_CORE])], dim=1),
            rest=rotations[:, NUM_BODY_CORE:],
            translation=torch.zeros(batch, 3),
            shape_logit=shape_logit,
            log_scale=torch.zeros(batch, len(self.scaled)) if init is None or init.scales is None
            else init.scales[:, self.scaled].clamp(min=1e-3).log(),
            scaled=self.scaled,
        )
        free = torch.ones(batch, NUM_BODY_CORE, dtype=torch.bool)
        if fixed is not None:
            free = ~fixed.mask[:, :NUM_BODY_CORE]
        problem = _Problem(self, targets, camera, free)
        with self.model.reusing_shape_blend():  # the fit differentiates nothing through the model
            # stage 1: orientation and limbs to the 3D landmarks (no translation, no shape)
            state = problem.solve(state, iterations[0], lambda progress: (0.0, cfg.weight_3d, 1.0), with_camera=False)
            # stage 2: closed-form translation (unless the initial guess has one)
            if init is not None and init.translation is not None:
                state.translation = init.translation.clone()
            else:
                state.translation = self.solve_translation(state.rotations(), self.model_shape(state.shape()), targets, camera, state.scales())

            # stage 3: everything, robust 2D annealed from wide to narrow; MediaPipe's 3D and 2D
            # landmarks disagree a little: the 3D term guides, then yields to 2D
            def schedule(progress: float) -> tuple[float, float, float]:
                sigma = cfg.robust_sigma[0] ** (1 - progress) * cfg.robust_sigma[1] ** progress
                return cfg.weight_2d, cfg.weight_3d ** (1 - progress) * cfg.final_weight_3d ** progress, sigma

            state = problem.solve(state, iterations[1], schedule, with_camera=True)
            with torch.no_grad():
                return self.evaluate(state.rotations(), self.model_shape(state.shape()), state.translation, targets, camera, state.scales())

    def model_shape(self, unit: torch.Tensor) -> torch.Tensor:
        """The fit keeps shape in unit form (0..1, neutral 0.5, prior on it); the model's own values span
        its ``shape_range`` (Anny's phenotypes: the same; SMPL betas: -3..3)."""
        low, high = self.model.shape_range
        return low + (high - low) * unit

    def unit_shape(self, shape: torch.Tensor) -> torch.Tensor:
        low, high = self.model.shape_range
        return (shape - low) / (high - low)

    @torch.no_grad()
    def solve_translation(self, rotations: torch.Tensor, shape: torch.Tensor, targets: FitTargets, camera: PerspectiveCamera,
                          scales: torch.Tensor | None = None) -> torch.Tensor:
        """The camera translation that best puts this pose onto the 2D landmarks (closed form)."""
        points = self.model(rotations, shape, with_vertices=False, keypoints=self.keypoints, scales=scales).keypoints
        return solve_translation(points, targets.xy, targets.xy_weight, camera)

    @torch.no_grad()
    def evaluate(self, rotations: torch.Tensor, shape: torch.Tensor, translation: torch.Tensor, targets: FitTargets,
                 camera: PerspectiveCamera, scales: torch.Tensor | None = None) -> BodyFit:
        """The :class:`BodyFit` of given parameters (e.g. smoothed ones) against ``targets``."""
        points = self.model(rotations, shape, translation, with_vertices=False, keypoints=self.keypoints, scales=scales).keypoints
        xy = perspective_project(points, camera)
        seen = targets.seen_mask() & (targets.xy_weight > 0)
        error = ((xy - targets.xy).norm(dim=-1) * seen).sum(1) / seen.sum(1).clamp(min=1)
        return BodyFit(rotations, shape, translation, points, xy, error, scales)


@dataclass
class _FitState:
    """The unknowns of one fit (batched): axis-angles of the core joints (joint 0's turns ``root``),
    the camera translation and the phenotype logits; ``rest`` (the fingers) is held."""

    root: torch.Tensor  # (B, 3, 3)
    theta: torch.Tensor  # (B, 22, 3)
    rest: torch.Tensor  # (B, J - 22, 3, 3)
    translation: torch.Tensor  # (B, 3)
    shape_logit: torch.Tensor  # (B, S)
    log_scale: torch.Tensor  # (B, N): log bone scale of each of the ``scaled`` joints
    scaled: list[int]

    def scales(self) -> torch.Tensor | None:
        """(B, J) the model's ``scales`` (None when no bone is scaled)."""
        if not self.scaled:
            return None
        batch, joints = self.theta.shape[0], self.theta.shape[1] + self.rest.shape[1]
        scales = torch.ones(batch, joints, dtype=self.log_scale.dtype)
        return scales.index_copy(1, torch.tensor(self.scaled), self.log_scale.exp())

    def rotations(self, core: torch.Tensor | None = None) -> torch.Tensor:
        """(B, J, 3, 3) the model's rotations; ``core``: ``exp(theta)`` when the caller has it."""
        core = roma.rotvec_to_rotmat(self.theta) if core is None else core
        core = torch.cat([(self.root @ core[:, 0])[:, None], core[:, 1:]], dim=1)
        return torch.cat([core, self.rest], dim=1)

    def shape(self) -> torch.Tensor:
        return 0.5 + 0.5 * torch.tanh(self.shape_logit)

    def moved(self, step: torch.Tensor) -> "_FitState":
        """The state after a step laid out as [theta (66), translation (3), shape logits (S), log-scales (N)]."""
        n, s = self.theta.shape[1] * 3, self.shape_logit.shape[1]
        return _FitState(self.root, self.theta + step[:, :n].reshape(self.theta.shape), self.rest,
                         self.translation + step[:, n : n + 3], self.shape_logit + step[:, n + 3 : n + 3 + s],
                         self.log_scale + step[:, n + 3 + s :], self.scaled)

    def where(self, keep: torch.Tensor, other: "_FitState") -> "_FitState":
        """Per person: this state where ``keep`` (B,) is set, else ``other``."""
        return _FitState(self.root, _pick(keep, self.theta, other.theta), self.rest, _pick(keep, self.translation, other.translation),
                         _pick(keep, self.shape_logit, other.shape_logit), _pick(keep, self.log_scale, other.log_scale), self.scaled)


def _pick(keep: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per person (first dimension): ``a`` where ``keep`` (B,) is set, else ``b``."""
    return torch.where(keep.reshape(-1, *([1] * (a.dim() - 1))), a, b)


@dataclass
class _Posed:
    """A fit state through the model: ``exp(theta)`` of the core joints and the keypoint parts."""

    core: torch.Tensor  # (B, 22, 3, 3)
    parts: KeypointParts  # without translation

    def where(self, keep: torch.Tensor, other: "_Posed") -> "_Posed":
        """Per person: this where ``keep`` (B,) is set, else ``other``."""
        mine, theirs = self.parts, other.parts
        return _Posed(_pick(keep, self.core, other.core), KeypointParts(
            _pick(keep, mine.world_rotations, theirs.world_rotations), _pick(keep, mine.joints, theirs.joints),
            _pick(keep, mine.parts, theirs.parts), _pick(keep, mine.weights, theirs.weights)))


class _PriorPatterns:
    """The constant parts of the priors' Jacobian (rows: pose L2, hinge limits, phenotypes,
    bone scales; columns: the step's layout, see :meth:`_FitState.moved`), made once per fit."""

    def __init__(self, fitter: BodyFitter):
        cfg = fitter.config
        n_theta, n_shape, n_scale = NUM_BODY_CORE * 3, fitter.model.num_shape, len(fitter.scaled)
        self.columns = n_theta + 3 + n_shape + n_scale
        self.body = torch.zeros(1, n_theta - 3, self.columns)
        self.body[0, :, 3:n_theta] = cfg.weight_pose_prior**0.5 * torch.eye(n_theta - 3)
        self.limits = torch.zeros(1, len(fitter.hinges), self.columns)  # times "the hinge is over-extended"
        for h, j in enumerate(fitter.hinges):
            self.limits[0, h, 3 * j : 3 * j + 3] = -cfg.weight_limits**0.5 * fitter.hinge_axes[h]
        self.shape = torch.zeros(1, n_shape, self.columns)  # times d unit shape / d logit / 0.5
        self.shape[0, :, n_theta + 3 : n_theta + 3 + n_shape] = cfg.weight_shape**0.5 * 0.5 * torch.eye(n_shape)
        self.scale = torch.zeros(1, n_scale, self.columns)
        self.scale[0, :, n_theta + 3 + n_shape :] = cfg.weight_bone_scale**0.5 * torch.eye(n_scale)
        self.vae = fitter.pose_prior is not None and cfg.weight_vae_prior > 0
        self.vae_scale = (cfg.weight_vae_prior / 2) ** 0.5


class _Problem:
    """The fit's robust least-squares objective for one image's people, its residuals and their
    exact Jacobian, and the Levenberg-Marquardt loop (one damping per person)."""

    def __init__(self, fitter: BodyFitter, targets: FitTargets, camera: PerspectiveCamera, free: torch.Tensor):
        self.fitter, self.targets, self.camera = fitter, targets, camera
        self.xy_weight = targets.xy_weight / targets.xy_weight.sum(1, keepdim=True).clamp(min=1)
        self.world_weight = targets.world_weight / targets.world_weight.sum(1, keepdim=True).clamp(min=1)
        self.free = free  # (B, 22) core joints the fit may turn
        self.prior_patterns = _PriorPatterns(fitter)

    def solve(self, state: _FitState, iterations: int, schedule, with_camera: bool) -> _FitState:
        """``schedule(progress in [0, 1])`` -> (2D weight, 3D weight, robust scale / box)."""
        batch = self.targets.batch
        damping = torch.full((batch,), self.fitter.config.damping)
        columns = self.columns(with_camera)
        posed = self.pose(state)
        for i in range(iterations):
            weights = schedule(i / max(iterations - 1, 1))
            cost, residual, jacobian = self.evaluate(state, posed, weights, with_jacobian=True,
                                                     shape_moves=with_camera and self.fitter.config.fit_shape)
            step = damped_step(jacobian * columns[:, None], residual, damping)
            trial = state.moved(step)
            trial_posed = self.pose(trial)  # one model pass a step: the next step starts from it
            better = self.evaluate(trial, trial_posed, weights, with_jacobian=False)[0] < cost
            state, posed = trial.where(better, state), trial_posed.where(better, posed)
            damping = torch.where(better, damping * 0.3, damping * 10).clamp(1e-7, 1e7)
        return state

    def pose(self, state: _FitState) -> _Posed:
        """``state``'s core rotations and keypoint parts (the model's keypoints-only pass)."""
        fitter = self.fitter
        core = roma.rotvec_to_rotmat(state.theta)
        parts = fitter.model.keypoint_parts(state.rotations(core), fitter.model_shape(state.shape()), fitter.keypoints, state.scales())
        return _Posed(core, parts)

    def columns(self, with_camera: bool) -> torch.Tensor:
        """(B, P) 1 for the unknowns this stage moves."""
        batch = self.targets.batch
        theta = self.free[..., None].expand(-1, -1, 3).reshape(batch, -1).float()
        camera = torch.full((batch, 3 + self.fitter.model.num_shape + len(self.fitter.scaled)), float(with_camera))
        if not self.fitter.config.fit_shape:
            camera[:, 3 : 3 + self.fitter.model.num_shape] = 0
        return torch.cat([theta, camera], dim=1)

    def evaluate(self, state: _FitState, posed: _Posed, weights: tuple[float, float, float], with_jacobian: bool,
                 shape_moves: bool = True):
        """(cost (B,), residuals (B, R), Jacobian (B, R, P) or None) at ``state`` (posed as ``posed``).

        The 2D term is Geman-McClure robust; its residuals carry iteratively reweighted
        least-squares weights, so Gauss-Newton on them follows the robust cost's gradient.
        ``shape_moves=False``: the phenotype columns of the Jacobian are left zero (a stage that
        holds the shape need not pay for them)."""
        fitter, targets = self.fitter, self.targets
        weight_2d, weight_3d, sigma = weights
        batch = targets.batch
        core, parts = posed.core, posed.parts
        points = parts.keypoints + state.translation[:, None]
        residuals, jacobians = [], []
        cost = torch.zeros(batch)
        if with_jacobian:
            lever = levers(parts, fitter.subtree, fitter.core)
            right = so3_right_jacobian(state.theta)
            d_theta = rotation_jacobian(parts, lever, fitter.core, state.theta, right).flatten(3)
            d_translation = torch.eye(3).expand(batch, points.shape[1], 3, 3)
            d_scale = lever[:, :, fitter.scaled].transpose(2, 3)  # d / d log-scale: the lever itself
            d_shape = (self.shape_jacobian(state, parts) if shape_moves
                       else torch.zeros(*points.shape, state.shape_logit.shape[1]))
            d_points = torch.cat([d_theta, d_translation, d_shape, d_scale], dim=-1)  # (B, K, 3, P)
        if weight_2d > 0:
            error = perspective_project(points, self.camera) - targets.xy
            d2 = error.square().sum(-1)
            s2 = (sigma * targets.box_size[:, None]).square()
            w = weight_2d * self.xy_weight
            cost = cost + (w * d2 / (d2 + s2)).sum(1)
            scale = (w * s2 / (d2 + s2).square()).sqrt()[..., None]
            residuals.append((scale * error).flatten(1))
            if with_jacobian:
                jacobians.append((scale[..., None] * (projection_jacobian(points, self.camera) @ d_points)).flatten(1, 2))
        root_3d = (weight_3d * self.world_weight).sqrt()[..., None]
        error = root_3d * (fitter.centring @ points - targets.world)
        residuals.append(error.flatten(1))
        cost = cost + error.square().sum((1, 2))
        if with_jacobian:
            jacobians.append((root_3d[..., None] * torch.einsum("kl,blcp->bkcp", fitter.centring, d_points)).flatten(1, 2))
        prior, prior_jacobian = self.priors(state, core, right if with_jacobian else None)
        residuals.append(prior)
        cost = cost + prior.square().sum(1)
        if with_jacobian:
            jacobians.append(prior_jacobian)
        return cost, torch.cat(residuals, dim=1), torch.cat(jacobians, dim=1) if with_jacobian else None

    def shape_jacobian(self, state: _FitState, parts: KeypointParts, step: float = 2e-3) -> torch.Tensor:
        """(B, K, 3, S) d keypoints / d phenotype logits at ``state`` (posed as ``parts``).

        At a fixed pose the keypoints are linear in the model's shape coefficients and rest
        joints (:func:`~hmrkit.body.keypoint_skinning.skinned_keypoint_directions`), so only the
        phenotypes -> coefficients step is differenced (forward differences, one batched call;
        Anny's phenotype blend is piecewise linear, so one-sided slopes are exact between its
        anchors) and no forward pass is needed."""
        fitter = self.fitter
        batch, n = state.shape_logit.shape
        logits = (state.shape_logit[None] + step * torch.eye(n)[:, None]).reshape(-1, n)  # (S * B, S)
        unit = torch.cat([state.shape(), 0.5 + 0.5 * torch.tanh(logits)])
        coefficients, rest = fitter.model.shape_blend(fitter.model_shape(unit))

        def slopes(values: torch.Tensor) -> torch.Tensor:  # (B + S * B, ...) -> (B, S, ...)
            moved = values[batch:].reshape(n, batch, *values.shape[1:])
            return ((moved - values[:batch]) / step).transpose(0, 1)

        return skinned_keypoint_directions(fitter.keypoints, fitter.tree, parts.world_rotations, slopes(coefficients), slopes(rest))

    def priors(self, state: _FitState, core: torch.Tensor, right: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prior residuals (B, Q) and, when ``right`` (the SO(3) right Jacobians of ``theta``) is
        given, their Jacobian (B, Q, P): pose L2, knee/elbow hinge limits, phenotypes near neutral,
        bone scales near 1, VAE latent mean. ``core``: ``exp(theta)``."""
        fitter, cfg, patterns = self.fitter, self.fitter.config, self.prior_patterns
        body = state.theta[:, 1:].flatten(1)
        flex = (state.theta[:, fitter.hinges] * fitter.hinge_axes).sum(-1)
        residuals = [cfg.weight_pose_prior**0.5 * body, cfg.weight_limits**0.5 * torch.relu(-flex),
                     cfg.weight_shape**0.5 * (state.shape() - 0.5), cfg.weight_bone_scale**0.5 * state.log_scale]
        if right is None:
            if patterns.vae:  # the trial steps need only the value: the encoder alone
                residuals.append(patterns.vae_scale * fitter.pose_prior.encode(core[:, 1:])[0])
            return torch.cat(residuals, dim=1), None
        jacobians = [patterns.body.expand(state.theta.shape[0], -1, -1),
                     patterns.limits * (flex < 0)[..., None],
                     patterns.shape * (1 - torch.tanh(state.shape_logit).square())[..., None],
                     patterns.scale.expand(state.theta.shape[0], -1, -1)]
        if patterns.vae:
            latent, d_latent = self.latent_mean(state.theta[:, 1:], core[:, 1:], right[:, 1:])
            residuals.append(patterns.vae_scale * latent)
            jacobians.append(torch.nn.functional.pad(patterns.vae_scale * d_latent, (3, patterns.columns - 3 - d_latent.shape[2])))
        return torch.cat(residuals, dim=1), torch.cat(jacobians, dim=1)

    def latent_mean(self, theta: torch.Tensor, rotations: torch.Tensor | None = None,
                    right: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 21, 3) body axis-angles -> the VAE prior's posterior mean (B, L) and its
        Jacobian (B, L, 63): the encoder's closed form chained with d 6D / d theta.
        ``rotations``, ``right``: ``exp(theta)`` and its right Jacobians, when the caller has them."""
        rotations = roma.rotvec_to_rotmat(theta) if rotations is None else rotations
        right = so3_right_jacobian(theta) if right is None else right
        mean, d_sixd = self.fitter.pose_prior.mean_with_jacobian(rotations)
        # d R / d theta_k = R skew(Jr e_k); the 6D input is R's first two columns, row by row
        turns = skew(right.transpose(-1, -2))  # (B, 21, 3 [k], 3, 3)
        d_rotation = rotations[:, :, None] @ turns
        d_input = d_rotation[..., :2].reshape(*theta.shape[:2], 3, 6).transpose(-1, -2)  # (B, 21, 6, 3)
        d_mean = torch.einsum("bljs,bjsk->bljk", d_sixd.reshape(*mean.shape, theta.shape[1], 6), d_input)
        return mean, d_mean.flatten(2)
