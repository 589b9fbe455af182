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


@pytest.mark.parametrize("skips", [False, True])
def test_mesh_losses_do_not_move_the_posenet_joints(skips):
    """I2L MeshNet feeds the PoseNet joints to the MeshNet detached: the MeshNet's outputs give the
    PoseNet's decoder and lixel heads no gradient (the first shipped network's joints were pulled
    onto the hand's axis by the vertex losses), while the shared backbone still learns from both."""
    net = net_of(LiteI2LConfig(**{**SMALL.__dict__, "skips": skips})).train()
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
        config = LiteI2LConfig(**{**SMALL.__dict__, "input_size": size, "skips": True})
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
    config = LiteI2LConfig(**{**SMALL.__dict__, "skips": True, "depth_range": 2.0})
    net = net_of(config, 3).eval()
    loaded, _ = load_lite_i2l(save_lite_i2l(net, tmp_path / "w.safetensors", half=False))
    assert loaded.config == config
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x).joints, net(x).joints, atol=1e-5)

