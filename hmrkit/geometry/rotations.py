"""Rotation conversions: matrices inside models, 6D from networks, axis-angle in files.

hmrkit's 6D layout (Zhou et al., CVPR 2019) is the first two COLUMNS of R, ``R[..., :, :2]`` of
shape (..., 3, 2), flattened row-major to (..., 6) = ``[R00, R01, R10, R11, R20, R21]`` -- the
layout of SPIN/HMR2 heads.

The conversions are `roma`'s formulas (roma 1.8.0, BSD-3-Clause; the tests compare them with roma),
written here because importing roma imports ``torch._dynamo`` (about 1.4 s, most of a photo's
start-up in ``benchmarks/results/pipeline_startup.md``), which ``hmrkit run`` never uses. The
trainers and data readers still use roma itself.
"""

from __future__ import annotations

import math

import torch


def _check_matrix(R: torch.Tensor, name: str = "R") -> None:
    if R.ndim < 2 or R.shape[-2:] != (3, 3):
        raise ValueError(f"{name} must have shape (..., 3, 3), got {tuple(R.shape)}")


def axis_angle_to_matrix(rotvec: torch.Tensor, epsilon: float = 1e-6) -> torch.Tensor:
    """(..., 3) axis-angle -> (..., 3, 3): Rodrigues, and its first-order form below ``epsilon``
    (so a zero rotation has a gradient, as in roma)."""
    theta = torch.linalg.vector_norm(rotvec, dim=-1)
    axis = rotvec / theta[..., None].clamp_min(epsilon)
    kx, ky, kz = axis.unbind(-1)
    s, c1 = torch.sin(theta), 1 - torch.cos(theta)
    xx, yy, zz, xy, xz, yz = kx**2 * c1, ky**2 * c1, kz**2 * c1, kx * ky * c1, kx * kz * c1, ky * kz * c1
    rodrigues = torch.stack([1 - yy - zz, xy - kz * s, xz + ky * s,
                             xy + kz * s, 1 - xx - zz, yz - kx * s,
                             xz - ky * s, yz + kx * s, 1 - xx - yy], dim=-1)
    x, y, z = rotvec.unbind(-1)
    one = torch.ones_like(x)
    first_order = torch.stack([one, -z, y, z, one, -x, -y, x, one], dim=-1)
    return torch.where((theta < epsilon)[..., None], first_order, rodrigues).unflatten(-1, (3, 3))


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 4) unit quaternions, XYZW (Markley 2008: the best of Shepperd's four
    candidates, normalized, so a slightly non-orthonormal input still gives a unit quaternion)."""
    _check_matrix(R)
    (a11, a12, a13), (a21, a22, a23), (a31, a32, a33) = (row.unbind(-1) for row in R.transpose(-1, -2).unbind(-2))
    x = torch.stack([1 + a11 - a22 - a33, a12 + a21, a13 + a31, a23 - a32,
                     a21 + a12, 1 + a22 - a33 - a11, a23 + a32, a31 - a13,
                     a31 + a13, a32 + a23, 1 + a33 - a11 - a22, a12 - a21,
                     a23 - a32, a31 - a13, a12 - a21, 1 + a11 + a22 + a33], dim=-1).unflatten(-1, (4, 4))
    best = x.diagonal(dim1=-2, dim2=-1).argmax(dim=-1)
    q = torch.gather(x, -2, best[..., None, None].expand(*best.shape, 1, 4))[..., 0, :]
    return q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) unit quaternions, XYZW (not normalized here) -> (..., 3, 3)."""
    x, y, z, w = q.unbind(-1)
    return torch.stack([x * x - y * y - z * z + w * w, 2 * (x * y - z * w), 2 * (x * z + y * w),
                        2 * (x * y + z * w), -x * x + y * y - z * z + w * w, 2 * (y * z - x * w),
                        2 * (x * z - y * w), 2 * (y * z + x * w), -x * x - y * y + z * z + w * w], dim=-1).unflatten(-1, (3, 3))


def _inv_sinc(x: torch.Tensor) -> torch.Tensor:
    """x / sin(x), by its Taylor series below roma's threshold (2 eps^(1/6), where the two forms'
    derivative errors cross)."""
    small = x.abs() < 2.0 * torch.finfo(x.dtype).eps ** (1 / 6)
    return torch.where(small, 1 + x**2 / 6 + 7 * x**4 / 360, x / torch.where(small, torch.ones_like(x), torch.sin(x)))


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3) axis-angle with the angle in [0, pi] (through the quaternion)."""
    q = matrix_to_quaternion(R)
    q = q * ((q[..., 3:] > 0).to(q.dtype) * 2 - 1)  # w > 0: the shortest arc
    half = torch.atan2(torch.linalg.vector_norm(q[..., :3], dim=-1), q[..., 3])
    return 2 * _inv_sinc(half)[..., None] * q[..., :3]


def matrix_to_euler_xyz(R: torch.Tensor, epsilon: float = 1e-7) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3) intrinsic X-Y-Z Euler angles (R = Rx(a) Ry(b) Rz(c)), in [-pi, pi];
    at gimbal lock (b = +-pi/2) the last angle is 0. Bernardes and Viollet's quaternion method, as
    roma's ``rotmat_to_euler("XYZ", R)``."""
    qx, qy, qz, qw = matrix_to_quaternion(R).unbind(-1)
    a, b, c, d = qw - qy, qz - qx, qy + qw, -qx - qz
    middle = 2 * torch.atan2(torch.hypot(c, d), torch.hypot(a, b))
    half_sum, half_diff = torch.atan2(b, a), torch.atan2(d, c)
    at_zero, at_pi = middle.abs() <= epsilon, (middle - math.pi).abs() <= epsilon
    last = torch.where(at_zero | at_pi, torch.zeros_like(middle), half_sum - half_diff)
    first = torch.where(at_zero, 2 * half_sum, torch.where(at_pi, 2 * half_diff, half_sum + half_diff))
    angles = torch.stack([-first, middle - math.pi / 2, last], dim=-1)
    return torch.where(angles < -math.pi, angles + 2 * math.pi, torch.where(angles > math.pi, angles - 2 * math.pi, angles))


def gram_schmidt(M: torch.Tensor, epsilon: float = 0.0) -> torch.Tensor:
    """(..., 3, N >= 2) -> (..., 3, 3): the rotation whose first two columns are M's first two,
    orthonormalized; ``epsilon`` clamps the norms (a zero input then gives no NaN)."""
    x, y = M[..., :, 0], M[..., :, 1]
    x = x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(epsilon)
    y = y - (x * y).sum(-1, keepdim=True) * x
    y = y / torch.linalg.vector_norm(y, dim=-1, keepdim=True).clamp_min(epsilon)
    return torch.stack([x, y, torch.linalg.cross(x, y)], dim=-1)


def matrix_to_sixd(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 6): first two columns, flattened row by row."""
    _check_matrix(R)
    return R[..., :, :2].reshape(*R.shape[:-2], 6)


def sixd_to_matrix(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt on the two columns; any non-degenerate input is valid.

    ``eps`` clamps the column norms so a zero network output gives no NaN.
    """
    if x.ndim < 1 or x.shape[-1] != 6:
        raise ValueError(f"6D rotations must have shape (..., 6), got {tuple(x.shape)}")
    return gram_schmidt(x.reshape(*x.shape[:-1], 3, 2), epsilon=eps)


def axis_angle_to_sixd(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle (radians) -> (..., 6)."""
    if axis_angle.ndim < 1 or axis_angle.shape[-1] != 3:
        raise ValueError(f"axis-angle must have shape (..., 3), got {tuple(axis_angle.shape)}")
    return matrix_to_sixd(axis_angle_to_matrix(axis_angle))


def sixd_to_axis_angle(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3) axis-angle with angle in [0, pi]."""
    return matrix_to_axis_angle(sixd_to_matrix(x))


def geodesic_angle(R1: torch.Tensor, R2: torch.Tensor) -> torch.Tensor:
    """Angle in radians, in [0, pi], of the rotation taking R1 to R2; shapes (..., 3, 3) broadcast
    (from |R2 - R1|_F = 2 sqrt(2) sin(angle / 2))."""
    _check_matrix(R1, "R1")
    _check_matrix(R2, "R2")
    return 2.0 * torch.asin((torch.norm(R2 - R1, dim=[-1, -2]) * (1 / (2 * math.sqrt(2)))).clamp_max(1.0))
