"""The Anny body and hands: forward against independent computations, keypoints, amputation."""

import numpy as np
import pytest
import roma
import torch

from hmrkit.body.amputation import LIMB_LOSSES, absent_joints, collapse_scales, limb_loss
from hmrkit.body.anny_keypoints import anny_keypoint_map
from hmrkit.body.anny_model import AnnyModel, anny_data, load_anny_hand
from hmrkit.body.anny_rig import KINEMATIC_CHAINS, NUM_BODY_CORE
from hmrkit.body.conventions import BODY_CONVENTIONS, HAND21, MEDIAPIPE33
from hmrkit.body.kinematics import forward_kinematics


def random_pose(model, batch, scale=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return roma.rotvec_to_rotmat(torch.randn(batch, model.num_joints, 3, generator=g) * scale)


def numpy_lbs(rotations, rest_joints, parents, weights, rest_vertices):
    """Reference: a plain loop over joints with 4x4 matrices, then a per-joint weighted sum."""
    world = []
    for j, p in enumerate(parents):
        local = np.eye(4)
        local[:3, :3] = rotations[j]
        local[:3, 3] = rest_joints[j] - (rest_joints[p] if p >= 0 else 0)
        world.append(local if p < 0 else world[p] @ local)
    out = np.zeros_like(rest_vertices)
    for j in range(len(parents)):
        unpose = np.eye(4)
        unpose[:3, 3] = -rest_joints[j]
        a = world[j] @ unpose
        out += weights[:, j : j + 1] * (rest_vertices @ a[:3, :3].T + a[:3, 3])
    return out, np.stack([w[:3, 3] for w in world])


def test_forward_matches_independent_numpy_lbs(anny_body):
    body = anny_body.double()
    rot = random_pose(body, 2).double()
    shape = torch.rand(2, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    trans = torch.tensor([[0.1, -0.2, 3.0], [0.0, 0.0, 2.0]], dtype=torch.float64)
    out = body(rot, shape, trans)
    coeff = body.blend_coefficients(shape)
    rest_j = body.rest_joints(coeff).numpy()
    rest_v = body.rest_vertices(coeff).numpy()
    w = body.skin_weights.numpy()
    for b in range(2):
        ref_v, ref_j = numpy_lbs(rot[b].numpy(), rest_j[b], body.skeleton.parents, w, rest_v[b])
        np.testing.assert_allclose(out.vertices[b].numpy(), ref_v + trans[b].numpy(), atol=1e-9)
        np.testing.assert_allclose(out.joints[b].numpy(), ref_j + trans[b].numpy(), atol=1e-9)
    body.float()


def test_identity_pose_gives_rest_mesh_and_translation_shifts_all(anny_body):
    shape = anny_body.default_shape(1)
    out = anny_body(anny_body.identity_pose(1), shape, torch.tensor([[1.0, 2.0, 3.0]]))
    rest = anny_body.rest_vertices(anny_body.blend_coefficients(shape))
    torch.testing.assert_close(out.vertices, rest + torch.tensor([1.0, 2.0, 3.0]), atol=1e-6, rtol=0)


def test_canonical_frame_is_y_up_facing_z(anny_body):
    out = anny_body(anny_body.identity_pose(1), keypoints=anny_keypoint_map(anny_body, MEDIAPIPE33))
    kp = dict(zip(MEDIAPIPE33.names, out.keypoints[0]))
    assert kp["nose"][1] > kp["left_hip"][1] > kp["left_ankle"][1]  # y up
    assert kp["left_shoulder"][0] > 0 > kp["right_shoulder"][0]  # x to the body's left
    assert kp["nose"][2] > kp["left_ear"][2] and kp["left_foot_index"][2] > kp["left_heel"][2]  # facing +z
    height = out.vertices[0, :, 1].max() - out.vertices[0, :, 1].min()
    assert 1.4 < height < 1.9


def test_height_phenotype_changes_height(anny_body):
    rot = anny_body.identity_pose(2)
    shape = anny_body.default_shape(2)
    shape[0, anny_body.shape_names.index("height")] = 0.0
    shape[1, anny_body.shape_names.index("height")] = 1.0
    v = anny_body(rot, shape).vertices
    heights = v[..., 1].max(1).values - v[..., 1].min(1).values
    assert heights[1] > heights[0] + 0.1


def test_keypoints_only_forward_agrees_with_full_mesh(anny_body):
    rot = random_pose(anny_body, 3, seed=3)
    shape = torch.rand(3, 6, generator=torch.Generator().manual_seed(4))
    trans = torch.randn(3, 3, generator=torch.Generator().manual_seed(5))
    for convention in BODY_CONVENTIONS:
        kmap = anny_keypoint_map(anny_body, convention)
        full = anny_body(rot, shape, trans, keypoints=kmap)
        fast = anny_body(rot, shape, trans, with_vertices=False, keypoints=kmap)
        assert fast.vertices is None
        torch.testing.assert_close(fast.keypoints, full.keypoints, atol=1e-5, rtol=0)
        torch.testing.assert_close(fast.joints, full.joints)


def test_gradients_flow_to_pose_and_shape(anny_body):
    rv = (torch.randn(1, anny_body.num_joints, 3) * 0.2).requires_grad_()
    shape = anny_body.default_shape(1).requires_grad_()
    kmap = anny_keypoint_map(anny_body, MEDIAPIPE33)
    out = anny_body(roma.rotvec_to_rotmat(rv), shape, with_vertices=False, keypoints=kmap)
    out.keypoints.square().sum().backward()
    assert torch.isfinite(rv.grad).all() and rv.grad.abs().sum() > 0
    assert torch.isfinite(shape.grad).all() and shape.grad.abs().sum() > 0


def test_bad_shapes_raise_clear_errors(anny_body):
    with pytest.raises(ValueError, match=r"rotations must have shape \(B, 52, 3, 3\)"):
        anny_body(torch.eye(3).expand(1, 24, 3, 3))
    with pytest.raises(ValueError, match=r"shape must have shape \(B, 6\)"):
        anny_body(anny_body.identity_pose(1), torch.zeros(1, 10))
    with pytest.raises(ValueError, match="translation"):
        anny_body(anny_body.identity_pose(1), None, torch.zeros(1, 2))


def test_hand_model_matches_the_body_hand():
    body = AnnyModel(anny_data())
    for side in ("left", "right"):
        hand = load_anny_hand(side)
        assert hand.num_joints == 16 and hand.skeleton.parents[0] == -1
        rot = random_pose(body, 1, seed=7)
        out = body(rot, keypoints=anny_keypoint_map(body, HAND21, side=side))
        wrist = body.skeleton.index(f"{side}_wrist")
        hand_rot = torch.stack([rot[0, body.skeleton.index(n)] for n in hand.skeleton.names])[None]
        hand_rot[:, 0] = out.transforms[:, wrist, :3, :3]
        rest_wrist = hand.rest_joints(hand.blend_coefficients(hand.default_shape(1)))[:, 0]
        trans = out.joints[:, wrist] - rest_wrist
        hand_out = hand(hand_rot, None, trans, keypoints=anny_keypoint_map(hand, HAND21, side=side))
        torch.testing.assert_close(hand_out.keypoints, out.keypoints, atol=1e-5, rtol=0)
        # vertices carried by the hand joints alone sit at the same place in both models
        diff = (hand_out.vertices[0] - out.vertices[0, hand.mesh_vertex_ids]).norm(dim=1)
        hand_joint_ids = [body.skeleton.index(n) for n in hand.skeleton.names]
        hand_only = body.skin_weights[hand.mesh_vertex_ids][:, hand_joint_ids].sum(1) > 0.999
        assert hand_only.sum() > 1000 and diff[hand_only].max() < 1e-5


def test_chains_cover_the_core_skeleton_once(anny_body):
    names = [n for chain in KINEMATIC_CHAINS.values() for n in chain]
    assert sorted(names) == sorted(anny_body.skeleton.names[:NUM_BODY_CORE])
    for chain in KINEMATIC_CHAINS.values():
        for parent, child in zip(chain, chain[1:]):
            assert anny_body.skeleton.parents[anny_body.skeleton.index(child)] == anny_body.skeleton.index(parent)


@pytest.mark.parametrize("loss", LIMB_LOSSES, ids=lambda l: l.name)
def test_amputation_collapses_subtree_onto_its_joint(anny_body, loss):
    rot = random_pose(anny_body, 1, scale=0.3, seed=11)
    scales = collapse_scales(anny_body.skeleton, [loss])
    whole = anny_body(rot)
    cut = anny_body(rot, scales=scales)
    root = anny_body.skeleton.index(loss.joint)
    subtree = anny_body.skeleton.subtree(root)
    mass = anny_body.skin_weights[:, subtree].sum(1)
    inside, outside = mass > 0.999, mass < 1e-6
    joint_pos = whole.joints[0, root]
    assert inside.sum() > 10
    assert (cut.vertices[0, inside] - joint_pos).norm(dim=1).max() < 1e-5
    torch.testing.assert_close(cut.vertices[0, outside], whole.vertices[0, outside])
    assert set(absent_joints(anny_body.skeleton, [loss])) == {anny_body.skeleton.names[j] for j in subtree if j != root}


def test_amputation_keeps_gradients_finite(anny_body):
    rv = (torch.randn(1, anny_body.num_joints, 3) * 0.2).requires_grad_()
    scales = collapse_scales(anny_body.skeleton, [limb_loss("left_forearm"), limb_loss("right_leg")])
    out = anny_body(roma.rotvec_to_rotmat(rv), scales=scales)
    out.vertices.sum().backward()
    assert torch.isfinite(rv.grad).all()
    with pytest.raises(ValueError, match="unknown limb type"):
        limb_loss("left_wing")


def test_phenotype_coefficients_match_anny(anny_body):
    from anny.models.phenotype import make_phenotype_anchors, phenotype_blendshape_weights

    data = anny_data()
    g = torch.Generator().manual_seed(3)
    values = torch.cat([torch.rand(6, 6, generator=g), torch.tensor([[0.0] * 6, [1.0] * 6, [0.5] * 6, [1 / 3, 2 / 3, 0.25, 0.75, 0.5, 0.5]])])
    values = values.double().requires_grad_()
    ours = anny_body.phenotypes(values)
    anchors = make_phenotype_anchors(torch.float64)
    theirs = phenotype_blendshape_weights(values, list(anny_body.shape_names), anchors, data.phenotype_mask.double(), False)
    theirs = theirs @ data.phenotype_projection.double()
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)  # the blendshape basis is float32
    direction = torch.randn_like(ours)
    (g_ours,) = torch.autograd.grad((ours * direction).sum(), values)
    (g_theirs,) = torch.autograd.grad((theirs * direction).sum(), values)
    torch.testing.assert_close(g_ours, g_theirs, atol=1e-5, rtol=1e-5)


def test_shape_blend_is_reused_only_inside_the_fit_context(anny_body):
    shape = anny_body.default_shape(2)
    shape[1, 0] = 0.2
    first = anny_body.shape_blend(shape)
    assert anny_body.shape_blend(shape.clone())[0] is not first[0]  # outside: computed anew
    with anny_body.reusing_shape_blend():
        inside = anny_body.shape_blend(shape)
        again = anny_body.shape_blend(shape.clone())  # equal values, another tensor
        assert again[0] is inside[0] and again[1] is inside[1]
        moved = shape.clone()
        moved[0, 1] += 0.1
        assert not torch.equal(anny_body.shape_blend(moved)[1], inside[1])
    assert torch.equal(inside[0], first[0]) and torch.equal(inside[1], first[1])
    assert anny_body.shape_blend(shape)[0] is not inside[0]  # forgotten on leaving
