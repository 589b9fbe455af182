"""Accept numpy arrays or torch tensors at API boundaries and hand back what came in.

Metrics and crop helpers are called from numpy code (evaluation scripts, the perception front
end) and from torch code (training losses); computing in torch once keeps one implementation.
"""

from __future__ import annotations

import numpy as np
import torch

Array = torch.Tensor | np.ndarray


def as_tensor(x: Array, *, floating: bool = True) -> torch.Tensor:
    """``x`` as a tensor (no copy when possible); integer input becomes the default float dtype if ``floating``."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if floating and not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    return t


def like(result: torch.Tensor, reference: Array) -> Array:
    """``result`` as a numpy array when ``reference`` was one, else unchanged."""
    if isinstance(reference, np.ndarray):
        return result.detach().cpu().numpy()
    return result
