import numpy as np
import pytest
import roma
import torch

from hmrkit.geometry.procrustes import procrustes_align


def umeyama_numpy(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Textbook Umeyama (1991) for one (N, D) pair, written independently with numpy's SVD."""
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    cov = yc.T @ xc / len(x)
    U, d, Vt = np.linalg.svd(cov)
    S = np.eye(x.shape[1])
    S[-1, -1] = np.sign(np.linalg.det(U) * np.linalg.det(Vt))
    R = U @ S @ Vt
    s = np.trace(np.diag(d) @ S) / (xc**2).sum(1).mean()
    return s, R, my - s * R @ mx


@pytest.mark.parametrize("dim", [2, 3])
def test_recovers_known_similarity(dim):
    torch.manual_seed(0)
    x = torch.randn(5, 12, dim, dtype=torch.float64)
    R = roma.special_procrustes(torch.randn(5, dim, dim, dtype=torch.float64))  # random proper rotations
    s = torch.tensor([0.5, 1.0, 2.0, 3.5, 0.01], dtype=torch.float64)
    t = torch.randn(5, dim, dtype=torch.float64)
    y = s[:, None, None] * x @ R.transpose(1, 2) + t[:, None]
    aligned, T = procrustes_align(x, y)
    assert torch.allclose(T.scale, s, atol=1e-12)
    assert torch.allclose(T.rotation, R, atol=1e-10)
    assert torch.allclose(T.translation, t, atol=1e-10)
    assert torch.allclose(aligned, y, atol=1e-10)


def test_zero_weight_points_are_ignored():
    torch.manual_seed(1)
    x = torch.randn(2, 10, 3, dtype=torch.float64)
    R = roma.random_rotmat(2, dtype=torch.float64)
    y = 1.7 * x @ R.transpose(1, 2) + 0.3
    y[:, :3] += 5.0  # outliers, masked out
    mask = torch.ones(10, dtype=torch.bool)
    mask[:3] = False
    _, T = procrustes_align(x, y, mask)
    assert torch.allclose(T.rotation, R, atol=1e-10)
    assert torch.allclose(T.scale, torch.full((2,), 1.7, dtype=torch.float64), atol=1e-12)


def test_reflection_gives_proper_rotation_and_umeyama_optimum():
    torch.manual_seed(2)
    x = torch.randn(3, 15, 3, dtype=torch.float64)
    y = x * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64) + 0.05 * torch.randn_like(x)  # mirror image
    aligned, T = procrustes_align(x, y)
    assert torch.allclose(torch.linalg.det(T.rotation), torch.ones(3, dtype=torch.float64))
    for b in range(3):
        s, R, t = umeyama_numpy(x[b].numpy(), y[b].numpy())
        assert T.scale[b].item() == pytest.approx(s, rel=1e-9)
        assert np.allclose(T.rotation[b].numpy(), R, atol=1e-8)
        assert np.allclose(T.translation[b].numpy(), t, atol=1e-8)
    # The mirror map itself would fit better, but it is not a rotation.
    assert ((aligned - y).norm(dim=-1).mean() > 0.1).item()


def test_bad_inputs_raise():
    x = torch.zeros(2, 5, 3)
    with pytest.raises(ValueError, match="shape"):
        procrustes_align(x, torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match="weights must have shape"):
        procrustes_align(x, x, torch.ones(3))
    with pytest.raises(ValueError, match="positive weight"):
        procrustes_align(x, x, torch.zeros(2, 5))
