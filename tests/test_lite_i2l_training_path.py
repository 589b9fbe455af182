"""Lite I2L MeshNet's training path (issue 17's "the network does not learn"): what reaches the
PoseNet, the decoder's skip connections, the depth range."""

from __future__ import annotations

import pytest
import torch

from hmrkit.models.lite_i2l import LiteI2L, LiteI2LConfig, crop_to_lixels, lixels_to_crop, load_lite_i2l, save_lite_i2l

SMALL = LiteI2LConfig(input_size=64, decoder_channels=32, aggregation_channels=16, depth_channels=8)


def net_of(config: LiteI2LConfig, seed: int = 0) -> LiteI2L:
    torch.manual_seed(seed)
    return LiteI2L(config)


@pytest.mark.parametrize("extra", [{}, {"skips": True}, {"skips": True, "mixing": True}])
def test_mesh_losses_do_not_move_the_posenet_joints(extra):
    """I2L MeshNet feeds the PoseNet joints to the MeshNet detached: the MeshNet's outputs give the
    PoseNet's decoder and lixel heads no gradient (the first shipped network's joints were pulled
    onto the hand's axis by the vertex losses), while the shared backbone still learns from both."""
    net = net_of(LiteI2LConfig(**{**SMALL.__dict__, **extra})).train()
    out = net(torch.rand(2, 3, 64, 64))
    (out.vertices.sum() + out.mesh_joints.sum()).backward()
    head = [p.grad for p in net.pose_head.parameters()]
    assert all(g is None or float(g.abs().max()) == 0.0 for g in head)
    assert any(p.grad is not None and float(p.grad.abs().max()) > 0 for p in net.pose_backbone.parameters())
    assert any(p.grad is not None and float(p.grad.abs().max()) > 0 for p in net.mesh_head.parameters())
    net.zero_grad()
    net(torch.rand(2, 3, 64, 64)).joints.sum().backward()
    assert any(g is not None and float(g.abs().max()) > 0 for g in (p.grad for p in net.pose_head.parameters()))


def test_skips_carry_fine_detail_to_the_lixels():
    """With skips a change in one corner of the crop reaches the x heatmaps through the stride-4
    path; the outputs keep their shapes and range at the sizes the trainer uses."""
    for size in (64, 96):
        config = LiteI2LConfig(**{**SMALL.__dict__, "input_size": size, "skips": True, "mixing": True})
        net = net_of(config).eval()
        with torch.no_grad():
            out = net(torch.rand(2, 3, size, size))
        assert out.joints.shape == (2, 21, 3) and out.vertices.shape == (2, config.num_vertices, 3)
        assert float(out.vertices.min()) >= 0 and float(out.vertices.max()) <= config.lixels - 1
    assert sum(p.numel() for p in net.pose_head.skips.parameters()) > 0
    plain = net_of(SMALL)
    assert plain.pose_head.skips is None
    # the same weights but for the skip projections: a different answer
    skipped = net_of(LiteI2LConfig(**{**SMALL.__dict__, "skips": True})).eval()
    plain.eval()
    x = torch.rand(1, 3, 64, 64)
    own = {k: v for k, v in skipped.state_dict().items() if "skips" not in k}
    plain.load_state_dict(own)
    with torch.no_grad():
        assert not torch.allclose(plain(x).joints, skipped(x).joints)


@pytest.mark.parametrize("depth_range", [1.0, 2.0])
def test_depth_range_scales_only_depth(depth_range):
    config = LiteI2LConfig(**{**SMALL.__dict__, "depth_range": depth_range})
    pts = torch.tensor([[[3.0, 60.0, -40.0], [31.5, 31.5, 0.0], [10.0, 5.0, 50.0]]])
    lix = crop_to_lixels(pts, config)
    assert torch.allclose(lixels_to_crop(lix, config), pts, atol=1e-5)
    plain = crop_to_lixels(pts, SMALL)
    assert torch.allclose(lix[..., :2], plain[..., :2])
    # a z lixel spans 4 x depth_range crop pixels of depth, centred mid-range
    assert torch.allclose(lix[..., 2] - config.lixels / 2, pts[..., 2] / (4 * depth_range))


def test_config_with_skips_and_depth_range_survives_the_file(tmp_path):
    config = LiteI2LConfig(**{**SMALL.__dict__, "skips": True, "mixing": True, "depth_range": 2.0})
    net = net_of(config, 3).eval()
    loaded, _ = load_lite_i2l(save_lite_i2l(net, tmp_path / "w.safetensors", half=False))
    assert loaded.config == config
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x).joints, net(x).joints, atol=1e-5)



def test_estimator_input_averages_pixels_like_the_trainer():
    """The estimator's crop is what the trainer and the benchmark feed the network (cv2.INTER_AREA:
    pixel averages), not a bilinear sampling that aliases fine texture; a right hand's is mirrored."""
    import cv2
    import numpy as np

    from hmrkit.hands.lite_i2l_estimator import LiteI2LEstimator

    est = LiteI2LEstimator(net_of(SMALL))
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(256, 256, 3), dtype=np.uint8)  # 4 image pixels per network pixel
    x, scale = est.crop_input(noise, (0.0, 0.0, 256.0, 256.0), "left")
    assert scale == 4.0
    got = x[0].permute(1, 2, 0).numpy() * 255
    want = cv2.resize(noise, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert np.abs(got - want).max() < 1.0
    right, _ = est.crop_input(noise, (0.0, 0.0, 256.0, 256.0), "right")
    assert torch.equal(right, x.flip(-1))
    # a smooth image at a non-integer factor stays within a grey level of INTER_AREA on average
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    y, _ = est.crop_input(smooth, (0.0, 0.0, 96.0, 96.0), "left")
    ref = cv2.resize(smooth[:96, :96], (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert np.abs(y[0].permute(1, 2, 0).numpy() * 255 - ref).mean() < 1.0


def test_estimator_crop_places_a_point_where_its_inverse_maps_it_back():
    """A bright pixel of the image lands on the network pixel that ``estimate`` maps back to it:
    network pixel centre i <-> image x0 + (i + 0.5) * scale - 0.5 (scale 3: one network pixel
    averages a 3 x 3 block)."""
    import numpy as np

    from hmrkit.hands.lite_i2l_estimator import LiteI2LEstimator

    est = LiteI2LEstimator(net_of(SMALL))
    image = np.zeros((300, 300, 3), np.uint8)
    x0, y0 = 10.0, 25.0
    i, j = 40, 17  # network pixel (column, row)
    u, v = x0 + (i + 0.5) * 3 - 0.5, y0 + (j + 0.5) * 3 - 0.5  # the image pixel at its centre
    image[int(v), int(u)] = 255
    x, _ = est.crop_input(image, (x0, y0, x0 + 192.0, y0 + 192.0), "left")
    plane = x[0, 0]
    row, col = divmod(int(plane.argmax()), plane.shape[1])
    assert (col, row) == (i, j)
    mirrored, _ = est.crop_input(image, (x0, y0, x0 + 192.0, y0 + 192.0), "right")
    row, col = divmod(int(mirrored[0, 0].argmax()), 64)
    assert (col, row) == (63 - i, j)
