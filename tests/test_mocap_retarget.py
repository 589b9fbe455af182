"""Retargeting onto hmrkit's core joints: the direction solver, CMU -> Anny, the cached loader."""

import numpy as np
import pytest
import roma
import torch

from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.data.cmu import CMU_SKELETON, cmu_forward_kinematics, cmu_sequence_files, read_cmu_values
from hmrkit.data.retarget import (
    BODY,
    CORE_BONES,
    CORE_NAMES,
    load_cmu_poses,
    mirror_core_rotations,
    retarget_cmu,
    rotations_from_positions,
)
from conftest import assert_pose_cache_is_read_and_rebuilt, shared_data


@pytest.fixture(scope="module")
def body64(anny_body):
    model = anny_body.double()
    yield model
    anny_body.float()


@pytest.fixture(scope="module")
def rest(body64):
    return body64.rest_joints(body64.blend_coefficients(body64.default_shape(1)))[0]


def pose_full(body, core: torch.Tensor) -> torch.Tensor:
    full = torch.eye(3, dtype=core.dtype).expand(core.shape[0], len(BODY), 3, 3).clone()
    full[:, :NUM_BODY_CORE] = core
    return body(full, with_vertices=False)


def test_round_trip_on_our_own_skeleton(body64, rest):
    """Poses -> our FK -> joint positions -> direction solver -> rotations -> our FK: same joints."""
    g = torch.Generator().manual_seed(3)
    rotations = roma.rotvec_to_rotmat(torch.randn(200, len(BODY), 3, generator=g, dtype=torch.float64) * 0.6)
    rotations[:, NUM_BODY_CORE:] = torch.eye(3, dtype=torch.float64)
    posed = body64(rotations, with_vertices=False)
    solved = rotations_from_positions(posed.joints[:, :NUM_BODY_CORE], rest)
    again = pose_full(body64, solved)
    error = (again.joints[:, :NUM_BODY_CORE] - posed.joints[:, :NUM_BODY_CORE]).norm(dim=-1)
    assert float(error.max()) < 1e-3  # metres: 1 mm (measured: ~1e-12)
    # joints with two directions in their own rigid frame get their exact world rotation back
    for name in ("pelvis", "spine3"):
        j = BODY.index(name)
        angle = roma.rotmat_geodesic_distance(again.transforms[:, j, :3, :3], posed.transforms[:, j, :3, :3])
        assert float(angle.max()) < 1e-6
    # rotations are proper
    det = torch.linalg.det(solved)
    assert torch.allclose(det, torch.ones_like(det), atol=1e-9)


@pytest.fixture(scope="module")
def cmu_running():
    root = shared_data("cmu_mocap")
    f = cmu_sequence_files("test", ["running"], root=root)[0]
    return cmu_forward_kinematics(torch.from_numpy(read_cmu_values(f.path)))


def test_cmu_limbs_point_along_cmu_bones(body64, rest, cmu_running):
    ours = pose_full(body64, retarget_cmu(cmu_running, rest)).joints
    cmu = cmu_running.positions
    checked = 0
    for bone in CORE_BONES:
        if bone.cmu_bone is None:
            continue
        a, b = BODY.index(bone.joint), BODY.index(bone.primary)
        ca, cb = (CMU_SKELETON.index(n) for n in bone.cmu_bone)
        cos = torch.nn.functional.cosine_similarity(ours[:, b] - ours[:, a], cmu[:, cb] - cmu[:, ca], dim=-1)
        assert float(cos.min()) > np.cos(np.radians(0.01)), bone.joint
        checked += 1
    assert checked == 10  # hips, knees, shoulders, elbows, wrists
    # the torso follows CMU's: pelvis->neck within 20 degrees of CMU's root->neck base
    cos = torch.nn.functional.cosine_similarity(
        ours[:, BODY.index("neck")] - ours[:, 0], cmu[:, CMU_SKELETON.index("lowerneck")] - cmu[:, 0], dim=-1
    )
    assert float(cos.min()) > np.cos(np.radians(20))


def test_cmu_rest_pose_is_upright_t_pose(rest):
    """CMU's calibration pose (all zero) -> torso at rest, feet flat, arms horizontal."""
    local = retarget_cmu(cmu_forward_kinematics(torch.zeros(1, 117, dtype=torch.float64)), rest)[0]
    for name in ("pelvis", "spine1", "spine2", "spine3", "neck", "head", "left_collar"):
        torch.testing.assert_close(local[CORE_NAMES.index(name)], torch.eye(3, dtype=local.dtype), atol=1e-9, rtol=0)
    world = []
    for j, p in enumerate(BODY.parents[:NUM_BODY_CORE]):
        world.append(local[j] if p < 0 else world[p] @ local[j])
    for name in ("left_ankle", "right_foot"):  # the legs stand apart in CMU's rest; the feet stay flat
        torch.testing.assert_close(world[CORE_NAMES.index(name)], torch.eye(3, dtype=local.dtype), atol=1e-9, rtol=0)
    # the A-pose arm is lifted about z (towards +y for the left arm) to horizontal
    rotvec = roma.rotmat_to_rotvec(local[CORE_NAMES.index("left_shoulder")])
    assert rotvec[2] > np.radians(30)


def test_mirror_is_an_involution_and_mirrors_joints(body64):
    g = torch.Generator().manual_seed(0)
    core = roma.rotvec_to_rotmat(torch.randn(4, NUM_BODY_CORE, 3, generator=g, dtype=torch.float64) * 0.5)
    torch.testing.assert_close(mirror_core_rotations(mirror_core_rotations(core)), core)
    joints = pose_full(body64, core).joints[:, :NUM_BODY_CORE]
    mirrored = pose_full(body64, mirror_core_rotations(core)).joints[:, :NUM_BODY_CORE]
    swap = [CORE_NAMES.index(n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")) for n in CORE_NAMES]
    expected = joints[:, swap] * torch.tensor([-1.0, 1.0, 1.0], dtype=joints.dtype)
    assert float((mirrored - expected).norm(dim=-1).max()) < 1e-6


def test_loader_caches(tmp_path, monkeypatch):
    root = shared_data("cmu_mocap")
    monkeypatch.setenv("HMRKIT_CACHE_DIR", str(tmp_path))
    poses = load_cmu_poses("test", stride=8, actions=["running"], root=root)
    n_frames = len(read_cmu_values(cmu_sequence_files("test", ["running"], root=root)[0].path))
    assert len(poses) == (n_frames + 7) // 8
    assert poses.rotations.dtype == np.float32 and poses.rotations.shape[1:] == (22, 3, 3)
    assert set(poses.actions.tolist()) == {"running"} and poses.sequence_names == ("running_1",)
    np.testing.assert_array_equal(poses.frames[:3], [0, 8, 16])
    assert_pose_cache_is_read_and_rebuilt(tmp_path / "cmu_mocap", lambda: load_cmu_poses("test", stride=8, actions=["running"], root=root), poses)
    with pytest.raises(ValueError, match="stride"):
        load_cmu_poses("test", stride=0, root=root)
