import math

import numpy as np
import pytest
import roma
import torch
from scipy.spatial.transform import Rotation

from hmrkit.geometry.rotations import (
    axis_angle_to_matrix,
    axis_angle_to_sixd,
    geodesic_angle,
    matrix_to_axis_angle,
    matrix_to_sixd,
    sixd_to_axis_angle,
    sixd_to_matrix,
)


def rot_z(a: float) -> torch.Tensor:
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def test_sixd_layout_is_first_two_columns_row_major():
    # Rz(90deg) = [[0,-1,0],[1,0,0],[0,0,1]]: columns 0 and 1 read row by row.
    R = rot_z(math.pi / 2)
    assert torch.allclose(matrix_to_sixd(R), torch.tensor([0.0, -1, 1, 0, 0, 0], dtype=torch.float64), atol=1e-15)


def test_sixd_to_matrix_orthonormalizes():
    # Columns (2,0,0) and (1,3,0): Gram-Schmidt gives x, y; their cross product z.
    x = torch.tensor([2.0, 1, 0, 3, 0, 0], dtype=torch.float64)
    assert torch.allclose(sixd_to_matrix(x), torch.eye(3, dtype=torch.float64))


def test_sixd_round_trip_batched():
    R = roma.random_rotmat((4, 5), dtype=torch.float64)
    assert matrix_to_sixd(R).shape == (4, 5, 6)
    assert torch.allclose(sixd_to_matrix(matrix_to_sixd(R)), R, atol=1e-12)


def test_axis_angle_matches_scipy_and_round_trips():
    aa = torch.tensor([[0.3, -0.2, 0.1], [0.0, 0.0, 2.5], [1.0, 1.0, -1.0]], dtype=torch.float64)
    assert torch.allclose(axis_angle_to_matrix(aa), torch.from_numpy(Rotation.from_rotvec(aa.numpy()).as_matrix()))
    assert torch.allclose(matrix_to_axis_angle(axis_angle_to_matrix(aa)), aa, atol=1e-12)
    assert torch.allclose(sixd_to_axis_angle(axis_angle_to_sixd(aa)), aa, atol=1e-12)


def test_zero_sixd_gives_finite_output():
    assert torch.isfinite(sixd_to_matrix(torch.zeros(2, 6))).all()


def test_geodesic_angle():
    assert geodesic_angle(rot_z(0.3), rot_z(1.0)).item() == pytest.approx(0.7, abs=1e-12)
    R1, R2 = roma.random_rotmat(50, dtype=torch.float64), roma.random_rotmat(50, dtype=torch.float64)
    trace = np.einsum("bij,bij->b", R1.numpy(), R2.numpy())  # tr(R1^T R2)
    expected = np.arccos(np.clip((trace - 1) / 2, -1, 1))
    assert np.allclose(geodesic_angle(R1, R2).numpy(), expected, atol=1e-6)
    assert geodesic_angle(R1, R2[:1]).shape == (50,)  # broadcasts


@pytest.mark.parametrize(
    "fn, bad",
    [
        (sixd_to_matrix, torch.zeros(4, 5)),
        (matrix_to_sixd, torch.zeros(4, 3, 2)),
        (axis_angle_to_sixd, torch.zeros(4, 4)),
        (lambda R: geodesic_angle(R, torch.eye(3)), torch.zeros(3)),
    ],
)
def test_bad_shapes_raise(fn, bad):
    with pytest.raises(ValueError, match="shape"):
        fn(bad)
