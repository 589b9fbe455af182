"""BPAC-Net (AJAHR's limb classifier): the net, its inputs, its weights file, its trainer, the shipped model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import shared_data
from hmrkit.body.conventions import MEDIAPIPE33
from hmrkit.body.limbs import LIMBS
from hmrkit.errors import ModelAssetError
from hmrkit.models.bpac_net import (
    FLIP_LANDMARKS,
    FLIP_LIMBS,
    BasicBlock,
    LIMB_LANDMARKS,
    BpacInput,
    BpacClassifier,
    BpacConfig,
    BpacLiteNet,
    BpacNet,
    Cbam,
    crop_landmarks,
    cut_person,
    decide,
    landmark_heatmaps,
    limb_probabilities,
    load_bpac,
    mirror,
    net_input,
    person_crop_box,
    save_bpac,
)
from hmrkit.paths import weights_dir
from hmrkit.train.bpac import Augmentation, Samples, augment, calibrate, calibrate_per_limb

SMALL = BpacConfig(crop_size=64, widths=(8, 16, 16, 16), blocks=(1, 1, 1, 1), feature_dim=32)


def _landmarks(rng: np.random.Generator, n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    xy = torch.from_numpy(rng.uniform(4, size - 5, (n, 33, 2))).float()
    vis = torch.from_numpy(rng.uniform(0, 1, (n, 33))).float()
    return xy, vis


def _random_input(b: int, size: int) -> BpacInput:
    return BpacInput(torch.rand(b, 36, size, size), torch.rand(b, 33, 3) * 2 - 1)


def test_shapes_and_feature_head():
    torch.manual_seed(0)
    net = BpacNet(SMALL).eval()
    out = net(_random_input(3, 64))
    assert out.logits.shape == (3, len(LIMBS), 4)
    assert out.features.shape == (3, SMALL.feature_dim)
    with pytest.raises(ValueError, match="BPAC-Net takes images"):
        net(BpacInput(torch.rand(3, 35, 64, 64), torch.rand(3, 33, 3)))
    with pytest.raises(ValueError, match="BPAC-Net takes keypoints"):
        net(BpacInput(torch.rand(3, 36, 64, 64), torch.rand(3, 33, 2)))
    s = BpacConfig().crop_size
    assert BpacNet()(_random_input(1, s)).logits.shape == (1, 4, 4)


LITE = BpacConfig(crop_size=64, imagenet_trunk=True, trunk_size=64, feature_dim=32, limb_dim=16, keypoint_dim=16)


def test_lite_net_shapes_and_its_heatmaps_start_at_zero():
    torch.manual_seed(2)
    net = BpacLiteNet(LITE).eval()
    x = _random_input(2, 64)
    with torch.no_grad():
        out = net(x)
        assert out.logits.shape == (2, len(LIMBS), 4) and out.features.shape == (2, LITE.feature_dim)
        other_heatmaps = BpacInput(torch.cat([x.image[:, :3], torch.rand(2, 33, 64, 64)], 1), x.keypoints)
        assert torch.equal(net(other_heatmaps).logits, out.logits)  # the heatmap convolution starts at zero: the pretrained stem is unchanged
        net.heatmap_stem.weight.normal_()
        assert not torch.allclose(net(other_heatmaps).logits, net(x).logits)
    with pytest.raises(ValueError, match="BPAC-Net takes images"):
        net(BpacInput(torch.rand(1, 36, 32, 32), torch.rand(1, 33, 3)))


def test_lite_net_limb_heads_read_the_trunk_at_their_own_landmarks():
    torch.manual_seed(3)
    net = BpacLiteNet(LITE).eval()
    with torch.no_grad():
        net.keypoint_mlp[-2].weight.zero_()  # the landmark list no longer speaks: only where the maps are sampled depends on it
        net.keypoint_mlp[-2].bias.zero_()
        x = _random_input(1, 64)
        base = net(x).logits
        for k, limb in enumerate(LIMBS):
            for name in LIMB_LANDMARKS[limb]:
                moved = x.keypoints.clone()
                moved[0, MEDIAPIPE33.index(name), :2] = -moved[0, MEDIAPIPE33.index(name), :2]
                changed = (net(BpacInput(x.image, moved)).logits - base).abs().amax(-1)[0] > 1e-6
                assert changed.tolist() == [j == k for j in range(len(LIMBS))], (limb, name)
        nose = x.keypoints.clone()
        nose[0, MEDIAPIPE33.index("nose"), :2] += 0.5
        assert torch.equal(net(BpacInput(x.image, nose)).logits, base)


def test_lite_net_starts_from_the_imagenet_trunk():
    from hmrkit.models.lite_i2l import EfficientNetLite0

    net = BpacLiteNet(LITE)
    net.start_from_imagenet()
    reference = EfficientNetLite0(stem=True)
    reference.load_imagenet()
    for name, tensor in reference.state_dict().items():
        assert torch.equal(net.trunk.state_dict()[name], tensor), name


def test_cbam_ends_every_basic_block():
    net = BpacNet(BpacConfig()).eval()
    blocks = [m for m in net.blocks]
    assert len(blocks) == sum(BpacConfig().blocks) and all(isinstance(b, BasicBlock) for b in blocks)
    seen: dict[int, torch.Tensor] = {}
    hooks = []
    for i, block in enumerate(blocks):
        assert isinstance(block.cbam, Cbam)
        hooks.append(block.cbam.register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(("cbam", i), out)))
        hooks.append(block.register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(("block", i), out)))
    with torch.no_grad():
        net(_random_input(2, BpacConfig().crop_size))
    for h in hooks:
        h.remove()
    for i in range(len(blocks)):  # each block's output is its CBAM's output: attention is the block's last step
        assert seen[("block", i)] is seen[("cbam", i)]


def test_cbam_attention_matches_its_definition():
    torch.manual_seed(1)
    cbam = Cbam(16, 4).eval()
    x = torch.randn(2, 16, 9, 7)
    mlp = cbam.mlp
    channel = torch.sigmoid(mlp(x.mean((2, 3), keepdim=True)) + mlp(x.amax((2, 3), keepdim=True)))
    y = x * channel
    pooled = torch.stack([y.mean(1), y.amax(1)], 1)
    spatial = torch.sigmoid(torch.nn.functional.conv2d(pooled, cbam.spatial.weight, cbam.spatial.bias, padding=3))
    with torch.no_grad():
        assert torch.allclose(cbam(x), y * spatial, atol=1e-6)


def test_heatmaps_against_a_pixel_loop():
    rng = np.random.default_rng(0)
    size, sigma = 20, 1.7
    xy, weight = _landmarks(rng, 2, size)
    heat = landmark_heatmaps(xy.double(), weight.double(), size, sigma).numpy()
    expected = np.zeros((2, 33, size, size))
    for b in range(2):
        for k in range(33):
            x, y = xy[b, k].tolist()
            for v in range(size):
                for u in range(size):
                    expected[b, k, v, u] = weight[b, k].item() * np.exp(-((u - x) ** 2 + (v - y) ** 2) / (2 * sigma**2))
    np.testing.assert_allclose(heat, expected, atol=1e-12)


def test_net_input_weights_by_visibility_and_zeroes_missing_landmarks():
    cfg = BpacConfig(crop_size=32)
    crops = torch.randint(0, 256, (1, 32, 32, 3), dtype=torch.uint8)
    xy = torch.full((1, 33, 2), 10.0)
    xy[0, 5] = float("nan")
    vis = torch.full((1, 33), 0.25)
    inputs = net_input(crops, xy, vis, cfg)
    x = inputs.image
    assert x.shape == (1, 36, 32, 32)
    assert torch.allclose(x[0, :3], crops[0].permute(2, 0, 1).float() / 255)
    assert float(x[0, 3 + 0, 10, 10]) == pytest.approx(0.25)  # the peak is the visibility
    assert float(x[0, 3 + 5].abs().max()) == 0.0  # not found: no heatmap
    assert inputs.keypoints[0, 0].tolist() == pytest.approx([(2 * 10 + 1) / 32 - 1] * 2 + [0.25])  # pixel 10's centre
    assert inputs.keypoints[0, 5].tolist() == [0.0, 0.0, 0.0]


def test_flip_tables_swap_sides_by_name():
    names = MEDIAPIPE33.names
    assert names[FLIP_LANDMARKS[names.index("left_wrist")]] == "right_wrist"
    assert names[FLIP_LANDMARKS[names.index("mouth_left")]] == "mouth_right"
    assert FLIP_LANDMARKS[0] == 0  # the nose stays
    assert [FLIP_LANDMARKS[i] for i in FLIP_LANDMARKS] == list(range(33))
    assert [LIMBS[i] for i in FLIP_LIMBS] == ["right_arm", "left_arm", "right_leg", "left_leg"]


def test_mirror_is_the_flipped_input_with_sides_renamed_and_labels_swapped():
    rng = np.random.default_rng(2)
    cfg = BpacConfig(crop_size=48)
    rgb = torch.rand(2, 3, 48, 48)
    xy, vis = _landmarks(rng, 2, 48)
    labels = torch.tensor([[1, 0, 3, 0], [0, 2, 0, 1]])
    m_rgb, m_xy, m_vis, m_labels = mirror(rgb, xy, vis, labels)
    # independently: flip the whole input picture (RGB and heatmaps) and give each heatmap channel
    # the name of its mirror image (the left wrist's spot is now where the right wrist is)
    original = net_input(rgb, xy, vis, cfg)
    x = original.image.flip(-1)
    expected = x[:, [0, 1, 2] + [3 + FLIP_LANDMARKS[i] for i in range(33)]]
    mirrored = net_input(m_rgb, m_xy, m_vis, cfg)
    assert torch.allclose(mirrored.image, expected, atol=1e-6)
    expected_keypoints = original.keypoints[:, list(FLIP_LANDMARKS)] * torch.tensor([-1.0, 1.0, 1.0])
    assert torch.allclose(mirrored.keypoints, expected_keypoints, atol=1e-6)
    assert m_labels.tolist() == [[0, 1, 0, 3], [2, 0, 1, 0]]
    assert torch.equal(mirror(*mirror(rgb, xy, vis, labels))[3], labels)


def test_crop_cut_and_landmark_map_agree():
    """A bright dot at a landmark lands on that landmark's crop position, in both cutting paths."""
    for side, image_size in ((100.0, 200), (900.0, 1200)):  # warped directly; shrunk first (scale < 0.5)
        image = np.zeros((image_size, image_size, 3), np.uint8)
        rng = np.random.default_rng(3)
        xy = rng.uniform(image_size * 0.3, image_size * 0.7, (33, 2))
        dot = np.round(xy[15]).astype(int)
        r = int(side / 60)
        image[dot[1] - r:dot[1] + r + 1, dot[0] - r:dot[0] + r + 1] = 255
        box = person_crop_box(xy, 1.15)
        crop = cut_person(image, box, 64)
        where = crop_landmarks(dot[None].astype(np.float64), box, 64)[0]
        ys, xs = np.nonzero(crop[..., 0] > 100)
        weights = crop[ys, xs, 0].astype(float)
        assert np.hypot((xs * weights).sum() / weights.sum() - where[0], (ys * weights).sum() / weights.sum() - where[1]) < 0.7


def test_crop_box_covers_every_landmark_and_the_head_top():
    xy = np.zeros((33, 2))
    xy[:, 0] = np.linspace(100, 140, 33)
    xy[:, 1] = np.linspace(50, 250, 33)
    xy[0] = (120, 60)  # nose
    xy[11], xy[12] = (110, 100), (130, 100)  # shoulders 40 px below the nose: head top at 60 - 32
    box = person_crop_box(xy, 1.0)
    assert float(box.size) == pytest.approx(250 - 28)
    assert box.center.tolist() == pytest.approx([(xy[:, 0].min() + 140) / 2, (28 + 250) / 2])


def test_augmentation_moves_landmarks_with_the_picture():
    """With landmark noise off, each heatmap peak sits on the bright dot drawn at its landmark."""
    rng = np.random.default_rng(4)
    cfg = BpacConfig(crop_size=64)
    p = 80
    crops = np.zeros((6, p, p, 3), np.uint8)
    xy = np.full((6, 33, 2), np.nan, np.float32)
    for i in range(6):
        c = rng.integers(25, 55, 2)
        crops[i, c[1] - 1:c[1] + 2, c[0] - 1:c[0] + 2] = 255
        xy[i, 15] = c
    samples = Samples(crops, xy, np.ones((6, 33), np.float32), np.tile(np.array([[1, 0, 2, 0]]), (6, 1)), np.zeros(6, bool))
    aug = Augmentation(landmark_noise=0.0, visibility=0.0, saturation=0.0, contrast=0.0, brightness=0.0)
    inputs, labels = augment(samples, cfg, torch.Generator().manual_seed(5), aug)
    x = inputs.image
    for i in range(6):
        flipped = labels[i].tolist() == [0, 1, 0, 2]
        assert flipped or labels[i].tolist() == [1, 0, 2, 0]
        channel = 3 + (FLIP_LANDMARKS[15] if flipped else 15)
        heat, bright = x[i, channel], x[i, 0]
        assert float(heat.max()) > 0.6  # a whole Gaussian of peak 1 near a pixel centre

        def centroid(img: np.ndarray) -> np.ndarray:
            v, u = np.nonzero(img > 0.3 * img.max())
            w = img[v, u]
            return np.array([(v * w).sum(), (u * w).sum()]) / w.sum()

        assert np.hypot(*(centroid(heat.numpy()) - centroid(bright.numpy()))) < 0.75


def test_decision_rule_and_calibration():
    p = np.array([[[0.3, 0.1, 0.5, 0.1], [0.9, 0.05, 0.03, 0.02], [0.45, 0.5, 0.03, 0.02], [0.2, 0.1, 0.1, 0.6]]])
    assert decide(p, np.full(4, 0.4)).tolist() == [[2, 0, 0, 3]]
    assert decide(p, np.full(4, 0.1)).tolist() == [[0, 0, 0, 0]]
    rng = np.random.default_rng(6)
    real = rng.uniform(0.2, 1.0, (400, 4))
    synth = rng.uniform(0.5, 1.0, (300, 4))
    t = calibrate(real, synth, 0.01, 0.05)
    assert (real.min(1) < t).mean() <= 0.01 and (synth.min(1) < t).mean() <= 0.05
    # the largest such threshold: one of the two sets has a person right at it
    assert min(abs(real.min(1) - t).min(), abs(synth.min(1) - t).min()) == 0
    assert calibrate(real, synth[:0], 0.01, 0.05) == pytest.approx(np.quantile(real.min(1), 0.01, method="lower"))


def _flagged(present: np.ndarray, thresholds: np.ndarray) -> int:
    return int((present < thresholds).any(1).sum())


def test_per_limb_calibration_keeps_the_constraints_and_finds_more():
    rng = np.random.default_rng(11)
    # intact arms sit lower than intact legs (as on held-out A3D); absent limbs lower still
    low = np.array([0.15, 0.15, 0.05, 0.05])  # the lowest intact P(present) per limb
    real = rng.uniform(low, 1.0, (300, 4))
    synth = rng.uniform(low, 1.0, (200, 4))
    labels = rng.random((600, 4)) < 0.3
    absent = np.where(labels, rng.uniform(0.0, [0.5, 0.5, 0.3, 0.3], (600, 4)), np.nan)
    common = calibrate(real, synth, 0.01, 0.05)
    t = calibrate_per_limb(real, synth, absent, 0.01, 0.05)
    assert t.shape == (4,) and np.all(t >= common) and np.all(t <= 0.5)
    # both constraints hold, counted directly
    assert _flagged(real, t) <= np.floor(0.01 * 300) and _flagged(synth, t) <= np.floor(0.05 * 200)
    caught = int(np.nansum(absent < t))
    assert caught > int(np.nansum(absent < common))
    # greedy, not optimal, but no single limb's threshold can still be raised to its next candidate
    for k in range(4):
        grid = np.unique(np.clip(np.nanquantile(absent[:, k], np.linspace(0, 1, 40)), 0, 0.5))
        higher = grid[grid > t[k]]
        if len(higher):
            up = t.copy()
            up[k] = higher[0]
            assert _flagged(real, up) > np.floor(0.01 * 300) or _flagged(synth, up) > np.floor(0.05 * 200) \
                or int(np.nansum(absent[:, k] < up[k])) == int(np.nansum(absent[:, k] < t[k]))


def test_per_limb_calibration_without_absent_limbs_is_the_common_threshold():
    rng = np.random.default_rng(12)
    real, synth = rng.uniform(0.2, 1.0, (100, 4)), rng.uniform(0.5, 1.0, (50, 4))
    t = calibrate_per_limb(real, synth, np.full((10, 4), np.nan), 0.01, 0.05)
    assert t.tolist() == [calibrate(real, synth, 0.01, 0.05)] * 4


@pytest.mark.parametrize("kind, config", [(BpacNet, SMALL), (BpacLiteNet, LITE)])
def test_weights_round_trip(tmp_path, kind, config):
    torch.manual_seed(7)
    net = kind(config).eval()
    for m in net.modules():  # non-trivial batch-norm statistics travel too
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    if isinstance(net, BpacLiteNet):
        torch.nn.init.normal_(net.heatmap_stem.weight)
    path = save_bpac(net, np.array([0.1, 0.2, 0.3, 0.4]), tmp_path / "b.safetensors", {"steps": "3"})
    loaded, thresholds, meta = load_bpac(path)
    assert type(loaded) is kind and loaded.config == config and meta["steps"] == "3"
    assert thresholds.tolist() == [0.1, 0.2, 0.3, 0.4]
    x = _random_input(2, 64)
    with torch.no_grad():
        assert torch.equal(net(x).logits, loaded(x).logits)


def test_damaged_or_foreign_weights_give_one_line(tmp_path):
    net = BpacNet(SMALL)
    good = save_bpac(net, np.full(4, 0.2), tmp_path / "good.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign), metadata={"format": "hmrkit-bpac-v1", "config": json.dumps({"crop_size": 64}),
                                                             "thresholds": "[0.1, 0.1, 0.1, 0.1]"})
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "hmrkit-pose-prior-v1"})
    for path in (cut, garbage, foreign, other, tmp_path / "missing.safetensors"):
        with pytest.raises(ModelAssetError) as error:
            BpacClassifier.load(path)
        message = str(error.value)
        assert "\n" not in message and str(path) in message


def test_bad_weights_through_the_command_are_one_line(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    code = ("import sys; from hmrkit.models.bpac_net import BpacClassifier; from hmrkit.errors import HmrkitError\n"
            "try:\n    BpacClassifier.load(sys.argv[1])\nexcept HmrkitError as e:\n    print(e, file=sys.stderr); sys.exit(1)")
    done = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1 and "bad.safetensors" in done.stderr


def test_trainer_rejects_a_missing_set_in_one_line(capsys, tmp_path):
    from hmrkit.train.bpac import main

    assert main(["--a3d", str(tmp_path / "nothing"), "--run-dir", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not found (make it with hmrkit synth a3d)" in err[0]
    (tmp_path / "empty").mkdir()
    assert main(["--a3d", str(tmp_path / "empty"), "--run-dir", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a synthetic set" in err[0]


def test_trainer_reads_the_samples_prepared_from_a_set_that_is_gone(tmp_path):
    from hmrkit.train.bpac import prepared_without_set

    rng = np.random.default_rng(4)
    samples = Samples(rng.integers(0, 256, (3, 10, 10, 3), dtype=np.uint8), rng.random((3, 33, 2), dtype=np.float32),
                      rng.random((3, 33), dtype=np.float32), rng.integers(0, 4, (3, 4)), np.zeros(3, bool))
    path = tmp_path / "prepared_a3d.npz"
    samples.save(path)
    key = {"a3d": "/gone/train", "max_a3d": 0, "crop_size": 112}
    path.with_suffix(".json").write_text(json.dumps({**key, "samples": 3}))
    lines = []
    loaded = prepared_without_set(path, key, lines.append)
    np.testing.assert_array_equal(loaded.crops, samples.crops)
    assert lines == [f"/gone/train not found: using the 3 samples prepared from it in {path}"]
    for other in ({**key, "a3d": "/gone/other"}, {**key, "crop_size": 64}):  # another set, or cut for another net
        with pytest.raises(ValueError, match="holds no samples prepared from it"):
            prepared_without_set(path, other)
    with pytest.raises(ValueError, match="holds no samples prepared from it"):
        prepared_without_set(tmp_path / "missing.npz", key)


def _tiny_a3d(root, count: int = 12, start: int = 0) -> None:
    """A stand-in synthetic set in the on-disk format: noise pictures, random landmarks and labels."""
    import cv2

    from hmrkit.synth.dataset import SynthManifest, SynthPerson, image_path, label_path, save_person, write_manifest

    rng = np.random.default_rng(8 + start)
    write_manifest(root, SynthManifest("a3d", 0, count, (160, 120), {}))
    for i in range(start, count):
        path = image_path(root, i)
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), rng.integers(0, 256, (160, 120, 3), dtype=np.uint8))
        landmarks = np.concatenate([rng.uniform(20, 100, (33, 2)), rng.uniform(0, 1, (33, 1))], 1).astype(np.float32)
        if i == 3:
            landmarks[:] = np.nan  # MediaPipe found nobody: skipped
        save_person(label_path(root, i), SynthPerson(
            limb_classes=np.zeros(4, np.int64) if i == 9 else rng.integers(0, 4, 4), box=np.zeros(4, np.float32), camera=np.ones(4, np.float32),
            rotations=np.tile(np.eye(3, dtype=np.float32), (2, 1, 1)), shape=np.zeros(3, np.float32),
            translation=np.zeros(3, np.float32), keypoints2d=np.zeros((5, 2), np.float32),
            keypoints3d=np.zeros((5, 3), np.float32), keypoints_absent=np.zeros(5, bool), landmarks=landmarks))


def test_growing_set_adds_finished_samples_to_both_slices(tmp_path):
    from hmrkit.train.bpac import BpacTrainConfig, grow, prepare_a3d

    root = tmp_path / "a3d"
    _tiny_a3d(root, 8)
    config = BpacConfig(crop_size=32)
    first, index = prepare_a3d(root, config)
    assert index.tolist() == [0, 1, 2, 4, 5, 6, 7]  # 3: MediaPipe found nobody
    data = {"train": first, "val_synth": first.take(np.zeros(len(first), bool))}
    cfg = BpacTrainConfig(a3d=str(root), max_a3d=19)
    assert grow(cfg, config, data, 7) == 7  # nothing new
    _tiny_a3d(root, 22, start=8)  # the generator went on to 21
    assert grow(cfg, config, data, 7) == 17  # up to 17: the newest one read (18 here) is left for the next call, it may be half written
    assert len(data["train"]) == 7 + 9 and len(data["val_synth"]) == 1  # sample 9 is held out (index % 10 == 9)
    assert grow(cfg, config, data, 17) == 17


@pytest.mark.slow
def _training_photos(tmp_path):
    """A data folder of three lspet_dev photos and one demo photo, and a tiny A3D set beside it."""
    lspet = shared_data("lspet_dev", "images")
    demo = shared_data("demo_images", "zidane.jpg")
    data = tmp_path / "data"
    (data / "lspet_dev" / "images").mkdir(parents=True)
    (data / "demo_images").mkdir()
    for name in ("im00006.jpg", "im00008.jpg", "im00009.jpg"):  # 6: held out for calibration; 9 is odd: never read
        shutil.copy(lspet / name, data / "lspet_dev" / "images" / name)
    shutil.copy(demo, data / "demo_images" / demo.name)
    _tiny_a3d(tmp_path / "a3d")
    return data


def test_training_runs_resumes_and_writes_a_classifier(tmp_path):
    from hmrkit.train.bpac import main

    data = _training_photos(tmp_path)
    common = ["--a3d", str(tmp_path / "a3d"), "--data", str(data), "--run-dir", str(tmp_path / "run"),
              "--out", str(tmp_path / "bpac.safetensors"), "--batch-size", "4", "--crop-size", "64",
              "--val-every", "1", "--checkpoint-every", "1", "--warmup", "1", "--record", str(tmp_path / "record")]
    assert main(common + ["--steps", "2", "--per-limb"]) == 0
    first = json.loads((tmp_path / "run" / "state.json").read_text())
    assert first["step"] == 2
    detections = np.load(tmp_path / "run" / "detections_real.npz")
    assert not any("im00009" in p for p in detections["photos_read"])
    assert main(common + ["--steps", "3", "--resume", "--per-limb"]) == 0
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["step"] == 3 and [h["step"] for h in state["history"]] == [1, 2, 3]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["people"]["train_synthetic"] + summary["people"]["held_out_synthetic"] == 11
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    assert json.loads((tmp_path / "record.json").read_text())["threshold"] == summary["threshold"]
    assert "| held out synthetic | 1 |" in (tmp_path / "record.md").read_text()
    classifier = BpacClassifier.load(tmp_path / "bpac.safetensors")
    assert classifier.thresholds.tolist() == summary["thresholds"]  # one per limb (--per-limb)
    assert all(t >= summary["threshold"] for t in summary["thresholds"])
    # fine-tuning from the written weights on two sets (the second a copy), one threshold (the default)
    shutil.copytree(tmp_path / "a3d", tmp_path / "a3d_copy")
    two = ["--a3d", f"{tmp_path / 'a3d'},{tmp_path / 'a3d_copy'}"] + common[2:4] + ["--run-dir", str(tmp_path / "run2")] + common[6:]
    assert main(two + ["--steps", "1", "--init", str(tmp_path / "bpac.safetensors")]) == 0
    summary = json.loads((tmp_path / "run2" / "summary.json").read_text())
    assert summary["people"]["train_synthetic"] + summary["people"]["held_out_synthetic"] == 22
    assert BpacClassifier.load(tmp_path / "bpac.safetensors").thresholds.tolist() == [summary["threshold"]] * 4
    # the ImageNet trunk (BpacLiteNet), its new layers at 3 x the trunk's learning rate; the sets read
    # from the run folder once their folders are gone
    lite = two[:4] + ["--run-dir", str(tmp_path / "run3")] + common[6:]
    assert main(lite + ["--steps", "1", "--imagenet-trunk", "--head-lr-factor", "3"]) == 0
    assert isinstance(BpacClassifier.load(tmp_path / "bpac.safetensors").net, BpacLiteNet)
    groups = json.loads((tmp_path / "run3" / "state.json").read_text())["param_groups"]["model"]
    assert [g["factor"] for g in groups] == [1.0, 3.0] and groups[1]["lr"] == pytest.approx(3 * groups[0]["lr"])
    from hmrkit.models.lite_i2l import EfficientNetLite0

    assert len(groups[0]["params"]) == len(list(EfficientNetLite0(stem=True).parameters()))  # the trunk alone at lr
    shutil.move(tmp_path / "a3d_copy", tmp_path / "a3d_gone")
    assert main(lite + ["--steps", "1", "--imagenet-trunk"]) == 0
    # --init with another net's shape, and --grow-every over two sets: one line each
    assert main(two + ["--steps", "1", "--init", str(tmp_path / "bpac.safetensors"), "--crop-size", "32"]) == 1
    assert main(two + ["--steps", "1", "--grow-every", "5"]) == 1


def test_erased_limbs_are_made_from_the_training_photos_only(tmp_path):
    from hmrkit.train.bpac import Detections, is_calibration_photo, main, prepare_erased

    data = _training_photos(tmp_path)
    run = tmp_path / "run"
    assert main(["--a3d", str(tmp_path / "a3d"), "--data", str(data), "--run-dir", str(run), "--erased",
                 "--out", str(tmp_path / "bpac.safetensors"), "--batch-size", "4", "--crop-size", "64",
                 "--steps", "1", "--warmup", "1", "--record", ""]) == 0
    found = np.load(run / "detections_real.npz")
    training = np.array([not is_calibration_photo(str(p)) for p in found["photo"]])
    assert 0 < training.sum() < len(training)  # people on both sides of the split
    edits = Samples.load(run / "prepared_erased.npz")
    # the same edits again from the training photos' people alone: the calibration photo was left out
    alone = Detections(found["photo"][training], found["xy"][training], found["visibility"][training], found["box"][training], 0)
    again = prepare_erased(alone, BpacConfig(crop_size=64), seed=0)
    assert np.array_equal(again.labels, edits.labels) and np.array_equal(again.crops, edits.crops)
    erased = (edits.labels > 0).sum(1)
    assert set(erased.tolist()) == {0, 1}  # one limb erased per person, and decoys with every limb present
    assert edits.real.all() and len(edits.labels) <= 2 * training.sum()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["people"]["train_real"] == training.sum() + len(edits.labels)


SHIPPED = weights_dir() / "bpac.safetensors"


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped BPAC-Net weights (hmrkit train bpac)")
def test_shipped_classifier_calls_an_intact_photo_intact():
    from hmrkit.io.images import load_image
    from hmrkit.perception.mediapipe_backend import MediaPipeBackend, MediaPipeConfig

    photo = shared_data("demo_images", "Cristiano_Ronaldo.jpg")
    rgb = load_image(photo).rgb
    with MediaPipeBackend(MediaPipeConfig(hands=False)) as backend:
        people = backend.detect(rgb).people
    assert people
    classifier = BpacClassifier.load()
    statuses = classifier.classify(rgb, people)
    assert len(statuses) == len(people)
    for status in statuses:
        assert status.source == "bpac" and not status.any_absent
        for state in status.states:
            assert sum(state.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
            assert state.probabilities["present"] >= classifier.thresholds[0]


def test_flip_average_is_mirror_symmetric():
    torch.manual_seed(9)
    rng = np.random.default_rng(9)
    net = BpacNet(SMALL).eval()
    crops = torch.from_numpy(rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8))
    xy, vis = _landmarks(rng, 3, 64)
    p = limb_probabilities(net, crops, xy, vis)
    m_rgb, m_xy, m_vis, _ = mirror(crops.permute(0, 3, 1, 2).float() / 255, xy, vis)
    p_mirrored = limb_probabilities(net, m_rgb, m_xy, m_vis)
    assert torch.allclose(p_mirrored[:, list(FLIP_LIMBS)], p, atol=1e-5)
    assert torch.allclose(p.sum(-1), torch.ones(3, 4), atol=1e-6)
    single = limb_probabilities(net, crops, xy, vis, flip_average=False)
    assert not torch.allclose(single, p, atol=1e-4)  # the mirrored view does change an untrained net's answer


def test_classifier_batches_people_independently_and_skips_hands_only(tmp_path):
    from hmrkit.perception.types import BodyLandmarks, HandLandmarks, PersonDetection

    torch.manual_seed(10)
    rng = np.random.default_rng(10)
    path = save_bpac(BpacNet(SMALL), np.full(4, 0.3), tmp_path / "b.safetensors")
    classifier = BpacClassifier.load(path)
    rgb = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)

    def person(x0: float) -> PersonDetection:
        xy = np.stack([rng.uniform(x0, x0 + 80, 33), rng.uniform(20, 220, 33)], 1)
        return PersonDetection((x0, 20, x0 + 80, 220), 0.9, BodyLandmarks(xy, rng.uniform(0, 1, 33), np.zeros((33, 3))))

    hand = HandLandmarks("left", np.zeros((21, 2)), np.zeros((21, 3)), 0.9, "hand_model")
    people = [person(10), PersonDetection((0, 0, 5, 5), 0.5, None, {"left": hand}), person(200)]
    together = classifier.probabilities(rgb, people)
    assert together.shape == (3, 4, 4) and np.isnan(together[1]).all()
    np.testing.assert_allclose(together[2], classifier.probabilities(rgb, [people[2]])[0], atol=1e-6)
    statuses = classifier.classify(rgb, people)
    assert statuses[1].source == "intact" and not statuses[1].any_absent
    for status, p in zip([statuses[0], statuses[2]], [together[0], together[2]]):
        assert status.source == "bpac"
        np.testing.assert_array_equal(status.classes, decide(p, classifier.thresholds))
        assert [s.probabilities["present"] for s in status.states] == pytest.approx(p[:, 0].tolist())


def test_a_chosen_threshold_decides_every_limb_on_it_and_leaves_the_model_alone(tmp_path):
    from hmrkit.perception.types import BodyLandmarks, PersonDetection

    torch.manual_seed(11)
    rng = np.random.default_rng(11)
    classifier = BpacClassifier.load(save_bpac(BpacNet(SMALL), np.full(4, 0.3), tmp_path / "b.safetensors"))
    rgb = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    xy = np.stack([rng.uniform(40, 200, 33), rng.uniform(20, 220, 33)], 1)
    people = [PersonDetection((40, 20, 200, 220), 0.9, BodyLandmarks(xy, np.ones(33), np.zeros((33, 3))))]
    present = classifier.probabilities(rgb, people)[0, :, 0]
    threshold = float(np.median(present))  # between the limbs: some fall below it, some do not
    assert (present < threshold).any() and (present >= threshold).any()
    chosen = classifier.at_threshold(threshold)
    (status,) = chosen.classify(rgb, people)
    assert [not s.present for s in status.states] == (present < threshold).tolist()
    assert classifier.thresholds.tolist() == [0.3] * 4 and chosen.net is classifier.net
    for bad in (0.0, 1.0, float("nan"), -0.2):
        with pytest.raises(ValueError):
            classifier.at_threshold(bad)
