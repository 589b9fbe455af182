"""BVH reading and the iClone CC_Base files: conventions, the rig's T-pose rest, retargeting, the loader."""

import tarfile

import numpy as np
import pytest
import torch

from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.data.bvh import bvh_forward_kinematics, read_bvh
from hmrkit.data.iclone import (
    ROLE_NAMES,
    bvh_step,
    find_iclone_rest,
    iclone_sequence_files,
    load_iclone_poses,
    read_iclone_motion,
)
from hmrkit.data.retarget import BODY, CORE_BONES, anny_rest_joints, retarget_motion
from conftest import assert_pose_cache_is_read_and_rebuilt, shared_data

BVH = """HIERARCHY
ROOT hips
{
  OFFSET 0 100 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT arm
  {
    OFFSET 10 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 20 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
0 0 0 0 0 0 0 0 0
1 2 3 90 0 0 0 90 0
"""


def test_bvh_conventions(tmp_path):
    (tmp_path / "a.bvh").write_text(BVH)
    motion = read_bvh(tmp_path / "a.bvh")
    assert [j.name for j in motion.joints] == ["hips", "arm", "arm_end"] and motion.skeleton.parents == (-1, 0, 1)
    assert len(motion) == 2 and motion.frame_time == 0.5 and motion.values.shape == (2, 9)
    positions, rotations = bvh_forward_kinematics(motion, 0.01)
    np.testing.assert_allclose(positions[0].numpy(), [[0, 1.0, 0], [0.1, 1.0, 0], [0.1, 1.2, 0]], atol=1e-12)
    # frame 2: position channels add to the offset; the hips turn 90 deg about z (x -> y);
    # the arm's "Z X Y" channels compose as Rz Rx Ry: its end (0, 20, 0) goes Rx(90) -> (0, 0, 20)
    hips = np.array([0.01, 1.02, 0.03])
    np.testing.assert_allclose(positions[1, 1].numpy(), hips + [0.0, 0.1, 0.0], atol=1e-12)
    rz = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(positions[1, 2].numpy(), hips + rz @ [0.1, 0.0, 0.0] + rz @ [0.0, 0.0, 0.2], atol=1e-12)
    assert len(read_bvh(tmp_path / "a.bvh", max_frames=1)) == 1
    (tmp_path / "b.bvh").write_text(BVH.replace("Frames: 2", "Frames: 3"))
    with pytest.raises(ValueError, match="3 frames of 9 channels"):
        read_bvh(tmp_path / "b.bvh")
    (tmp_path / "c.bvh").write_text("HIERARCHY\nROOT x\n{\n")
    with pytest.raises(ValueError, match="not a BVH file"):
        read_bvh(tmp_path / "c.bvh")


@pytest.fixture(scope="module")
def files():
    return iclone_sequence_files(shared_data("cmu_iclone_subset"))


def test_files_rest_and_canonical_axes(files):
    assert len(files) == 61 and {f.action for f in files} >= {"dance", "playground", "swordplay", "walk", "basketball"}
    assert all(read_bvh(f.path, max_frames=1).frame_time == pytest.approx(1 / 60, abs=1e-5) for f in files[::10])
    rest = find_iclone_rest(files)
    p, n = rest.positions, ROLE_NAMES.index
    assert p[n("lfemur"), 0] > 0.05 and p[n("rfemur"), 0] < -0.05  # the subject's left is +x
    assert p[n("ltoes"), 2] > p[n("lfoot"), 2] + 0.05  # toes point +z
    assert p[n("head"), 1] > 0.5 and p[n("lfoot"), 1] < -0.9  # y up
    radial = p[n("lthumb")] - p[n("lhand")]
    assert radial[2] > abs(radial[1])  # palms down: the thumb side is +z, as the twist convention wants
    # the files of subject 7 (takes 3-12) start with this T-pose; it is dropped from their motion
    tpose = next(f for f in files if f.name == "007_03")
    assert len(read_iclone_motion(tpose)) == len(read_bvh(tpose.path)) - 1
    walk = next(f for f in files if f.name == "002_01")  # the rig hung under an extra root node
    assert len(read_iclone_motion(walk)) == len(read_bvh(walk.path))


@pytest.mark.parametrize("name", ["005_01", "007_03"])
def test_walking_geometry(files, name):
    """60 fps walking: a walking speed, heading where the pelvis faces, knees bending forward, the
    feet near the floor, bone lengths constant."""
    motion = read_iclone_motion(next(f for f in files if f.name == name))
    p, g, n = motion.positions, motion.rotations, motion.skeleton.index
    velocity = (p[1:, 0] - p[:-1, 0]) * torch.tensor([1.0, 0.0, 1.0], dtype=p.dtype) * 60
    assert 0.8 < float(velocity.norm(dim=-1).median()) < 2.0  # m/s
    heading = g[1:, 0, :, 2] * torch.tensor([1.0, 0.0, 1.0], dtype=p.dtype)
    assert float(torch.nn.functional.cosine_similarity(heading, velocity, dim=-1).median()) > 0.9
    for s in "lr":
        hip, knee, ankle = p[:, n(f"{s}femur")], p[:, n(f"{s}tibia")], p[:, n(f"{s}foot")]
        assert float((((knee - (hip + ankle) / 2) * g[:, 0, :, 2]).sum(-1)).median()) > 0.0
    feet = [n(f"{s}{b}") for s in "lr" for b in ("foot", "toes", "toes_end")]
    assert -0.05 < float(p[:, feet, 1].min(dim=1).values.median()) < 0.15
    parents = motion.skeleton.parents
    lengths = torch.stack([(p[:, j] - p[:, q]).norm(dim=-1) for j, q in enumerate(parents) if q >= 0], dim=1)
    assert float((lengths - lengths[0]).abs().max()) < 1e-5


@pytest.mark.parametrize("name", ["005_06", "001_08", "002_07"])  # cartwheel, climb and sit, swordplay
def test_retargeting_reproduces_limb_directions(files, anny_body, name):
    model = anny_body.double()
    try:
        rest = model.rest_joints(model.blend_coefficients(model.default_shape(1)))[0]
        motion = read_iclone_motion(next(f for f in files if f.name == name), stride=4)
        core = retarget_motion(motion, rest)
        full = torch.eye(3, dtype=core.dtype).expand(core.shape[0], len(BODY), 3, 3).clone()
        full[:, :NUM_BODY_CORE] = core
        ours = model(full, with_vertices=False).joints
    finally:
        anny_body.float()
    src, n = motion.positions, motion.skeleton.index
    for bone in CORE_BONES:
        if bone.cmu_bone is not None:
            a, b = BODY.index(bone.joint), BODY.index(bone.primary)
            cos = torch.nn.functional.cosine_similarity(ours[:, b] - ours[:, a], src[:, n(bone.cmu_bone[1])] - src[:, n(bone.cmu_bone[0])], dim=-1)
            assert float(cos.min()) > np.cos(np.radians(0.01)), bone.joint
    cos = torch.nn.functional.cosine_similarity(ours[:, BODY.index("neck")] - ours[:, 0], src[:, n("lowerneck")] - src[:, 0], dim=-1)
    assert float(cos.min()) > np.cos(np.radians(25))


def test_loader_on_a_small_archive(files, tmp_path, monkeypatch):
    """Two files (one starting with the T-pose, one on the other root layout) packed like the real set."""
    anny_rest_joints()  # built before the cache folder moves (the Anny snapshot lives there too)
    chosen = [f for f in files if f.name in ("002_01", "007_03")]
    folder = tmp_path / "cmu_iclone_subset"
    folder.mkdir()
    with tarfile.open(folder / "iclone_cmu_subset.tar.xz", "w:xz", preset=0) as tar:
        tar.add(next(chosen[0].path.parents[3].rglob("*.csv")), arcname="./CMU data.csv")
        for f in chosen:
            tar.add(f.path, arcname=f"./All_BVH/subjects/{f.name[:3]}/{f.name}.bvh")
    monkeypatch.setenv("HMRKIT_CACHE_DIR", str(tmp_path / "cache"))
    poses = load_iclone_poses(stride=4, root=folder)
    assert bvh_step(4) == 2 and bvh_step(1) == 1 and bvh_step(3) == 2
    lengths = [len(read_bvh(f.path)) - (f.name == "007_03") for f in chosen]
    assert len(poses) == sum((n + 1) // 2 for n in lengths)  # every 2nd 60 fps frame = 30 fps, like CMU at stride 4
    assert poses.sequence_names == ("002_01", "007_03") and set(poses.actions.tolist()) == {"walk"}
    np.testing.assert_array_equal(poses.frames[:3], [0, 2, 4])
    assert poses.rotations.dtype == np.float32 and poses.rotations.shape[1:] == (22, 3, 3)
    assert 0.9 < float(np.median(poses.root_positions[:, 1])) < 1.2
    assert_pose_cache_is_read_and_rebuilt(tmp_path / "cache" / "iclone", lambda: load_iclone_poses(stride=4, root=folder), poses)
    with pytest.raises(ValueError, match="stride"):
        load_iclone_poses(stride=0, root=folder)
