"""Whole-body fitting: Anny's pose, shape and translation in a perspective camera, to landmarks.

Optimization-only estimation (issue 3, version 1), and the refinement step after a regressor.
All people of an image are fitted together as one batch. Every iteration runs the
keypoints-only forward (no mesh), the mesh is built once at the end.

Stages:
1. *3D*: orientation and limbs to MediaPipe's metric 3D landmarks (hip-centred), starting
   from the torso frame those landmarks give (or from an initial pose, e.g. a regressor's).
2. *Translation*: solved in closed form so the posed keypoints project onto the 2D landmarks.
3. *2D + 3D*: everything, including hands and phenotypes, to robust 2D reprojection plus the
   3D term, with a pose prior, hinge limits for knees and elbows, and a shape prior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import roma
import torch

from hmrkit.body.anny_model import AnnyModel
from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.body.conventions import MEDIAPIPE33
from hmrkit.body.keypoints import KeypointMap
from hmrkit.fitting.targets import BODY, FIT_KEYPOINTS, HAND_SLICES, FitTargets
from hmrkit.models.pose_prior import PosePrior
from hmrkit.geometry.cameras import PerspectiveCamera, perspective_project


@dataclass
class BodyFitConfig:
    iterations_3d: int = 15
    iterations_2d: int = 60
    # with an initial pose (video: the previous frame) far fewer iterations are needed
    warm_iterations_3d: int = 8
    warm_iterations_2d: int = 20
    learning_rate: float = 0.04
    translation_lr_scale: float = 0.25  # metres vs radians: the translation's step relative to the rest
    weight_2d: float = 1.0
    weight_3d: float = 2.0
    final_weight_3d: float = 0.2  # the 3D weight decays to this over stage 3
    weight_pose_prior: float = 0.002  # L2 on the body's axis-angles (keeps unseen joints near rest)
    weight_vae_prior: float = 1e-4  # KL of the mocap-trained VAE pose prior (nats; ~50 on real poses)
    weight_finger_prior: float = 0.001
    weight_limits: float = 1.0
    weight_shape: float = 0.02
    # Geman-McClure scale as a fraction of the person's box, annealed from start to end so
    # that far-off points still pull at first and outliers stop pulling at the end
    robust_sigma: tuple[float, float] = (0.3, 0.05)
    fit_shape: bool = True


@dataclass
class FitInit:
    """A starting point for the fit (batched): a regressor's output or the previous frame's fit."""

    rotations: torch.Tensor  # (B, J, 3, 3), joint 0 in the camera frame
    shape: torch.Tensor  # (B, 6)
    translation: torch.Tensor | None = None  # (B, 3); None: solved from the 2D landmarks


@dataclass
class FixedJoints:
    """Joints the fit must not move: ``rotations`` (B, J, 3, 3) where ``mask`` (B, J) is set."""

    rotations: torch.Tensor
    mask: torch.Tensor


class BodyEstimator(Protocol):
    """A learned body estimator (e.g. HKMR): landmarks in, a starting pose out."""

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


def hinge_axes(model: AnnyModel) -> tuple[list[int], torch.Tensor]:
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


class BodyFitter:
    """Holds the model and the fit keypoint map; ``fit`` runs the stages for one image's people."""

    def __init__(self, model: AnnyModel, keypoints: KeypointMap, config: BodyFitConfig | None = None,
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
        left_hip, right_hip = MEDIAPIPE33.index("left_hip"), MEDIAPIPE33.index("right_hip")
        self.hips = [left_hip, right_hip]

    def _relative(self, points: torch.Tensor) -> torch.Tensor:
        """Body part hip-centred, each hand centroid-centred: the frames of MediaPipe's world landmarks."""
        parts = [points[:, BODY] - points[:, self.hips].mean(dim=1, keepdim=True)]
        for side in ("left", "right"):
            hand = points[:, HAND_SLICES[side]]
            parts.append(hand - hand.mean(dim=1, keepdim=True))
        return torch.cat(parts, dim=1)

    def fit(
        self,
        targets: FitTargets,
        camera: PerspectiveCamera,
        init: FitInit | None = None,
        iterations: tuple[int, int] | None = None,
        fixed: FixedJoints | None = None,
    ) -> BodyFit:
        """Fit everyone in ``targets``. ``init``: a starting pose (a regressor's, or the previous
        video frame's); ``iterations``: (3D stage, 2D stage), default from the config (cold or
        warm); ``fixed``: joints held at given rotations (the hand IK's fingers)."""
        cfg = self.config
        batch, joints = targets.batch, self.model.num_joints
        if iterations is None:
            iterations = (cfg.iterations_3d, cfg.iterations_2d) if init is None else (cfg.warm_iterations_3d, cfg.warm_iterations_2d)
        if init is None:
            root = torso_frame(targets.world)
            local = torch.zeros(batch, joints - 1, 3)
        else:
            root = init.rotations[:, 0]
            local = roma.rotmat_to_rotvec(init.rotations[:, 1:])
        root_delta = torch.zeros(batch, 3, requires_grad=True)
        local = local.clone().requires_grad_()
        shape_logit = torch.zeros(batch, 6) if init is None else torch.atanh((init.shape * 2 - 1).clamp(-0.99, 0.99))
        shape_logit.requires_grad_()
        translation = torch.zeros(batch, 3, requires_grad=True)

        def pose() -> torch.Tensor:
            r0 = root @ roma.rotvec_to_rotmat(root_delta)
            rest = roma.rotvec_to_rotmat(local)
            if fixed is not None:
                rest = torch.where(fixed.mask[:, 1:, None, None], fixed.rotations[:, 1:], rest)
            return torch.cat([r0[:, None], rest], dim=1)

        def shape() -> torch.Tensor:
            return 0.5 + 0.5 * torch.tanh(shape_logit)

        def keypoints(with_translation: bool) -> torch.Tensor:
            out = self.model(pose(), shape(), translation if with_translation else None, with_vertices=False, keypoints=self.keypoints)
            return out.keypoints

        def priors() -> torch.Tensor:
            body = local[:, : NUM_BODY_CORE - 1].square().sum((1, 2))
            fingers = local[:, NUM_BODY_CORE - 1 :].square().sum((1, 2))
            flex = (local[:, [j - 1 for j in self.hinges]] * self.hinge_axes).sum(-1)
            limits = torch.relu(-flex).square().sum(1)
            loss = cfg.weight_pose_prior * body + cfg.weight_finger_prior * fingers + cfg.weight_limits * limits
            if self.pose_prior is not None:
                core = roma.rotvec_to_rotmat(local[:, : NUM_BODY_CORE - 1])
                loss = loss + cfg.weight_vae_prior * self.pose_prior.kl(core)
            return loss + cfg.weight_shape * (shape() - 0.5).square().sum(1)

        def loss_3d(points: torch.Tensor, weight: float = cfg.weight_3d) -> torch.Tensor:
            err = (self._relative(points) - targets.world).square().sum(-1)
            return weight * (err * targets.world_weight).sum(1) / targets.world_weight.sum(1).clamp(min=1)

        # stage 1: 3D only (no translation, no hands' 2D)
        optimizer = torch.optim.Adam([root_delta, local], lr=cfg.learning_rate)
        for _ in range(iterations[0]):
            optimizer.zero_grad()
            loss = (loss_3d(keypoints(False)) + priors()).sum()
            loss.backward()
            optimizer.step()

        # stage 2: closed-form translation (unless the initial guess has one)
        with torch.no_grad():
            if init is not None and init.translation is not None:
                translation.copy_(init.translation)
            else:
                translation.copy_(self.solve_translation(pose(), shape(), targets, camera))

        # stage 3: everything
        groups = [{"params": [root_delta, local]}, {"params": [translation], "lr": cfg.learning_rate * cfg.translation_lr_scale}]
        if cfg.fit_shape:
            groups.append({"params": [shape_logit]})
        optimizer = torch.optim.Adam(groups, lr=cfg.learning_rate)
        steps = iterations[1]
        for step in range(steps):
            progress = step / max(steps - 1, 1)
            sigma = cfg.robust_sigma[0] ** (1 - progress) * cfg.robust_sigma[1] ** progress * targets.box_size[:, None]
            optimizer.zero_grad()
            points = keypoints(True)
            residual = (perspective_project(points, camera) - targets.xy).square().sum(-1)
            robust = residual / (residual + sigma.square())
            loss_2d = cfg.weight_2d * (robust * targets.xy_weight).sum(1) / targets.xy_weight.sum(1).clamp(min=1)
            # MediaPipe's 3D and 2D landmarks disagree a little: the 3D term guides, then yields to 2D
            weight_3d = cfg.weight_3d ** (1 - progress) * cfg.final_weight_3d ** progress
            loss = (loss_2d + loss_3d(points, weight_3d) + priors()).sum()
            loss.backward()
            optimizer.step()

        with torch.no_grad():
            return self.evaluate(pose(), shape(), translation.detach(), targets, camera)

    @torch.no_grad()
    def solve_translation(self, rotations: torch.Tensor, shape: torch.Tensor, targets: FitTargets, camera: PerspectiveCamera) -> torch.Tensor:
        """The camera translation that best puts this pose onto the 2D landmarks (closed form)."""
        points = self.model(rotations, shape, with_vertices=False, keypoints=self.keypoints).keypoints
        return solve_translation(points, targets.xy, targets.xy_weight, camera)

    @torch.no_grad()
    def evaluate(self, rotations: torch.Tensor, shape: torch.Tensor, translation: torch.Tensor, targets: FitTargets,
                 camera: PerspectiveCamera) -> BodyFit:
        """The :class:`BodyFit` of given parameters (e.g. smoothed ones) against ``targets``."""
        points = self.model(rotations, shape, translation, with_vertices=False, keypoints=self.keypoints).keypoints
        xy = perspective_project(points, camera)
        seen = targets.xy_weight > 0
        error = ((xy - targets.xy).norm(dim=-1) * seen).sum(1) / seen.sum(1).clamp(min=1)
        return BodyFit(rotations, shape, translation, points, xy, error)
