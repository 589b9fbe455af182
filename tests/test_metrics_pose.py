import math

import numpy as np
import pytest
import roma
import torch

from hmrkit.eval.metrics import acceleration_error, mpjpe, pa_mpjpe, pa_pve, pve


def test_mpjpe_by_hand_with_mask():
    target = torch.zeros(2, 2, 3)
    pred = torch.tensor([[[0.0, 0, 0], [1, 0, 0]], [[3, 4, 0], [0, 0, 0]]])
    assert torch.allclose(mpjpe(pred, target), torch.tensor([0.5, 2.5]))  # (0 + 1) / 2, (5 + 0) / 2
    assert torch.allclose(mpjpe(pred, target, mask=torch.tensor([True, False])), torch.tensor([0.0, 5.0]))
    per_sample = torch.tensor([[True, True], [False, True]])
    assert torch.allclose(mpjpe(pred, target, mask=per_sample), torch.tensor([0.5, 0.0]))


def test_mpjpe_root_alignment():
    target = torch.randn(3, 5, 3, dtype=torch.float64)
    pred = target + torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64)  # |offset| = 3
    assert torch.allclose(mpjpe(pred, target), torch.full((3,), 3.0, dtype=torch.float64))
    assert torch.allclose(mpjpe(pred, target, root=0), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    # root as the mean of joints 1 and 2: moving joint 1 by 2 moves the root by 1
    pred = target.clone()
    pred[:, 1, 0] += 2.0
    # after alignment joint 1 is off by 1, the other four by 1 -> mean 1
    assert torch.allclose(mpjpe(pred, target, root=[1, 2]), torch.ones(3, dtype=torch.float64))


def test_pa_mpjpe_by_hand():
    # target: square (+-1, +-1, 0); pred lifts one diagonal to z = +1 and the other to -1.
    # Best similarity (worked on paper): R = I, t = 0, s = tr(M) / sum|x|^2 = 8 / 12 = 2/3;
    # each residual is |(2/3)(1,1,1) - (1,1,0)| up to signs = sqrt(6) / 3.
    target = torch.tensor([[[1.0, 1, 0], [-1, -1, 0], [1, -1, 0], [-1, 1, 0]]], dtype=torch.float64)
    pred = torch.tensor([[[1.0, 1, 1], [-1, -1, 1], [1, -1, -1], [-1, 1, -1]]], dtype=torch.float64)
    assert pa_mpjpe(pred, target).item() == pytest.approx(math.sqrt(6) / 3, rel=1e-12)
    # invariant to any similarity applied to the prediction
    R = roma.random_rotmat(1, dtype=torch.float64)
    moved = 3.0 * pred @ R.transpose(1, 2) + torch.tensor([5.0, -2.0, 7.0], dtype=torch.float64)
    assert pa_mpjpe(moved, target).item() == pytest.approx(math.sqrt(6) / 3, rel=1e-9)


def test_pa_mpjpe_mask_ignores_outliers_and_numpy_in_numpy_out():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(2, 8, 3))
    R = roma.random_rotmat(2, dtype=torch.float64).numpy()
    pred = 0.7 * target @ R.transpose(0, 2, 1) + 1.0
    pred[:, 0] += 10.0
    mask = np.arange(8) > 0
    out = pa_mpjpe(pred, target, mask)
    assert isinstance(out, np.ndarray) and np.allclose(out, 0.0, atol=1e-10)
    assert (pa_mpjpe(pred, target) > 0.1).all()


def test_pve_with_and_without_roots():
    target = torch.rand(2, 50, 3, dtype=torch.float64)
    offset = torch.tensor([0.1, 0.0, 0.0], dtype=torch.float64)
    pred = target + offset
    target_root = target[:, :3].mean(1)
    assert torch.allclose(pve(pred, target), torch.full((2,), 0.1, dtype=torch.float64))
    assert torch.allclose(pve(pred, target, pred_root=target_root + offset, target_root=target_root),
                          torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(pa_pve(2 * pred, target), torch.zeros(2, dtype=torch.float64), atol=1e-12)


def test_acceleration_error_by_hand():
    # target moves at constant speed (no acceleration); pred's x: 0, 1, 3, 3
    # -> pred accelerations: 0 - 2 + 3 = 1, 1 - 6 + 3 = -2; the second point is exact
    target = torch.tensor([[[0.0], [0.0]], [[1.0], [0.0]], [[2.0], [0.0]], [[3.0], [0.0]]])  # (T=4, N=2, D=1)
    pred = target.clone()
    pred[:, 0, 0] = torch.tensor([0.0, 1.0, 3.0, 3.0])
    assert torch.allclose(acceleration_error(pred, target), torch.tensor([0.5, 1.0]))
    masked = acceleration_error(pred, target, valid=torch.tensor([True, True, True, False]))
    assert masked[0].item() == 0.5 and math.isnan(masked[1].item())
    batched = acceleration_error(pred[None].expand(3, -1, -1, -1), target[None].expand(3, -1, -1, -1))
    assert batched.shape == (3, 2)


def test_bad_inputs_raise():
    a = torch.zeros(2, 4, 3)
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        mpjpe(a, torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        pa_mpjpe(torch.zeros(2, 4, 2), torch.zeros(2, 4, 2))
    with pytest.raises(ValueError, match="mask must have shape"):
        mpjpe(a, a, mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="no point"):
        pa_mpjpe(a, a, mask=torch.tensor([[True] * 4, [False] * 4]))
    with pytest.raises(ValueError, match="root indices"):
        mpjpe(a, a, root=7)
    with pytest.raises(ValueError, match="pred_root"):
        pve(a, a, pred_root=torch.zeros(3))
    with pytest.raises(ValueError, match="T >= 3"):
        acceleration_error(torch.zeros(2, 4, 3), torch.zeros(2, 4, 3))
