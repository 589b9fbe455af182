"""One-Euro smoothing and the video path."""

import cv2
import numpy as np
import pytest
import torch

from hmrkit.smoothing import OneEuroConfig, OneEuroFilter


def test_one_euro_removes_jitter_and_follows_motion():
    g = torch.Generator().manual_seed(0)
    f = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=0.5))
    dt = 1 / 30
    still = [f(torch.tensor([1.0]) + 0.05 * torch.randn(1, generator=g), dt) for _ in range(120)]
    out = torch.stack(still[30:])
    assert out.std() < 0.05 * 0.4  # jitter cut by more than half
    f.reset()
    ramp = [f(torch.tensor([t * 2.0]), dt) for t in np.arange(0, 2, dt)]
    lag = float(2.0 * (2 - dt) - ramp[-1])
    assert 0 <= lag < 0.2  # follows a 2 m/s ramp within 10 cm


def test_first_sample_passes_and_shape_change_restarts():
    f = OneEuroFilter()
    x = torch.tensor([3.0, 4.0])
    assert torch.equal(f(x, 0.1), x)
    y = torch.tensor([1.0, 2.0, 3.0])
    assert torch.equal(f(y, 0.1), y)


@pytest.mark.slow
def test_video_writes_frames_and_an_overlay_video(tmp_path):
    from conftest import shared_data
    from hmrkit.pipeline import PipelineConfig
    from hmrkit.video import run_video
    from hmrkit.writers import OutputOptions

    video = shared_data("demo_images", "sample_video.mp4")
    done = run_video(video, tmp_path, "clip", PipelineConfig(), OutputOptions(mesh_format=None), max_frames=3)
    assert done == 3
    assert sorted(p.name for p in (tmp_path / "clip").glob("*.json")) == [f"frame_00000{i}.json" for i in range(3)]
    capture = cv2.VideoCapture(str(tmp_path / "clip_overlay.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    with pytest.raises(FileExistsError):
        run_video(video, tmp_path, "clip", PipelineConfig(), OutputOptions(mesh_format=None), max_frames=1)
