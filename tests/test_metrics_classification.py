import math

import numpy as np
import pytest
import torch

from hmrkit.eval.metrics import classification_metrics


def test_classification_by_hand():
    target = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = torch.tensor([0, 1, 1, 1, 0, 2])
    m = classification_metrics(pred, target, num_classes=4)
    # rows = true class, columns = predicted
    assert m.confusion.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    assert m.accuracy == pytest.approx(4 / 6)
    # precision tp / predicted: 1/2, 2/3, 1/1; recall tp / actual: 1/2, 2/2, 1/2
    # F1: 1/2, 2 (2/3)(1) / (5/3) = 4/5, 2 (1)(1/2) / (3/2) = 2/3; class 3 never occurs -> NaN
    assert torch.allclose(m.precision[:3], torch.tensor([0.5, 2 / 3, 1.0], dtype=torch.float64))
    assert torch.allclose(m.recall[:3], torch.tensor([0.5, 1.0, 0.5], dtype=torch.float64))
    assert torch.allclose(m.f1[:3], torch.tensor([0.5, 0.8, 2 / 3], dtype=torch.float64))
    assert all(math.isnan(x[3].item()) for x in (m.precision, m.recall, m.f1))
    assert m.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_predicted_but_absent_class_counts_as_zero():
    m = classification_metrics(np.array([0, 1]), np.array([0, 0]), num_classes=2)
    assert isinstance(m.f1, np.ndarray)
    # class 0: P = 1, R = 1/2, F1 = 2/3; class 1: predicted once, never true -> P = R = F1 = 0
    assert m.f1.tolist() == pytest.approx([2 / 3, 0.0])
    assert m.macro_f1 == pytest.approx(1 / 3)


def test_bad_labels_raise():
    with pytest.raises(ValueError, match="integer"):
        classification_metrics(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        classification_metrics(torch.tensor([0, 2]), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        classification_metrics(torch.tensor([[0, 1]]), torch.tensor([[0, 1]]), 2)
