"""Synthetic MediaPipe-like landmarks for HKMR training (needs the CMU data and the Anny body)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not (DATA / "cmu_mocap").is_dir(), reason="../shared/data/cmu_mocap is absent")


@pytest.fixture(scope="module")
def body():
    from hmrkit.body.anny_model import load_anny_body

    return load_anny_body()


@pytest.fixture(scope="module")
def synth(body):
    from hmrkit.data.synth_keypoints import SynthKeypoints

    return SynthKeypoints(body, "test", stride=8)


def test_projection_and_unseen_landmarks(synth):
    b = synth.sample(64, torch.Generator().manual_seed(0))
    k = b.keypoints.numpy()
    fx = np.asarray(b.camera.fx)[:, None]
    cx, cy = np.asarray(b.camera.cx)[:, None], np.asarray(b.camera.cy)[:, None]
    u = fx * k[..., 0] / k[..., 2] + cx
    v = fx * k[..., 1] / k[..., 2] + cy
    assert np.allclose(b.keypoints2d.numpy(), np.stack([u, v], -1), atol=1e-2)
    assert (k[..., 2] > 0.3).all()
    size = b.image_size.numpy()[:, None]
    outside = (u < 0) | (v < 0) | (u > size[..., 0] - 1) | (v > size[..., 1] - 1)
    seen = b.observed.visible.numpy()
    assert not (seen & outside).any()  # truncated landmarks are never seen
    assert np.isfinite(b.observed.xy.numpy()).all() and np.isfinite(b.observed.world.numpy()).all()
    from hmrkit.models.encoders import keypoint_features

    features = keypoint_features(b.observed)[:, :-1].reshape(64, 33, 6).numpy()
    assert (features[~seen] == 0).all()  # the encoder never reads an unseen landmark
    assert 0.5 < seen.mean() < 0.95


def test_people_stand_upright_in_the_image(synth):
    """Camera convention: the head is above the hips in pixels for nearly every sample (CMU's
    test motions are upright; the camera pitch is a few degrees)."""
    from hmrkit.body.conventions import MEDIAPIPE33

    b = synth.sample(128, torch.Generator().manual_seed(1))
    shoulders = b.keypoints2d[:, [MEDIAPIPE33.index("left_shoulder"), MEDIAPIPE33.index("right_shoulder")], 1].mean(1)
    hips = b.keypoints2d[:, [MEDIAPIPE33.index("left_hip"), MEDIAPIPE33.index("right_hip")], 1].mean(1)
    assert (shoulders < hips).float().mean() > 0.95


def test_world_landmarks_are_hip_centred(synth):
    from hmrkit.body.conventions import MEDIAPIPE33

    b = synth.sample(64, torch.Generator().manual_seed(2))
    hips = [MEDIAPIPE33.index("left_hip"), MEDIAPIPE33.index("right_hip")]
    both = b.observed.visible[:, hips].all(1)
    assert both.any()
    assert torch.allclose(b.observed.world[both][:, hips].mean(1), torch.zeros(3), atol=1e-5)
    # camera-aligned axes: world differences follow the true camera-frame ones (noise aside)
    true = b.keypoints - b.keypoints[:, hips].mean(1, keepdim=True)
    seen = b.observed.visible
    err = (b.observed.world - true)[seen].norm(dim=-1)
    assert err.median() < 0.15


def test_limb_occlusion_and_placement(body):
    from hmrkit.data.synth_keypoints import LIMBS, SynthConfig, SynthKeypoints

    cfg = replace(SynthConfig(), limb_occlusion_prob=1.0, dropout=(0.0, 0.0), truncation_prob=0.0, face_away_unseen_prob=0.0, guess_prob=0.0)
    synth = SynthKeypoints(body, "test", stride=8, config=cfg)
    b = synth.sample(64, torch.Generator().manual_seed(3))
    size = b.image_size[:, None]
    inside = ((b.keypoints2d >= 0) & (b.keypoints2d <= size - 1)).all(-1)
    assert inside.float().mean() > 0.95  # no deliberate truncation (perspective may push a few points out)
    unseen = ~b.observed.visible
    exactly_one = 0
    for i in range(b.batch):
        # occluded limbs: every landmark unseen although some lie in the frame
        limbs = [name for name, idx in LIMBS.items() if unseen[i, idx].all() and inside[i, idx].any()]
        exactly_one += len(limbs) == 1
        others = [j for name, idx in LIMBS.items() if name not in limbs for j in idx]
        assert b.observed.visible[i, others][inside[i, others]].all()  # nothing else dropped
    assert exactly_one >= 0.95 * b.batch


def test_remove_heading_keeps_the_lean():
    import roma

    from hmrkit.data.synth_keypoints import remove_heading

    g = torch.Generator().manual_seed(4)
    lean = roma.rotvec_to_rotmat(torch.randn(16, 3, generator=g) * torch.tensor([0.3, 0.0, 0.3]))
    yaw = roma.rotvec_to_rotmat(torch.stack([torch.zeros(16), torch.rand(16, generator=g) * 6 - 3, torch.zeros(16)], -1))
    out = remove_heading(yaw @ lean)
    assert torch.allclose(out[:, 0, 2], torch.zeros(16), atol=1e-5)  # forward axis in the y-z plane,
    assert (out[:, 2, 2] > 0).all()  # turned towards +z, not away from it
    # only a turn about the vertical separates input and output
    turn = out @ (yaw @ lean).transpose(1, 2)
    assert torch.allclose(turn[:, 1], torch.tensor([0.0, 1.0, 0.0]).expand(16, 3), atol=1e-5)
    # the lean is what is left: any heading of the same leaning body gives the same output
    assert torch.allclose(out, remove_heading(lean), atol=1e-5)
    assert torch.allclose(out[:, 1, 1], lean[:, 1, 1], atol=1e-5)  # the up axis' tilt from the vertical, exactly


def test_shapes_cover_children_and_adults():
    from hmrkit.data.synth_keypoints import random_shapes

    s = random_shapes(4000, 0.85, torch.Generator().manual_seed(5))
    assert ((s >= 0) & (s <= 1)).all()
    child = s[:, 1] < 0.4
    assert 0.1 < child.float().mean() < 0.2


def test_occluded_landmarks_are_mostly_guessed_as_mediapipe_does(body):
    """Defaults: MediaPipe reports face and torso always and most occluded limb landmarks as
    seen but displaced. The same draw without guesses (guess_prob 0) differs exactly there."""
    from hmrkit.data.synth_keypoints import LIMBS, SynthConfig, SynthKeypoints

    cfg = SynthConfig()
    with_guess = SynthKeypoints(body, "test", stride=8, config=cfg).sample(256, torch.Generator().manual_seed(6))
    no_guess = SynthKeypoints(body, "test", stride=8, config=replace(cfg, guess_prob=0.0)).sample(256, torch.Generator().manual_seed(6))
    size = with_guess.image_size[:, None]
    inside = ((with_guess.keypoints2d >= 0) & (with_guess.keypoints2d <= size - 1)).all(-1)
    limb = torch.zeros(33, dtype=torch.bool)
    limb[[i for idx in LIMBS.values() for i in idx]] = True
    seen = with_guess.observed.visible
    assert seen[:, ~limb][inside[:, ~limb]].all()  # face and torso: seen whenever in the frame
    assert seen[:, limb][inside[:, limb]].float().mean() > 0.93  # measured on LSPET: elbows..feet 0.90-0.96

    guessed = seen & ~no_guess.observed.visible
    assert not (no_guess.observed.visible & ~seen).any()  # guesses only add seen landmarks
    assert 0.5 < guessed.sum() / (~no_guess.observed.visible & inside).sum() < 0.9  # guess_prob 0.7
    # everything else is the same draw
    same = ~guessed
    assert torch.equal(with_guess.observed.xy[same], no_guess.observed.xy[same])
    assert torch.equal(with_guess.observed.world[same], no_guess.observed.world[same])
    # a guess is displaced by ~guess_scale box sides (median radial offset of a 2D Gaussian: 1.18 sigma)
    span = with_guess.keypoints2d.amax(1) - with_guess.keypoints2d.amin(1)
    box = span.amax(-1, keepdim=True).expand(-1, 33)
    offset = with_guess.observed.xy - no_guess.observed.xy
    ratio = (offset.norm(dim=-1) / box)[guessed]
    assert 0.09 < ratio.median() < 0.15
    # and its 3D landmark moves the same way in x-y (one network gives both), not in depth
    moved = with_guess.observed.world - no_guess.observed.world
    cos = torch.nn.functional.cosine_similarity(moved[guessed][:, :2], offset[guessed], dim=-1)
    assert (cos > 0.999).all() and (moved[guessed][:, 2] == 0).all()


def test_v1_noise_hides_occluded_landmarks(body):
    """The earlier noise model (the shipped v1 weights, the held-out table): occluded landmarks
    and, when looking away, the face are unseen; nothing outside the image is seen."""
    from hmrkit.data.synth_keypoints import V1_NOISE, SynthKeypoints

    b = SynthKeypoints(body, "test", stride=8, config=V1_NOISE).sample(256, torch.Generator().manual_seed(8))
    size = b.image_size[:, None]
    inside = ((b.keypoints2d >= 0) & (b.keypoints2d <= size - 1)).all(-1)
    seen = b.observed.visible
    assert not (seen & ~inside).any()
    assert 0.65 < seen.float().mean() < 0.85  # measured 0.75 on 4,000 train samples
    assert seen[:, :11].float().mean() < 0.7  # the face, often unseen
