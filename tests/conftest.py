import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

torch.set_num_threads(min(2, os.cpu_count() or 1))


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with a clear reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"development data not found: {path} (see ../shared/data/README.md)")
    return path


@pytest.fixture(scope="session")
def anny_body():
    from hmrkit.body.anny_model import load_anny_body

    return load_anny_body()
