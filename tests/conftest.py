import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """The trainers set torch's thread count for their run (``--threads``, 1 by default), which
    lasts for the rest of the process: a test that trains must not change the numbers of the tests
    after it (a fit at 1 thread differs from one at 2 in the fourth decimal)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def free_port() -> int:
    """A TCP port on this machine that nothing listens on (for servers the tests start)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def assert_pose_cache_is_read_and_rebuilt(cache_folder: Path, load, poses) -> None:
    """A motion loader's one ``.npz`` cache in ``cache_folder``: a second ``load()`` reads it (a
    marked cache comes back marked) and an unreadable one is rebuilt to ``poses``."""
    import numpy as np

    cached = list(cache_folder.glob("*.npz"))
    assert len(cached) == 1
    with np.load(cached[0], allow_pickle=False) as z:
        content = dict(z)
    content["rotations"] = content["rotations"] * 0 + 7
    np.savez(cached[0], **content)
    assert float(load().rotations.mean()) == 7.0
    cached[0].write_bytes(b"not an npz")
    np.testing.assert_array_equal(load().rotations, poses.rotations)


def assert_joints3d_project_onto_joints2d(data: dict, person: dict, atol: float = 0.2) -> None:
    """A result JSON's promise: ``joints3d`` projected with its ``camera`` land on ``joints2d``."""
    import numpy as np

    from hmrkit.geometry.cameras import PerspectiveCamera, perspective_project

    cam = data["camera"]
    names = list(person["joints3d"])
    p3 = torch.tensor([[person["joints3d"][n] for n in names]], dtype=torch.float64)
    p2 = perspective_project(p3, PerspectiveCamera(cam["fx"], cam["fy"], cam["cx"], cam["cy"]))[0].numpy()
    np.testing.assert_allclose(p2, [person["joints2d"][n] for n in names], atol=atol)
