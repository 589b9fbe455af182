"""lsp14's hips: a convention's own joint definition, the hip joint plus an offset fixed to the
pelvis (LSP_HIP_COORDS)."""

from __future__ import annotations

import pytest
import roma
import torch

from hmrkit.body.anny_keypoints import LSP_HIP_COORDS, anny_keypoint_map, pelvis_frame
from hmrkit.body.conventions import COCO17, LSP14


def _frame_coords(model, out, side: str) -> torch.Tensor:
    """The hip keypoint in the pelvis frame, written here from the posed joints (independently of
    the keypoint map): origin the hip joint, outwards / up / forwards, in hip-joint distances."""
    j = {n: out.joints[:, model.skeleton.index(n)] for n in ("pelvis", "left_hip", "right_hip", "spine1")}
    across = j["left_hip"] - j["right_hip"]
    unit = across.norm(dim=-1, keepdim=True)
    left = across / unit
    up = j["spine1"] - j["pelvis"]
    up = up - (up * left).sum(-1, keepdim=True) * left
    up = up / up.norm(dim=-1, keepdim=True)
    forward = torch.linalg.cross(left, up, dim=-1)
    p = out.keypoints[:, LSP14.index(f"{side}_hip")] - j[f"{side}_hip"]
    outwards = left if side == "left" else -left
    return torch.stack([(p * outwards).sum(-1), (p * up).sum(-1), (p * forward).sum(-1)], -1) / unit


def test_lsp_hips_are_the_hip_joint_plus_an_offset_turning_with_the_pelvis(anny_body):
    g = torch.Generator().manual_seed(0)
    batch = 16
    rotations = roma.rotvec_to_rotmat(torch.randn(batch, anny_body.num_joints, 3, generator=g) * 0.5)
    shape = torch.rand(batch, anny_body.num_shape, generator=g)
    translation = torch.randn(batch, 3, generator=g)
    kmap = anny_keypoint_map(anny_body, LSP14)
    with torch.no_grad():
        out = anny_body(rotations, shape, translation, with_vertices=False, keypoints=kmap)
        mesh = anny_body(rotations, shape, translation, with_vertices=True, keypoints=kmap)
        neutral = anny_body(anny_body.identity_pose(1), anny_body.default_shape(1), keypoints=kmap, with_vertices=False)
    pelvis = out.transforms[:, anny_body.skeleton.index("pelvis"), :3, :3]
    offsets = []
    for side in ("left", "right"):
        k, hip = LSP14.index(f"{side}_hip"), anny_body.skeleton.index(f"{side}_hip")
        # the calibrated point on the neutral body, in the pelvis frame written here
        assert torch.allclose(_frame_coords(anny_body, neutral, side)[0], torch.tensor(LSP_HIP_COORDS), atol=1e-4)
        # any pose and shape: the same offset from the hip joint in the pelvis' axes
        local = (pelvis.transpose(1, 2) @ (out.keypoints[:, k] - out.joints[:, hip])[..., None])[..., 0]
        assert torch.allclose(local, local[:1].expand_as(local), atol=1e-5)
        assert 0.01 < float(local[0].norm()) < 0.05  # a couple of centimetres
        offsets.append(local[0])
        # the keypoints-only forward and the full mesh agree
        assert torch.allclose(out.keypoints[:, k], mesh.keypoints[:, k], atol=1e-5)
    assert torch.allclose(offsets[0] * torch.tensor([-1.0, 1.0, 1.0]), offsets[1], atol=1e-6)  # mirrored


def test_a_joint_offset_needs_the_world_rotations(anny_body):
    kmap = anny_keypoint_map(anny_body, LSP14)
    joints = torch.zeros(1, anny_body.num_joints, 3)
    with pytest.raises(ValueError, match="world rotations"):
        kmap.apply(joints, torch.zeros(1, kmap.vertex_ids.numel(), 3))


def test_other_conventions_keep_the_shared_hip_definition(anny_body):
    lsp = anny_keypoint_map(anny_body, LSP14)
    coco = anny_keypoint_map(anny_body, COCO17)
    for name in ("left_shoulder", "right_knee"):  # no lsp14 entry: the shared definition
        assert torch.equal(lsp.joint_weights[LSP14.index(name)], coco.joint_weights[COCO17.index(name)])
    assert not torch.equal(lsp.joint_weights[LSP14.index("left_hip")], coco.joint_weights[COCO17.index("left_hip")])
    assert "lsp14" not in coco.notes.get("left_hip", "") and "calibrated" in lsp.notes["left_hip"]


def test_pelvis_frame_axes_are_orthonormal_and_mirror(anny_body):
    joints = anny_body(anny_body.identity_pose(1), anny_body.default_shape(1), with_vertices=False).joints[0]
    for side in ("left", "right"):
        origin, axes, unit = pelvis_frame(joints, anny_body.skeleton, side)
        assert torch.allclose(axes @ axes.T, torch.eye(3), atol=1e-5)
        assert torch.allclose(origin, joints[anny_body.skeleton.index(f"{side}_hip")])
    left_axes = pelvis_frame(joints, anny_body.skeleton, "left")[1]
    right_axes = pelvis_frame(joints, anny_body.skeleton, "right")[1]
    assert torch.allclose(left_axes[0], -right_axes[0]) and torch.allclose(left_axes[1:], right_axes[1:])
