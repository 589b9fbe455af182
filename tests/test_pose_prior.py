"""The VAE pose prior: shipped weights, behaviour on held-out real poses, file handling, training."""

import math

import pytest
import roma
import torch

from hmrkit.errors import ModelAssetError
from hmrkit.geometry.rotations import geodesic_angle
from hmrkit.models.pose_prior import PosePrior, PosePriorConfig, load_pose_prior, save_pose_prior
from hmrkit.paths import weights_dir
from conftest import shared_data


@pytest.fixture(scope="module")
def prior():
    return load_pose_prior()


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """Every 4th frame of the CMU test split (never seen in training), without the root."""
    from hmrkit.data.retarget import load_cmu_poses

    root = shared_data("cmu_mocap")
    return torch.from_numpy(load_cmu_poses("test", stride=4, root=root).rotations[:, 1:])


def uniform_rotations(count: int, seed: int = 0) -> torch.Tensor:
    q = torch.randn(count, 21, 4, generator=torch.Generator().manual_seed(seed))
    return roma.unitquat_to_rotmat(q / q.norm(dim=-1, keepdim=True))


def test_shipped_weights_load_and_run(prior):
    assert (weights_dir() / "pose_vae.safetensors").stat().st_size < 5_000_000
    assert not prior.training
    rest = torch.eye(3).expand(2, 21, 3, 3)
    mu, logvar = prior.encode(rest)
    assert mu.shape == logvar.shape == (2, prior.config.latent_dim)
    out = prior.reconstruction(rest)
    assert out.shape == (2, 21, 3, 3)
    torch.testing.assert_close(out @ out.transpose(-1, -2), torch.eye(3).expand(2, 21, 3, 3), atol=1e-5, rtol=0)
    assert prior.kl(rest).shape == (2,) and prior.nll_proxy(rest).shape == (2,)
    assert prior.sample(3, torch.Generator().manual_seed(0)).shape == (3, 21, 3, 3)


def test_kl_separates_held_out_real_poses_from_implausible_ones(prior, held_out):
    with torch.no_grad():
        real = prior.kl(held_out)
        random = uniform_rotations(512)
        uniform = prior.kl(random)
        noise = roma.rotvec_to_rotmat(torch.randn(512, 21, 3, generator=torch.Generator().manual_seed(1)) * math.radians(60) / math.sqrt(3))
        noisy = prior.kl(noise)
        nll_real, nll_uniform = prior.nll_proxy(held_out), prior.nll_proxy(random)
    # measured on the whole test split: 50.6 (real), 172 (60 deg noise), 574 (uniform) nats
    assert real.mean() * 2 < noisy.mean() < uniform.mean()
    assert (real < uniform.quantile(0.01)).float().mean() > 0.95
    assert nll_real.median() < nll_uniform.median()
    # the prior loss has gradients pointing somewhere
    pose = noise[:4].clone().requires_grad_(True)
    prior.kl(pose).sum().backward()
    assert torch.isfinite(pose.grad).all() and pose.grad.abs().sum() > 0


def test_decode_encode_is_close_on_held_out_poses(prior, held_out):
    with torch.no_grad():
        angle = torch.rad2deg(geodesic_angle(prior.reconstruction(held_out), held_out))
    # measured on the whole test split: mean 5.5 deg, median 4.4 deg per joint and frame
    assert float(angle.mean()) < 8.0
    assert float(angle.median()) < 6.5


def test_save_load_round_trip_and_bad_files(tmp_path):
    model = PosePrior(PosePriorConfig(latent_dim=8, hidden=32)).eval()
    path = save_pose_prior(model, tmp_path / "vae.safetensors")
    loaded = load_pose_prior(path)
    assert loaded.config == model.config
    x = uniform_rotations(3)
    torch.testing.assert_close(loaded.kl(x), model.kl(x))
    with pytest.raises(ModelAssetError, match="not found"):
        load_pose_prior(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelAssetError, match="unreadable"):
        load_pose_prior(tmp_path / "junk.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ModelAssetError, match="not an hmrkit pose prior"):
        load_pose_prior(tmp_path / "other.safetensors")
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("decoder")}
    save_file(state, str(tmp_path / "cut.safetensors"), metadata={"format": "hmrkit-pose-prior-v1", "config": '{"latent_dim": 8, "hidden": 32}'})
    with pytest.raises(ModelAssetError, match="malformed"):
        load_pose_prior(tmp_path / "cut.safetensors")


def test_shape_errors(prior):
    with pytest.raises(ValueError, match=r"\(B, 21, 3, 3\)"):
        prior.kl(torch.eye(3).expand(2, 22, 3, 3))
    with pytest.raises(ValueError, match="latent"):
        prior.decode(torch.zeros(2, 5))


@pytest.mark.slow
def test_short_training_run_writes_loadable_weights(tmp_path, monkeypatch):
    shared_data("cmu_mocap")
    from hmrkit.train.pose_prior import main

    out, card = tmp_path / "vae.safetensors", tmp_path / "card.md"
    assert main(["--steps", "40", "--hidden", "32", "--stride", "8", "--out", str(out), "--card", str(card)]) == 0
    model = load_pose_prior(out)
    assert model.config.hidden == 32
    text = card.read_text()
    assert "python -m hmrkit.train.pose_prior --steps 40" in text and "held-out CMU test" in text
