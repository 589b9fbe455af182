"""The body fit's inner loop compiled with numba: posed keypoints of a skinned model and their
exact Jacobian, and the robust 2D / 3D landmark residuals built from them.

Why: one Levenberg-Marquardt step of one person is a small problem (83 unknowns, ~600
residuals), but written as batched PyTorch it was 747 tensor calls on tiny tensors and 9.9 ms a
step, nearly all call overhead (``benchmarks/results/speed_parts.md`` as committed before this
module); as plain compiled loops the same arithmetic is a small part of a step (the rest: the
model's shape blend, the VAE prior, the 83 x 83 solve; ``speed_parts.md`` now). The first call
ever compiles the kernels (~6 s, then cached next to this file or in numba's per-user cache).
The kernels hold no model-specific code: a model gives its
kinematic tree, its compiled keypoint map (:func:`hmrkit.body.keypoint_skinning.compile_skinned_keypoints`)
and, per shape, its blend coefficients and rest joints (``model.shape_blend``).

The math (SMPL's convention, :mod:`hmrkit.body.kinematics`): joint ``j``'s world rotation is
``W_j = W_p R_j s_j`` and its position ``o_j = W_p (r_j - r_p) + o_p`` (``r``: rest joints,
``s``: bone scales). A keypoint is ``sum_j w_kj o_j`` plus pre-skinned surface parts
``W_j q + (o_j - W_j r_j) h`` (``q``: a weighted rest point with homogeneous weight ``h``).
- Turning core joint ``n`` by ``exp(theta_n + d) ~ exp(theta_n) exp(Jr d)`` moves every part
  its subtree carries by ``(U_n Jr d) x (part - h o_n)``, ``U_n`` the joint's world rotation
  with the scale divided out: the *lever* of keypoint ``k`` about ``n`` is the sum of those.
- ``d / d log s_n`` of a keypoint is the same lever.
- At a fixed pose the keypoints are linear in the shape coefficients and rest joints, so a
  shape direction ``(d coefficients, d rest joints)`` maps to the keypoints' change exactly.
Tested against autograd through the models' PyTorch forward (tests/test_fitting_kernels.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch

from hmrkit.body.keypoints import KeypointMap
from hmrkit.body.kinematics import KinematicTree


@dataclass(frozen=True)
class KernelSkeleton:
    """What the kernels read of a model and a compiled keypoint map, as float64 / int64 arrays."""

    parents: np.ndarray  # (J,) -1 at the root
    order: np.ndarray  # (J,) joints, each after its parent
    weight_entries: np.ndarray  # (E, 2) keypoint, joint of each nonzero joint weight
    weight_values: np.ndarray  # (E,)
    pairs: np.ndarray  # (P, 2) keypoint, joint of each pre-skinned surface part
    pair_base: np.ndarray  # (P, 4) weighted rest point and its homogeneous weight
    pair_blend: np.ndarray  # (C, P * 3) the rest points' change per shape coefficient
    core: int  # the first ``core`` joints have axis-angle unknowns
    num_keypoints: int

    @classmethod
    def build(cls, tree: KinematicTree, kmap: KeypointMap, core: int) -> KernelSkeleton:
        if kmap.skinned_base is None:
            raise ValueError("the fit needs a keypoint map from the model's compile_keypoints")
        weights = kmap.joint_weights.double()
        entries = torch.nonzero(weights)
        return cls(
            parents=np.asarray(tree.parents, dtype=np.int64),
            order=tree.order.numpy().astype(np.int64),
            weight_entries=entries.numpy().astype(np.int64),
            weight_values=weights[entries[:, 0], entries[:, 1]].numpy(),
            pairs=kmap.skinned_pairs.numpy().astype(np.int64),
            pair_base=kmap.skinned_base.double().numpy(),
            pair_blend=kmap.skinned_blend.double().numpy().copy(),
            core=core,
            num_keypoints=weights.shape[0],
        )

    def pair_offsets(self, coefficients: np.ndarray) -> np.ndarray:
        """(..., C) shape coefficients -> (..., P, 3) the surface parts' rest points' change."""
        return (coefficients @ self.pair_blend).reshape(*coefficients.shape[:-1], -1, 3)


@dataclass
class PosedSkeleton:
    """One pose through the kernels (batched, float64)."""

    core_rotations: np.ndarray  # (B, N, 3, 3) exp(theta) of the core joints
    right: np.ndarray  # (B, N, 3, 3) their SO(3) right Jacobians
    world: np.ndarray  # (B, J, 3, 3) world rotations (bone scales included)
    joints: np.ndarray  # (B, J, 3) posed joint positions (no translation)
    surface: np.ndarray  # (B, P, 3) posed surface parts
    keypoints: np.ndarray  # (B, K, 3) (no translation)


def exp_so3(theta: np.ndarray) -> np.ndarray:
    """(B, N, 3) axis-angles -> (B, N, 3, 3) rotations."""
    return _exp_and_right(np.ascontiguousarray(theta, dtype=np.float64))[0]


def pose(skeleton: KernelSkeleton, root: np.ndarray, theta: np.ndarray, held: np.ndarray, scales: np.ndarray,
         rest_joints: np.ndarray, coefficients: np.ndarray) -> PosedSkeleton:
    """Forward kinematics and keypoints. ``root`` (B, 3, 3) turns joint 0; ``theta`` (B, N, 3)
    the core joints' axis-angles; ``held`` (B, J - N, 3, 3) the other joints' rotations;
    ``scales`` (B, J); ``rest_joints`` (B, J, 3) and ``coefficients`` (B, C) from the shape."""
    s = skeleton
    core, right = _exp_and_right(theta)
    points = s.pair_base[:, :3] + s.pair_offsets(coefficients)
    local = np.concatenate([root[:, None] @ core[:, :1], core[:, 1:], held], axis=1)
    world, joints, surface, keypoints = _forward(local, scales, rest_joints, points, s.parents, s.order,
                                                 s.weight_entries, s.weight_values, s.pairs, s.pair_base, s.num_keypoints)
    return PosedSkeleton(core, right, world, joints, surface, keypoints)


def keypoint_jacobian(skeleton: KernelSkeleton, posed: PosedSkeleton, d_coefficients: np.ndarray, d_rest: np.ndarray,
                      scaled: np.ndarray) -> np.ndarray:
    """(B, K, 3, 3N + 3 + S + len(scaled)): d keypoints / d [theta, translation, S shape
    directions (``d_coefficients`` (B, S, C) with ``d_rest`` (B, S, J, 3)), log-scales of the
    ``scaled`` core joints]."""
    s = skeleton
    return _jacobian(posed.world, posed.joints, posed.surface, posed.right, s.pair_offsets(d_coefficients), d_rest, scaled,
                     s.parents, s.order, s.weight_entries, s.weight_values, s.pairs, s.pair_base, s.num_keypoints)


@dataclass(frozen=True)
class LandmarkTerms:
    """The fit's landmark targets as the kernels read them (float64); weights already normalized."""

    xy: np.ndarray  # (B, K, 2)
    xy_weight: np.ndarray  # (B, K)
    world: np.ndarray  # (B, K, 3)
    world_weight: np.ndarray  # (B, K)
    box_size: np.ndarray  # (B,)
    intrinsics: np.ndarray  # (B, 4) fx, fy, cx, cy
    centring: np.ndarray  # (K, K) ``centring @ points``: the 3D landmarks' frames (see body_fit.centring_matrix)


def landmark_residuals(terms: LandmarkTerms, points: np.ndarray, d_points: np.ndarray | None,
                       weight_2d: float, weight_3d: float, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(cost (B,), residuals (B, R), Jacobian (B, R, P) or None) of the landmark terms at camera-frame
    ``points`` (B, K, 3) with ``d_points`` (B, K, 3, P) their Jacobian (or None).

    2D: Geman-McClure robust reprojection (scale ``sigma`` times the person's box); its residuals
    carry iteratively reweighted least-squares weights, so Gauss-Newton on them follows the
    robust cost's gradient. Rows 2D (when ``weight_2d`` > 0), then 3D (centred points against
    MediaPipe's metric landmarks)."""
    jac = d_points is not None
    if d_points is None:
        d_points = np.zeros((points.shape[0], points.shape[1], 3, 0))
    cost, residual, jacobian = _landmarks(points, d_points, jac, terms.xy, terms.xy_weight, terms.world, terms.world_weight,
                                          terms.box_size, terms.intrinsics, terms.centring, weight_2d, weight_3d, sigma)
    return cost, residual, jacobian if jac else None


# ---------------------------------------------------------------------- compiled kernels
@numba.njit(cache=True, nogil=True)
def _exp_and_right(theta):
    batch, n = theta.shape[:2]
    rot = np.empty((batch, n, 3, 3))
    right = np.empty((batch, n, 3, 3))
    k = np.empty((3, 3))
    for b in range(batch):
        for j in range(n):
            x, y, z = theta[b, j, 0], theta[b, j, 1], theta[b, j, 2]
            t2 = x * x + y * y + z * z
            if t2 < 1e-6:  # series: sin t / t, (1 - cos t) / t^2, (t - sin t) / t^3
                sinc, cosc, sinc3 = 1.0 - t2 / 6.0, 0.5 - t2 / 24.0, 1.0 / 6.0 - t2 / 120.0
            else:
                t = np.sqrt(t2)
                sinc, cosc, sinc3 = np.sin(t) / t, (1.0 - np.cos(t)) / t2, (t - np.sin(t)) / (t2 * t)
            k[0, 0], k[0, 1], k[0, 2] = 0.0, -z, y
            k[1, 0], k[1, 1], k[1, 2] = z, 0.0, -x
            k[2, 0], k[2, 1], k[2, 2] = -y, x, 0.0
            for r in range(3):
                for c in range(3):
                    kk = k[r, 0] * k[0, c] + k[r, 1] * k[1, c] + k[r, 2] * k[2, c]
                    eye = 1.0 if r == c else 0.0
                    rot[b, j, r, c] = eye + sinc * k[r, c] + cosc * kk
                    right[b, j, r, c] = eye - cosc * k[r, c] + sinc3 * kk
    return rot, right


@numba.njit(cache=True, nogil=True)
def _forward(local, scales, rest, points, parents, order, weight_entries, weight_values, pairs, pair_base, num_keypoints):
    batch, joints_count = local.shape[:2]
    world = np.empty((batch, joints_count, 3, 3))
    joints = np.empty((batch, joints_count, 3))
    surface = np.empty((batch, pairs.shape[0], 3))
    keypoints = np.zeros((batch, num_keypoints, 3))
    for b in range(batch):
        for i in range(joints_count):
            j = order[i]
            p = parents[j]
            s = scales[b, j]
            for r in range(3):
                if p < 0:
                    joints[b, j, r] = rest[b, j, r]
                    for c in range(3):
                        world[b, j, r, c] = local[b, j, r, c] * s
                else:
                    acc = joints[b, p, r]
                    for c in range(3):
                        acc += world[b, p, r, c] * (rest[b, j, c] - rest[b, p, c])
                        world[b, j, r, c] = s * (world[b, p, r, 0] * local[b, j, 0, c] + world[b, p, r, 1] * local[b, j, 1, c]
                                                 + world[b, p, r, 2] * local[b, j, 2, c])
                    joints[b, j, r] = acc
        for e in range(weight_entries.shape[0]):
            k, j = weight_entries[e, 0], weight_entries[e, 1]
            for r in range(3):
                keypoints[b, k, r] += weight_values[e] * joints[b, j, r]
        for q in range(pairs.shape[0]):
            k, j = pairs[q, 0], pairs[q, 1]
            h = pair_base[q, 3]
            for r in range(3):
                acc = h * joints[b, j, r]
                for c in range(3):
                    acc += world[b, j, r, c] * (points[b, q, c] - h * rest[b, j, c])
                surface[b, q, r] = acc
                keypoints[b, k, r] += acc
    return world, joints, surface, keypoints


@numba.njit(cache=True, nogil=True)
def _add_lever(lever, parents, k, j, point, weight, joints_b):
    """Adds a part (``point`` with homogeneous ``weight``) carried by joint ``j`` to the levers
    of ``j`` and of each of its core ancestors."""
    a = j
    n = lever.shape[1]
    while a >= 0:
        if a < n:
            for r in range(3):
                lever[k, a, r] += point[r] - weight * joints_b[a, r]
        a = parents[a]


@numba.njit(cache=True, nogil=True)
def _jacobian(world, joints, surface, right, d_points, d_rest, scaled, parents, order, weight_entries,
              weight_values, pairs, pair_base, num_keypoints):
    batch, n = right.shape[:2]
    joints_count = parents.shape[0]
    shapes = d_points.shape[1]
    columns = 3 * n + 3 + shapes + scaled.shape[0]
    out = np.zeros((batch, num_keypoints, 3, columns))
    lever = np.empty((num_keypoints, n, 3))
    frame = np.empty((3, 3))
    unit = np.empty((3, 3))
    part = np.empty(3)
    d_joints = np.empty((shapes, joints_count, 3))
    d_point = np.empty(3)
    for b in range(batch):
        lever[:] = 0.0
        for e in range(weight_entries.shape[0]):
            k, j = weight_entries[e, 0], weight_entries[e, 1]
            w = weight_values[e]
            for r in range(3):
                part[r] = w * joints[b, j, r]
            _add_lever(lever, parents, k, j, part, w, joints[b])
        for q in range(pairs.shape[0]):
            _add_lever(lever, parents, pairs[q, 0], pairs[q, 1], surface[b, q], pair_base[q, 3], joints[b])
        # turns: (U_n Jr e_a) x lever
        for j in range(n):
            norm = np.sqrt(world[b, j, 0, 0] ** 2 + world[b, j, 1, 0] ** 2 + world[b, j, 2, 0] ** 2)
            norm = max(norm, 1e-8)
            for r in range(3):
                for c in range(3):
                    unit[r, c] = world[b, j, r, c] / norm
            for r in range(3):
                for c in range(3):
                    frame[r, c] = unit[r, 0] * right[b, j, 0, c] + unit[r, 1] * right[b, j, 1, c] + unit[r, 2] * right[b, j, 2, c]
            for k in range(num_keypoints):
                lx, ly, lz = lever[k, j, 0], lever[k, j, 1], lever[k, j, 2]
                for a in range(3):
                    fx, fy, fz = frame[0, a], frame[1, a], frame[2, a]
                    out[b, k, 0, 3 * j + a] = fy * lz - fz * ly
                    out[b, k, 1, 3 * j + a] = fz * lx - fx * lz
                    out[b, k, 2, 3 * j + a] = fx * ly - fy * lx
        for k in range(num_keypoints):
            for r in range(3):
                out[b, k, r, 3 * n + r] = 1.0
        # shape directions: a posed joint is the sum of its path's bone offsets, each turned by
        # its parent's world rotation; a surface part is its joint's transform of a rest point
        base = 3 * n + 3
        for s in range(shapes):
            for i in range(joints_count):
                j = order[i]
                p = parents[j]
                for r in range(3):
                    if p < 0:
                        d_joints[s, j, r] = d_rest[b, s, j, r]
                    else:
                        acc = d_joints[s, p, r]
                        for c in range(3):
                            acc += world[b, p, r, c] * (d_rest[b, s, j, c] - d_rest[b, s, p, c])
                        d_joints[s, j, r] = acc
            for e in range(weight_entries.shape[0]):
                k, j = weight_entries[e, 0], weight_entries[e, 1]
                for r in range(3):
                    out[b, k, r, base + s] += weight_values[e] * d_joints[s, j, r]
            for q in range(pairs.shape[0]):
                k, j = pairs[q, 0], pairs[q, 1]
                h = pair_base[q, 3]
                for c in range(3):
                    d_point[c] = d_points[b, s, q, c] - h * d_rest[b, s, j, c]
                for r in range(3):
                    acc = h * d_joints[s, j, r]
                    for c in range(3):
                        acc += world[b, j, r, c] * d_point[c]
                    out[b, k, r, base + s] += acc
        for i in range(scaled.shape[0]):
            for k in range(num_keypoints):
                for r in range(3):
                    out[b, k, r, base + shapes + i] = lever[k, scaled[i], r]
    return out


@numba.njit(cache=True, nogil=True)
def _landmarks(points, d_points, with_jacobian, xy, xy_weight, world, world_weight, box_size, intrinsics, centring,
               weight_2d, weight_3d, sigma):
    batch, k_count = points.shape[:2]
    columns = d_points.shape[3]
    rows_2d = 2 * k_count if weight_2d > 0 else 0
    rows = rows_2d + 3 * k_count
    cost = np.zeros(batch)
    residual = np.empty((batch, rows))
    jacobian = np.zeros((batch, rows if with_jacobian else 0, columns))
    for b in range(batch):
        fx, fy, cx, cy = intrinsics[b, 0], intrinsics[b, 1], intrinsics[b, 2], intrinsics[b, 3]
        if rows_2d > 0:
            s2 = (sigma * box_size[b]) ** 2
            for k in range(k_count):
                x, y, z = points[b, k, 0], points[b, k, 1], points[b, k, 2]
                eu = fx * x / z + cx - xy[b, k, 0]
                ev = fy * y / z + cy - xy[b, k, 1]
                d2 = eu * eu + ev * ev
                w = weight_2d * xy_weight[b, k]
                cost[b] += w * d2 / (d2 + s2)
                scale = np.sqrt(w * s2) / (d2 + s2)
                residual[b, 2 * k] = scale * eu
                residual[b, 2 * k + 1] = scale * ev
                if with_jacobian:
                    zc = max(z, 1e-3)
                    for p in range(columns):
                        dx, dy, dz = d_points[b, k, 0, p], d_points[b, k, 1, p], d_points[b, k, 2, p]
                        jacobian[b, 2 * k, p] = scale * fx * (dx - x / zc * dz) / zc
                        jacobian[b, 2 * k + 1, p] = scale * fy * (dy - y / zc * dz) / zc
        for k in range(k_count):
            root = np.sqrt(weight_3d * world_weight[b, k])
            for r in range(3):
                acc = 0.0
                for m in range(k_count):
                    acc += centring[k, m] * points[b, m, r]
                e = root * (acc - world[b, k, r])
                residual[b, rows_2d + 3 * k + r] = e
                cost[b] += e * e
            if with_jacobian and root > 0:
                for m in range(k_count):
                    c = centring[k, m]
                    if c != 0.0:
                        for r in range(3):
                            for p in range(columns):
                                jacobian[b, rows_2d + 3 * k + r, p] += root * c * d_points[b, m, r, p]
    return cost, residual, jacobian
