"""One-Euro smoothing and the video path."""

import cv2
import numpy as np
import pytest
import torch

from hmrkit.fitting.body_fit import BodyFit
from hmrkit.smoothing import FitSmoother, OneEuroConfig, OneEuroFilter


def _fit(people: int, track_ids: tuple, seed: int = 0) -> BodyFit:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(people, 52, 3, 3, generator=g) * 0.3
    rotations = torch.linalg.matrix_exp(a - a.transpose(-1, -2))
    return BodyFit(rotations, torch.rand(people, 6, generator=g), torch.randn(people, 3, generator=g), torch.zeros(people, 75, 3),
                   torch.zeros(people, 75, 2), torch.zeros(people), torch.rand(people, 52, generator=g) + 0.5, track_ids)


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


def test_warm_start_follows_the_tracks():
    fit = _fit(3, (3, 5, 7))
    warm = fit.warm_start_for((7, 3))  # one person left, the order changed
    assert torch.equal(warm.rotations, fit.rotations[[2, 0]]) and torch.equal(warm.shape, fit.shape[[2, 0]])
    assert torch.equal(warm.scales, fit.scales[[2, 0]])
    assert fit.warm_start_for((3, 9)) is None  # someone new: a cold start for the frame
    assert fit.warm_start_for((3, None)) is None
    untracked = _fit(2, (None, None))
    assert torch.equal(untracked.warm_start_for((None, None)).rotations, untracked.rotations)  # by order
    assert untracked.warm_start_for((None,)) is None


def test_smoother_restarts_when_the_people_change():
    smoother = FitSmoother()
    first = _fit(2, (1, 2), seed=1)
    smoother(first, 1 / 30)
    second = _fit(2, (1, 2), seed=2)
    rotations, shape, translation = smoother(second, 1 / 30)
    assert not torch.allclose(translation, second.translation)  # filtered towards the first frame
    swapped = _fit(2, (2, 1), seed=3)  # same count, other order: must not blend person 1 into person 2
    rotations, shape, translation = smoother(swapped, 1 / 30)
    assert torch.equal(translation, swapped.translation) and torch.equal(shape, swapped.shape)
    torch.testing.assert_close(rotations, swapped.rotations, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_video_tracks_keep_their_people(tmp_path):
    """MediaPipe's tracking mode: the people of one frame are mostly the same tracks in the next,
    each track once per frame, and a frame costs a pose call per tracked person plus the search
    for new people, which stops at the first free slot that finds nobody."""
    from conftest import shared_data
    from hmrkit.io.images import VideoReader
    from hmrkit.perception.mediapipe_backend import MediaPipeBackend, MediaPipeConfig

    kept = total = 0
    previous: set = set()
    with VideoReader(shared_data("demo_images", "sample_video.mp4")) as reader, \
            MediaPipeBackend(MediaPipeConfig(video=True, hands=False)) as backend:
        calls = []
        pose_in = backend._pose_in
        backend._pose_in = lambda *args: calls.append(args[-1]) or pose_in(*args)
        for frame in reader:
            if frame.index >= 20:
                break
            calls.clear()
            ids = [p.track_id for p in backend.detect(frame.rgb).people]
            assert len(ids) == len(set(ids)) and None not in ids
            assert len(calls) <= len(previous) + len(set(ids) - previous) + 1
            if frame.index:
                kept += len(previous & set(ids))
                total += len(ids)
            previous = set(ids)
    assert total >= 19 * 2  # the clip shows several people
    assert kept / total > 0.8


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
