import math

import numpy as np
import pytest
import torch

from hmrkit.eval.metrics import box_size, f_score, pck, torso_size


def test_f_score_by_hand():
    target = torch.tensor([[[0.0, 0, 0], [1, 0, 0]]])
    pred = torch.tensor([[[0.0, 0, 0.004], [0, 0, 0.01], [5, 0, 0]]])
    # pred -> nearest target: 4 mm, 10 mm, 4 m; target -> nearest pred: 4 mm, ~1 m
    # 5 mm: P = 1/3, R = 1/2, F = 2 PR / (P + R) = 2/5;  15 mm: P = 2/3, R = 1/2, F = 4/7
    for chunk in (1, 2, 2048):
        out = f_score(pred, target, chunk=chunk)
        assert out.thresholds == (0.005, 0.015)
        assert torch.allclose(out.precision, torch.tensor([[1 / 3, 2 / 3]]))
        assert torch.allclose(out.recall, torch.tensor([[0.5, 0.5]]))
        assert torch.allclose(out.f, torch.tensor([[0.4, 4 / 7]]))


def test_f_score_no_match_is_zero_and_numpy_out():
    out = f_score(np.zeros((2, 3, 3)), np.ones((2, 4, 3)), thresholds=(0.1,))
    assert isinstance(out.f, np.ndarray) and out.f.shape == (2, 1) and (out.f == 0).all()


def test_pck_by_hand():
    target = torch.tensor([[[0.0, 0], [0, 10], [10, 0]], [[0, 0], [0, 20], [5, 5]]])
    # errors: sample 0 -> 1, 3, 2 (threshold 0.2 * 10 = 2); sample 1 -> 5, 0, 4 (threshold 0.2 * 20 = 4)
    pred = target + torch.tensor([[[1.0, 0], [0, 3], [0, 2]], [[3, 4], [0, 0], [4, 0]]])
    norm = torso_size(target, 0, 1)
    assert torch.allclose(norm, torch.tensor([10.0, 20.0]))
    out = pck(pred, target, norm, alpha=0.2, visible=torch.tensor([[True, True, True], [True, True, False]]))
    # correct: (yes, no, yes (<=)), (no, yes, invisible) -> 3 of 5
    assert out.overall == pytest.approx(0.6)
    assert torch.allclose(out.per_joint, torch.tensor([0.5, 0.5, 1.0]))


def test_pck_never_visible_joint_is_nan_and_box_size():
    kp = np.array([[[0.0, 0.0], [3.0, 8.0], [100.0, 100.0]]])
    vis = np.array([[True, True, False]])
    assert box_size(kp, vis)[0] == 8.0
    out = pck(kp, kp, box_size(kp, vis), alpha=0.1, visible=vis)
    assert out.overall == 1.0 and isinstance(out.per_joint, np.ndarray)
    assert out.per_joint[:2].tolist() == [1.0, 1.0] and math.isnan(out.per_joint[2])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"\(B, N, D\) and \(B, M, D\)"):
        f_score(torch.zeros(2, 3, 3), torch.zeros(1, 3, 3))
    kp = torch.zeros(2, 4, 2)
    with pytest.raises(ValueError, match=r"\(B, N, 2\)"):
        pck(torch.zeros(2, 4, 3), torch.zeros(2, 4, 3), torch.ones(2), 0.2)
    with pytest.raises(ValueError, match="normalizer must have shape"):
        pck(kp, kp, torch.ones(3), 0.2)
    with pytest.raises(ValueError, match="normalizer must be positive"):
        pck(kp, kp, torch.tensor([1.0, 0.0]), 0.2)
    with pytest.raises(ValueError, match="visible must have shape"):
        pck(kp, kp, torch.ones(2), 0.2, visible=torch.ones(2, 3, dtype=torch.bool))
