"""The fit's thread settings: PyTorch's and numpy's BLAS pools limited inside, restored after."""

import torch
from threadpoolctl import threadpool_info

from hmrkit.pipeline import compute_threads


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_compute_threads_limits_torch_and_blas_and_restores_them():
    torch_before, blas_before = torch.get_num_threads(), _blas_threads()
    assert blas_before, "numpy's BLAS pool is visible to threadpoolctl"
    with compute_threads(1):
        assert torch.get_num_threads() == 1
        assert _blas_threads() == [1] * len(blas_before)
    assert torch.get_num_threads() == torch_before and _blas_threads() == blas_before
    with compute_threads(1, limit_blas=False):  # photos: the fit runs alone, BLAS keeps its threads
        assert torch.get_num_threads() == 1 and _blas_threads() == blas_before
    assert torch.get_num_threads() == torch_before
