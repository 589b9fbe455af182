"""Keypoints of SMPL / SMPL-H / SMPL-X for the fit and the outputs, on synthetic files of the real format."""

from __future__ import annotations

import numpy as np
import pytest
import roma
import torch
from smpl_fixtures import synth_model
from smpl_humanoid import humanoid_smplx

from hmrkit.body.conventions import BODY_OUTPUT, MEDIAPIPE33
from hmrkit.body.smpl_family import SMPL, SMPLH, SMPLX, SMPLX_SKELETON
from hmrkit.body.smpl_keypoints import SURFACE_VERTICES, smpl_keypoint_library, smpl_keypoint_map
from hmrkit.fitting.body_fit import BodyFitConfig, BodyFitter, hinge_axes
from jacobian_check import assert_kernels_match_autograd
from hmrkit.fitting.targets import FIT_KEYPOINTS, FitTargets
from hmrkit.geometry.cameras import PerspectiveCamera, perspective_project

CLASSES = {"smpl": SMPL, "smplh": SMPLH, "smplx": SMPLX}
SMPL_BODY = (
    "pelvis left_hip right_hip spine1 left_knee right_knee spine2 left_ankle right_ankle spine3 left_foot right_foot "
    "neck left_collar right_collar head left_shoulder right_shoulder left_elbow right_elbow left_wrist right_wrist"
).split()


def _model(kind: str, seed: int = 0, arrays=None) -> SMPL:
    arrays = arrays if arrays is not None else synth_model(kind, num_shape_dirs=20, seed=seed).arrays
    return CLASSES[kind](arrays, dtype=torch.float64)


def _pose(model, batch: int, scale: float = 0.4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return roma.rotvec_to_rotmat(torch.randn(batch, model.num_joints, 3, generator=g, dtype=torch.float64) * scale)


@pytest.mark.parametrize("kind", ["smpl", "smplh", "smplx"])
def test_core_joints_come_first_with_smpl_names(kind):
    assert list(CLASSES[kind].skeleton.names[:22]) == SMPL_BODY


@pytest.mark.parametrize("kind", ["smpl", "smplh", "smplx"])
def test_compiled_keypoints_are_the_mesh_keypoints_without_pose_correctives(kind):
    synth = synth_model(kind, num_shape_dirs=20, seed=3)
    model = _model(kind, arrays=synth.arrays)
    flat = _model(kind, arrays={**synth.arrays, "posedirs": np.zeros_like(synth.arrays["posedirs"])})
    raw = smpl_keypoint_map(model, FIT_KEYPOINTS, compiled=False)
    kmap = model.compile_keypoints(raw)
    rotations = _pose(model, 3)
    shape = torch.randn(3, model.num_shape, dtype=torch.float64)
    scales = torch.ones(3, model.num_joints, dtype=torch.float64)
    scales[:, model.skeleton.index("left_elbow")] = 1.2
    scales[1, model.skeleton.index("right_knee")] = 0.0
    # independent: the whole mesh of a copy without pose correctives, read through the raw map
    mesh = flat(rotations, shape, scales=scales)
    reference = raw.to("cpu", torch.float64).from_mesh(mesh.joints, mesh.vertices)
    fast = model(rotations, shape, with_vertices=False, keypoints=kmap, scales=scales).keypoints
    assert torch.allclose(fast, reference, atol=1e-12)
    # the fit's compiled kernels: the same keypoints, and their Jacobian is autograd's
    scaled = [model.skeleton.index(n) for n in ("left_elbow", "left_hip")]
    scales[:, scaled[1]] = 0.9
    assert_kernels_match_autograd(model, kmap, rotations, shape, scales, scaled)


def test_keypoints_with_the_mesh_and_uncompiled_are_exact():
    model = _model("smplx", seed=4)
    raw = smpl_keypoint_map(model, BODY_OUTPUT, compiled=False)
    rotations, shape = _pose(model, 2, seed=1), torch.randn(2, model.num_shape, dtype=torch.float64)
    translation = torch.tensor([[0.1, -0.2, 3.0]], dtype=torch.float64)
    full = model(rotations, shape, translation)
    expected = raw.to("cpu", torch.float64).from_mesh(full.joints, full.vertices)
    assert torch.allclose(model(rotations, shape, translation, keypoints=raw).keypoints, expected, atol=1e-12)
    fast = model(rotations, shape, translation, with_vertices=False, keypoints=raw).keypoints
    assert torch.allclose(fast, expected, atol=1e-12)  # uncompiled: its few vertices skinned with correctives


def test_library_uses_the_published_vertex_ids():
    smpl, smplx = _model("smpl"), _model("smplx")
    for model, column in ((smpl, 0), (smplx, 1)):
        lib = smpl_keypoint_library(model)
        for name, ids in SURFACE_VERTICES.items():
            assert lib[name].vertices == ((ids[column], 1.0),)
        for convention in (MEDIAPIPE33, BODY_OUTPUT, FIT_KEYPOINTS):
            assert all(n in lib for n in convention.names)
    # spot checks typed from the SMPL-X authors' table (vertex_ids.py)
    assert SURFACE_VERTICES["nose"] == (332, 9120)
    assert SURFACE_VERTICES["right_heel"] == (6787, 8635)
    assert SURFACE_VERTICES["left_hand:little_tip"] == (2673, 5286)


def test_plain_smpl_hand_points_lie_on_the_rigid_hand():
    model = _model("smpl", seed=7)
    kmap = smpl_keypoint_map(model, FIT_KEYPOINTS)
    out = model(_pose(model, 1, seed=4), with_vertices=True, keypoints=kmap)
    k = {n: out.keypoints[0, i] for i, n in enumerate(FIT_KEYPOINTS.names)}
    hand = out.joints[0, model.skeleton.index("left_hand")]
    tip = out.vertices[0, SURFACE_VERTICES["left_hand:index_tip"][0]]
    assert torch.allclose(k["left_hand:index_mcp"], hand)
    assert torch.allclose(k["left_hand:index_pip"], hand + (tip - hand) / 3)
    assert torch.allclose(k["left_index"], hand)


def test_hinge_axes_flex_knees_backwards_and_elbows_forwards_in_the_t_pose():
    model = SMPLX(humanoid_smplx(SMPLX_SKELETON.names).arrays)  # the fitter works in float32
    joints, axes = hinge_axes(model)
    rest = model.template_joints
    for j, axis in zip(joints, axes.to(rest)):
        child = model.skeleton.children(j)[0]
        bone = rest[child] - rest[j]
        bent = roma.rotvec_to_rotmat(0.5 * axis) @ bone
        forward = bent[2] - bone[2]
        assert (forward < -0.05) if "knee" in model.skeleton.names[j] else (forward > 0.05)


def test_body_fitter_recovers_a_pose_of_a_person_like_smplx():
    model = SMPLX(humanoid_smplx(SMPLX_SKELETON.names).arrays, num_expression=0)
    kmap = smpl_keypoint_map(model, FIT_KEYPOINTS)
    fitter = BodyFitter(model, kmap, BodyFitConfig(weight_3d=2.0))
    g = torch.Generator().manual_seed(0)
    truth = model.identity_pose(1)
    for name, rotvec in (("left_elbow", (0.0, -1.0, 0.0)), ("right_knee", (0.8, 0.0, 0.0)), ("left_shoulder", (0.0, 0.0, -1.0))):
        truth[0, model.skeleton.index(name)] = roma.rotvec_to_rotmat(torch.tensor(rotvec))
    truth[0, 0] = roma.rotvec_to_rotmat(torch.tensor([torch.pi, 0.0, 0.0]))  # y up -> camera y down
    shape = torch.zeros(1, model.num_shape)
    shape[0, 0] = 1.0
    translation = torch.tensor([[0.0, 0.1, 3.5]])
    points = model(truth, shape, translation, with_vertices=False, keypoints=kmap).keypoints
    camera = PerspectiveCamera(1000.0, 1000.0, 500.0, 500.0)
    xy = perspective_project(points, camera) + torch.randn(points.shape[:2] + (2,), generator=g) * 0.5
    hips = points[:, [MEDIAPIPE33.index("left_hip"), MEDIAPIPE33.index("right_hip")]].mean(1, keepdim=True)
    world = points - hips
    world[:, 33:54] = points[:, 33:54] - points[:, 33:54].mean(1, keepdim=True)
    world[:, 54:] = points[:, 54:] - points[:, 54:].mean(1, keepdim=True)
    ones = torch.ones(1, len(FIT_KEYPOINTS))
    fit = fitter.fit(FitTargets(xy, ones, world, ones, torch.tensor([600.0])), camera)
    assert fit.reprojection_error.item() < 3.0
    centred = fit.keypoints[:, :33] - fit.keypoints[:, [MEDIAPIPE33.index("left_hip"), MEDIAPIPE33.index("right_hip")]].mean(1, keepdim=True)
    assert (centred - world[:, :33]).norm(dim=-1).mean() < 0.06  # hip-centred, within a few cm after 14 LM steps
    assert fit.shape.shape == (1, model.num_shape) and fit.shape.abs().max() <= 3.0
