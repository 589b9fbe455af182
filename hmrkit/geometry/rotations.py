"""Rotation conversions: matrices inside models, 6D from networks, axis-angle in files.

The maths is `roma`'s. What this module adds is hmrkit's 6D layout (Zhou et al., CVPR 2019):
the first two COLUMNS of R, ``R[..., :, :2]`` of shape (..., 3, 2), flattened row-major to
(..., 6) = ``[R00, R01, R10, R11, R20, R21]`` -- the layout of SPIN/HMR2 heads, and the one
``roma.special_gramschmidt`` reads back.
"""

from __future__ import annotations

import roma
import torch

# Axis-angle <-> matrix is exactly roma's; these names only match hmrkit's vocabulary.
axis_angle_to_matrix = roma.rotvec_to_rotmat
matrix_to_axis_angle = roma.rotmat_to_rotvec


def _check_matrix(R: torch.Tensor, name: str = "R") -> None:
    if R.ndim < 2 or R.shape[-2:] != (3, 3):
        raise ValueError(f"{name} must have shape (..., 3, 3), got {tuple(R.shape)}")


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
    return roma.special_gramschmidt(x.reshape(*x.shape[:-1], 3, 2), epsilon=eps)


def axis_angle_to_sixd(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle (radians) -> (..., 6)."""
    if axis_angle.ndim < 1 or axis_angle.shape[-1] != 3:
        raise ValueError(f"axis-angle must have shape (..., 3), got {tuple(axis_angle.shape)}")
    return matrix_to_sixd(roma.rotvec_to_rotmat(axis_angle))


def sixd_to_axis_angle(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3) axis-angle with angle in [0, pi]."""
    return roma.rotmat_to_rotvec(sixd_to_matrix(x))


def geodesic_angle(R1: torch.Tensor, R2: torch.Tensor) -> torch.Tensor:
    """Angle in radians, in [0, pi], of the rotation taking R1 to R2; shapes (..., 3, 3) broadcast."""
    _check_matrix(R1, "R1")
    _check_matrix(R2, "R2")
    return roma.rotmat_geodesic_distance(R1, R2)
