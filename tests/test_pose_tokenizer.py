"""AJAHR's dual pose tokenizer: shapes, the codebook switch, quantization, the shipped weights'
reconstruction of real poses, the weights file, training."""

import json
import math

import pytest
import roma
import torch
from safetensors.torch import load_file, save_file

from hmrkit.body.amputation import absent_joints
from hmrkit.body.anny_rig import BODY_JOINTS, NUM_BODY_CORE, skeleton_of
from hmrkit.body.limbs import LimbStatus, parse_limbs
from hmrkit.errors import ModelAssetError
from hmrkit.geometry.rotations import geodesic_angle
from hmrkit.models.pose_tokenizer import (
    TOKEN_ORDER,
    EmaCodebook,
    PoseTokenizer,
    TokenizerConfig,
    free_joints,
    load_pose_tokenizer,
    save_pose_tokenizer,
)
from hmrkit.paths import weights_dir
from conftest import shared_data

SKELETON = skeleton_of(BODY_JOINTS)
SMALL = TokenizerConfig(width=32, code_dim=8, codebook_size=16, tokens=4)


@pytest.fixture(scope="module")
def shipped():
    return load_pose_tokenizer()


@pytest.fixture(scope="module")
def held_out():
    """Every 8th frame of the CMU test split (never trained on): (N, 22, 3, 3) with the root at rest."""
    from hmrkit.data.retarget import load_cmu_poses

    poses = torch.from_numpy(load_cmu_poses("test", stride=8, root=shared_data("cmu_mocap")).rotations).float()
    poses[:, 0] = torch.eye(3)
    return poses


def random_poses(count: int, degrees: float, seed: int = 0, joints: int = 52) -> torch.Tensor:
    noise = torch.randn(count, joints, 3, generator=torch.Generator().manual_seed(seed)) * math.radians(degrees) / math.sqrt(3)
    return roma.rotvec_to_rotmat(noise)


def trained_small(seed: int = 0) -> PoseTokenizer:
    """A small tokenizer whose codebooks were initialized from data (one training-mode pass)."""
    torch.manual_seed(seed)
    model = PoseTokenizer(SMALL)
    model.train()
    poses = random_poses(64, 30, seed, NUM_BODY_CORE)
    model.amputated(poses[:, 1:], torch.zeros(64, 21, dtype=torch.bool))
    model.intact(poses[:, 1:], torch.zeros(64, 21, dtype=torch.bool))
    return model.eval()


def test_free_joints_are_the_collapse_joint_and_what_the_body_layer_removes():
    status = parse_limbs("left_leg=lower_leg,right_arm=hand")
    free = free_joints([LimbStatus.intact(), status], 2)
    assert not free[0].any()
    names = {SKELETON.names[j + 1] for j in free[1].nonzero().flatten().tolist()}
    removed = set(absent_joints(SKELETON, status.losses)) & set(SKELETON.names[:NUM_BODY_CORE])
    assert names == removed | {"left_knee", "right_wrist"}
    assert sorted(TOKEN_ORDER) == list(range(21))
    with pytest.raises(ValueError, match="2 limb statuses for 3 people"):
        free_joints([status, status], 3)


def test_project_shapes_and_what_it_keeps():
    model = trained_small()
    poses = random_poses(5, 40, seed=1)
    limbs = [LimbStatus.intact(), parse_limbs("left_arm=forearm"), LimbStatus.intact(), parse_limbs("right_leg=leg"), LimbStatus.intact()]
    with torch.no_grad():
        out = model.project(poses, limbs)
    assert out.shape == poses.shape
    torch.testing.assert_close(out[:, 0], poses[:, 0])  # the global orientation
    torch.testing.assert_close(out[:, NUM_BODY_CORE:], poses[:, NUM_BODY_CORE:])  # fingers
    free = free_joints(limbs, 5)
    torch.testing.assert_close(out[:, 1:NUM_BODY_CORE][free], poses[:, 1:NUM_BODY_CORE][free])  # free joints pass through
    torch.testing.assert_close(out @ out.transpose(-1, -2), torch.eye(3).expand_as(out), atol=1e-5, rtol=0)
    assert model.tokens(poses, limbs).shape == (5, SMALL.tokens)
    assert model.energy(poses, limbs).shape == (5,)
    with pytest.raises(ValueError, match="B, J >= 22"):
        model.project(poses[:, :10])


def test_codebook_switch_changes_codes_and_selects_per_person(shipped, held_out):
    poses = held_out[:6]
    amputee = parse_limbs("left_arm=hand")  # frees only the left wrist
    with torch.no_grad():
        intact_codes = shipped.tokens(poses, [LimbStatus.intact()] * 6)
        amputee_codes = shipped.tokens(poses, [amputee] * 6)
        mixed = shipped.tokens(poses, [LimbStatus.intact(), amputee] * 3)
        none = torch.zeros(6, 21, dtype=torch.bool)
        assert torch.equal(intact_codes, shipped.intact(poses[:, 1:22], none).indices)
        assert torch.equal(amputee_codes, shipped.amputated(poses[:, 1:22], free_joints([amputee] * 6, 6)).indices)
        intact_pose, amputee_pose = shipped.project(poses, [LimbStatus.intact()] * 6), shipped.project(poses, [amputee] * 6)
    assert (intact_codes != amputee_codes).any(dim=1).all()  # two codebooks: different tokens for every person
    assert torch.equal(mixed[0::2], intact_codes[0::2]) and torch.equal(mixed[1::2], amputee_codes[1::2])
    present = torch.ones(21, dtype=torch.bool)
    present[SKELETON.index("left_wrist") - 1] = False
    assert (intact_pose[:, 1:22][:, present] - amputee_pose[:, 1:22][:, present]).abs().amax() > 1e-3


def test_quantize_picks_the_nearest_code():
    book = EmaCodebook(32, 5, 0.99, 0.5).eval()
    book.codes.copy_(torch.randn(32, 5, generator=torch.Generator().manual_seed(0)))
    z = torch.randn(4, 7, 5, generator=torch.Generator().manual_seed(1))
    quantized, index = book(z)
    brute = torch.cdist(z.reshape(-1, 5), book.codes).argmin(dim=1).reshape(4, 7)
    assert torch.equal(index, brute)
    torch.testing.assert_close(quantized, book.codes[brute])
    assert torch.equal(book(book.codes[None, [3, 9, 3]])[1], torch.tensor([[3, 9, 3]]))  # a code is its own nearest


def test_ema_codebook_moves_to_cluster_centres_and_resets_dead_codes():
    torch.manual_seed(0)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    book = EmaCodebook(3, 2, decay=0.9, reset_below=0.5).train()
    for _ in range(200):
        points = centres[torch.randint(3, (256,))] + 0.1 * torch.randn(256, 2)
        book(points[None])
    found = torch.cdist(centres, book.codes).amin(dim=1)
    assert found.max() < 0.2  # every cluster has a code on it (a dead code would have been reset onto data)
    assert torch.isfinite(book.codes).all()


def test_shipped_round_trip_beats_trivial_baselines_on_held_out_poses(shipped, held_out):
    """Geodesic error per joint after projection vs the rest pose and the data's mean pose."""
    body = held_out[:, 1:22]
    with torch.no_grad():
        projected = shipped.project(held_out)[:, 1:22]
        amputees = [parse_limbs("right_leg=lower_leg")] * len(held_out)
        projected_amp = shipped.project(held_out, amputees)[:, 1:22]
    error = torch.rad2deg(geodesic_angle(projected, body)).mean()
    rest = torch.rad2deg(geodesic_angle(torch.eye(3).expand_as(body), body)).mean()
    mean_pose = roma.special_procrustes(body.mean(dim=0))
    to_mean = torch.rad2deg(geodesic_angle(mean_pose.expand_as(body), body)).mean()
    # measured with the shipped weights on these frames: 11.3 deg vs 26.4 (rest) and 17.7 (mean pose)
    assert error < 0.75 * min(rest, to_mean), (error, rest, to_mean)
    kept = ~free_joints(amputees[:1], 1)[0]
    error_amp = torch.rad2deg(geodesic_angle(projected_amp[:, kept], body[:, kept])).mean()
    assert error_amp < 0.75 * min(rest, to_mean)


def test_token_energy_ranks_real_poses_below_noisy_ones(shipped, held_out):
    noisy = held_out @ random_poses(len(held_out), 30, seed=3, joints=NUM_BODY_CORE)
    with torch.no_grad():
        real, corrupt = shipped.energy(held_out), shipped.energy(noisy)
    assert real.median() < corrupt.quantile(0.1)


def test_weights_round_trip(tmp_path):
    model = trained_small()
    path = save_pose_tokenizer(model, tmp_path / "tok.safetensors", {"note": "test"})
    loaded = load_pose_tokenizer(path)
    poses = random_poses(4, 30, seed=2)
    limbs = [LimbStatus.intact(), parse_limbs("left_leg=foot")] * 2
    with torch.no_grad():
        torch.testing.assert_close(loaded.project(poses, limbs), model.project(poses, limbs))
    assert loaded.config == SMALL and not loaded.training


def test_shipped_weights_are_small(shipped):
    assert (weights_dir() / "pose_tokenizer.safetensors").stat().st_size < 10_000_000
    assert shipped.config == TokenizerConfig(**shipped.config.__dict__)


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated", "wrong format", "missing tensor", "wrong shape", "nan"])
def test_damaged_weights_give_one_clear_error(tmp_path, damage):
    good = save_pose_tokenizer(trained_small(), tmp_path / "good.safetensors")
    path = tmp_path / "bad.safetensors"
    state = load_file(str(good))
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as handle:
        metadata = handle.metadata()
    if damage == "missing":
        path = tmp_path / "absent.safetensors"
    elif damage == "garbage":
        path.write_bytes(b"\x00not a safetensors file")
    elif damage == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "wrong format":
        save_file(state, str(path), metadata={**metadata, "format": "hmrkit-pose-prior-v1"})
    elif damage == "missing tensor":
        state.pop("intact.codebook.codes")
        save_file(state, str(path), metadata=metadata)
    elif damage == "wrong shape":
        state["amputated.codebook.codes"] = torch.zeros(3, 3)
        save_file(state, str(path), metadata=metadata)
    else:
        state["intact.codebook.codes"][0, 0] = float("nan")
        save_file(state, str(path), metadata=metadata)
    with pytest.raises(ModelAssetError) as error:
        load_pose_tokenizer(path)
    message = str(error.value)
    assert "\n" not in message and ("pose tokenizer" in message or "not an hmrkit" in message)


@pytest.mark.slow
def test_training_lowers_held_out_error_and_writes_loadable_weights(tmp_path):
    from hmrkit.train.tokenizer import TrainConfig, train

    shared_data("cmu_mocap")
    cfg = TrainConfig(steps=60, batch_size=64, width=32, code_dim=16, codebook_size=64, tokens=8, motion="cmu", stride=16,
                      warmup=10, val_every=30, checkpoint_every=30, val_stride=32, run_dir=str(tmp_path / "run"),
                      out=str(tmp_path / "t.safetensors"), record=str(tmp_path / "record.json"))
    train(cfg, log=lambda *_: None)
    history = json.loads((tmp_path / "run" / "state.json").read_text())["history"]
    first, last = history[0], history[-1]
    assert last["val_intact_intact_mpjpe_mm"] < first["val_intact_intact_mpjpe_mm"]
    assert last["val_amputated_amputated_mpjpe_mm"] < first["val_amputated_amputated_mpjpe_mm"]
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    assert json.loads((tmp_path / "record.json").read_text())["history"] == history
    assert (tmp_path / "record_curves.png").stat().st_size > 1000
    resumed, _ = train(TrainConfig(**{**cfg.__dict__, "steps": 70, "resume": True}), log=lambda *_: None)
    assert json.loads((tmp_path / "run" / "state.json").read_text())["step"] == 70
    path = save_pose_tokenizer(resumed, cfg.out)
    assert load_pose_tokenizer(path).config == cfg.tokenizer_config()


def test_cli_train_tokenizer_rejects_a_bad_option_in_one_line(capsys):
    from hmrkit.train.tokenizer import parse_args

    with pytest.raises(SystemExit) as exit_:
        parse_args(["--motion", "nonsense"])
    assert exit_.value.code == 2
    assert "unknown motion set" in capsys.readouterr().err
