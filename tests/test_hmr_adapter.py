"""HMR-Adapter: the model's invariants, the synthetic whole-body labels, the weights file."""

from __future__ import annotations

import pytest
import roma
import torch

from hmrkit.body.anny_keypoints import anny_keypoint_map
from hmrkit.body.anny_model import load_anny_body
from hmrkit.body.conventions import HAND21
from hmrkit.data.retarget import CORE_NAMES, mirror_core_rotations
from hmrkit.data.wholebody_synth import CONDITIONS, WholeBodySynth
from hmrkit.errors import ModelAssetError
from hmrkit.hands.hand_model import load_biomech_hand, mirror_points
from hmrkit.models.hmr_adapter import (
    AdapterConfig,
    HandInputs,
    HMRAdapter,
    apply_offsets,
    arm_chains,
    global_rotations,
    load_adapter,
    save_adapter,
)

SMALL = AdapterConfig(width=32, heads=4, encoder_layers=1, decoder_layers=2, ffn=64)


@pytest.fixture(scope="module")
def hand():
    return load_biomech_hand("left")


@pytest.fixture(scope="module")
def model(hand):
    torch.manual_seed(0)
    return HMRAdapter(SMALL, hand.axes.lower, hand.axes.upper).eval()


def random_inputs(n: int, seed: int = 0) -> HandInputs:
    g = torch.Generator().manual_seed(seed)
    points = 0.05 * torch.randn(n, 21, 3, generator=g)
    points[:, 0] = 0
    missing = torch.rand(n, 21, generator=g) < 0.3
    confidence = torch.where(missing, 0.0, torch.rand(n, 21, generator=g))
    arm = roma.random_rotmat(n * 4).reshape(n, 4, 3, 3)
    return HandInputs(torch.where(missing[..., None], 0.0, points), confidence, missing, arm)


def test_adapters_start_at_the_expert(model):
    """Zero-initialised output projections: the adapted hand is the expert's, the body offset the identity."""
    inputs = random_inputs(16)
    with torch.no_grad():
        expert, adapted = model.expert(inputs), model.hand(inputs)
        offsets = model.body_offset(inputs)
    assert adapted.rotation.shape == (16, 3, 3) and adapted.angles.shape == (16, 23) and offsets.shape == (16, 2, 3, 3)
    assert torch.equal(expert.rotation, adapted.rotation) and torch.equal(expert.angles, adapted.angles)
    assert torch.allclose(offsets, torch.eye(3).expand(16, 2, 3, 3), atol=1e-7)
    # ... and the body guidance does move the hand once the adapter's output projection is not zero
    trained = HMRAdapter(SMALL, model.expert.lower, model.expert.upper).eval()
    trained.load_state_dict(model.state_dict())
    with torch.no_grad():
        for layer in trained.hand_adapter.layers:
            layer.ca.out_proj.weight.normal_(0, 0.5)
        moved = trained.hand(inputs)
        other = trained.hand(HandInputs(inputs.points, inputs.confidence, inputs.missing, roma.random_rotmat(64).reshape(16, 4, 3, 3)))
    assert (moved.angles - other.angles).abs().max() > 1e-4


def test_a_fully_masked_hand_is_still_a_valid_hand(model, hand):
    n = 8
    inputs = random_inputs(n, seed=1)
    missing = torch.ones(n, 21, dtype=torch.bool)
    blank = HandInputs(torch.zeros(n, 21, 3), torch.zeros(n, 21), missing, inputs.arm)
    junk = HandInputs(torch.randn(n, 21, 3), torch.rand(n, 21), missing, inputs.arm)  # what lies under the mask
    with torch.no_grad():
        for estimate in (model.expert(blank), model.hand(blank), model.naive_hand(model.expert, blank)):
            r = estimate.rotation
            assert torch.isfinite(r).all() and torch.isfinite(estimate.angles).all()
            assert torch.allclose(r @ r.transpose(1, 2), torch.eye(3).expand(n, 3, 3), atol=1e-5)
            assert torch.allclose(torch.linalg.det(r), torch.ones(n), atol=1e-5)
            assert ((estimate.angles >= hand.axes.lower) & (estimate.angles <= hand.axes.upper)).all()
        a, b = model.hand(blank), model.hand(junk)
        assert torch.allclose(a.angles, b.angles) and torch.allclose(a.rotation, b.rotation)  # masked values never leak in
        assert torch.isfinite(model.body_offset(blank)).all()


def test_arm_chains_and_offsets_are_mirror_consistent():
    """A right arm in the left convention is the left arm of the mirrored body, and an offset
    given in the left convention turns the right arm as the mirror image of the left."""
    g = torch.Generator().manual_seed(3)
    local = roma.rotvec_to_rotmat(0.6 * torch.randn(4, 22, 3, generator=g))
    mirrored = mirror_core_rotations(local)
    assert torch.allclose(arm_chains(local)[:, 1], arm_chains(mirrored)[:, 0], atol=1e-5)
    wrist = CORE_NAMES.index("left_wrist")
    assert torch.allclose(arm_chains(local)[:, 0, 3], global_rotations(local)[:, wrist], atol=1e-6)
    offset = roma.rotvec_to_rotmat(0.4 * torch.randn(4, 2, 3, generator=g))
    both = torch.stack([offset, offset], dim=1)  # the same offset on both sides, left convention
    out, out_mirrored = apply_offsets(local, both), apply_offsets(mirrored, both)
    assert torch.allclose(mirror_core_rotations(out), out_mirrored, atol=1e-5)
    untouched = [i for i, n in enumerate(CORE_NAMES) if not n.endswith(("_elbow", "_wrist"))]
    assert torch.equal(out[:, untouched], local[:, untouched])


@pytest.fixture(scope="module")
def body():
    return load_anny_body()


def test_wholebody_labels_match_an_anny_forward(body):
    """The generator's hand labels (orientation, wrist-relative hand21 points) are what the whole
    Anny body with those finger angles gives, computed independently by one body forward."""
    g = torch.Generator().manual_seed(5)
    poses = roma.rotvec_to_rotmat(0.5 * torch.randn(6, 22, 3, generator=g))
    synth = WholeBodySynth(body, poses=poses)
    batch = synth.sample(4, torch.Generator().manual_seed(7))
    n = batch.batch
    full = torch.eye(3).expand(n, body.num_joints, 3, 3).clone()
    full[:, :22] = batch.body.rotations
    for k, side in enumerate(("left", "right")):
        hand = load_biomech_hand(side)
        index = [body.skeleton.index(name) for name in hand.model.skeleton.names[1:]]
        full[:, index] = hand.rotations(batch.angles[:, k])[:, 1:]
    for k, side in enumerate(("left", "right")):
        out = body(full, batch.body.shape, batch.body.translation, with_vertices=False,
                   keypoints=anny_keypoint_map(body, HAND21, side=side))
        wrist = body.skeleton.index(f"{side}_wrist")
        truth = out.keypoints - out.joints[:, wrist, None]
        labels = batch.hand_joints[:, k] if side == "left" else mirror_points(batch.hand_joints[:, k])
        assert (truth - labels).norm(dim=-1).max() < 1e-5
        rotation = out.transforms[:, wrist, :3, :3]
        label = batch.hand_rotation[:, k] if side == "left" else torch.diag(torch.tensor([-1.0, 1, 1])) @ batch.hand_rotation[:, k] @ torch.diag(torch.tensor([-1.0, 1, 1]))
        assert torch.allclose(rotation, label, atol=1e-5)
    # the arm tokens of the sample are the true arm chain; the camera-frame root is the body's
    assert torch.allclose(batch.hands.arm.reshape(n, 2, 4, 3, 3), arm_chains(batch.body.rotations))


def test_wholebody_observations(body):
    g = torch.Generator().manual_seed(5)
    poses = roma.rotvec_to_rotmat(0.5 * torch.randn(6, 22, 3, generator=g))
    synth = WholeBodySynth(body, poses=poses)
    a = synth.sample(64, torch.Generator().manual_seed(11))
    b = synth.sample(64, torch.Generator().manual_seed(11))
    assert torch.equal(a.hands.points, b.hands.points) and torch.equal(a.angles, b.angles)  # deterministic per seed
    h = a.hands
    condition = a.condition.flatten()
    gone = condition == CONDITIONS.index("missing")
    assert h.missing[gone].all() and (h.confidence[gone] == 0).all()
    assert not h.missing[condition == CONDITIONS.index("clean")].any()
    assert (h.points[h.missing] == 0).all() and (h.confidence[h.missing] == 0).all()
    assert not h.missing[~gone, 0].any()  # the wrist stays unless the hand is gone
    assert (h.points[~gone, 0] == 0).all()  # wrist-relative
    clean = condition == CONDITIONS.index("clean")
    truth = a.hand_joints.reshape(-1, 21, 3)
    error = (h.points[clean] - truth[clean]).norm(dim=-1).mean()
    assert 0.002 < error < 0.03  # MediaPipe-like: millimetres to centimetres off, in the camera's axes
    assert set(condition.tolist()) == set(range(len(CONDITIONS)))


def test_damaged_or_foreign_weights_are_refused_in_one_line(model, tmp_path):
    path = save_adapter(model, tmp_path / "adapter.safetensors")
    loaded, _ = load_adapter(path)
    inputs = random_inputs(4)
    with torch.no_grad():
        assert torch.allclose(loaded.hand(inputs).angles, model.hand(inputs).angles)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ModelAssetError) as error:
        load_adapter(damaged)
    assert "\n" not in str(error.value) and "HMR-Adapter" in str(error.value)
    with pytest.raises(ModelAssetError) as error:
        load_adapter(tmp_path / "absent.safetensors")
    assert "hmrkit train adapter" in str(error.value) and "\n" not in str(error.value)
    from hmrkit.io.integrity import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"format": "something else"})
    with pytest.raises(ModelAssetError, match="not an hmrkit HMR-Adapter file"):
        load_adapter(tmp_path / "other.safetensors")



def test_trainer_options_build_the_default_model():
    """The trainer's command-line defaults make the model's default config, option by option."""
    from hmrkit.train.adapter import parse_args

    assert parse_args([]).model_config() == AdapterConfig()
    assert parse_args(["--width", "32", "--ffn", "48"]).model_config() == AdapterConfig(width=32, ffn=48)


def test_shipped_weights_carry_their_digest_and_parameter_counts():
    """The shipped file verifies against its content digest and loads; the parameter counts its
    metadata (and the model card) state are the model's."""
    import json

    from hmrkit.io.integrity import verify
    from hmrkit.models.hmr_adapter import DEFAULT_WEIGHTS, parameter_count
    from hmrkit.paths import weights_dir

    path = weights_dir() / DEFAULT_WEIGHTS
    assert verify(path)
    model, meta = load_adapter()
    counts = json.loads(meta["parameters"])
    assert counts == {name: parameter_count(getattr(model, name)) for name in counts}
    assert set(counts) == {"expert", "hand_adapter", "body_adapter", "naive_hand", "naive_body"}
