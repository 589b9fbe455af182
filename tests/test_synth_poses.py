"""Pose sources of synthesis: camera-frame fits back to the canonical frame, the cached pose bank
of hmrkit's own fits (poses only, no image)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from conftest import shared_data
from hmrkit.data.synth_keypoints import CANONICAL_TO_CAMERA, remove_heading
from hmrkit.synth.poses import canonical_from_camera, fitted_pose_bank


def _yaw(angle: float) -> torch.Tensor:
    c, s = np.cos(angle), np.sin(angle)
    return torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float32)


def test_camera_frame_pose_back_to_canonical():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(5, 4, generator=g)
    import roma

    roots = remove_heading(roma.unitquat_to_rotmat(q / q.norm(dim=1, keepdim=True)))
    poses = torch.eye(3).repeat(5, 52, 1, 1)
    poses[:, 0] = roots
    poses[:, 3] = roma.unitquat_to_rotmat(torch.tensor([0.1, 0.2, 0.0, 1.0]) / torch.tensor([0.1, 0.2, 0.0, 1.0]).norm())
    seen = poses.clone()
    seen[:, 0] = CANONICAL_TO_CAMERA @ _yaw(1.3) @ roots  # a person turned 75 degrees, as a camera sees them
    back = canonical_from_camera(seen)
    torch.testing.assert_close(back, poses, atol=1e-5, rtol=0)


@pytest.mark.slow  # the whole pipeline on one photo
def test_pose_bank_of_fits_is_cached_without_images(tmp_path):
    photo = shared_data("demo_images", "Leo_Messi.jpg")
    bank = fitted_pose_bank([photo], cache=tmp_path)
    assert len(bank) >= 1 and bank.rotations.shape[1:] == (52, 3, 3)
    r = torch.from_numpy(bank.rotations).double()
    torch.testing.assert_close(r @ r.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand_as(r), atol=1e-4, rtol=0)
    assert set(bank.sources) == {"Leo_Messi.jpg"}
    files = list(tmp_path.glob("pose_bank_*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as data:
        assert sorted(data.files) == ["rotations", "sources"]  # poses only
    start = time.perf_counter()
    again = fitted_pose_bank([photo], cache=tmp_path)
    assert time.perf_counter() - start < 1.0 and np.array_equal(again.rotations, bank.rotations)
