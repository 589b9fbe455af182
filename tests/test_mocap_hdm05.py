"""HDM05: files, the data's geometry after our FK, retargeting onto Anny, the cached loader."""

import numpy as np
import pytest
import torch

from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.data.hdm05 import hdm05_data_dir, hdm05_sequence_files, load_hdm05_poses, read_hdm05_motion
from hmrkit.data.retarget import BODY, CORE_BONES, CORE_NAMES, anny_rest_joints, retarget_motion
from conftest import assert_pose_cache_is_read_and_rebuilt, shared_data

FEET = ("lfoot", "ltoes", "ltoes_end", "rfoot", "rtoes", "rtoes_end")


@pytest.fixture(scope="module")
def root():
    return shared_data("hdm05_subset")


def motions(root, split: str, action: str, stride: int = 1) -> list:
    return [read_hdm05_motion(f, stride) for f in hdm05_sequence_files(split, [action], root=root)]


def test_files_and_errors(root, tmp_path):
    train, test = hdm05_sequence_files("train", root=root), hdm05_sequence_files("test", root=root)
    assert (len(train), len(test)) == (188, 99)
    assert len({f.action for f in train}) == 11 and {f.action for f in test} == {f.action for f in train}
    assert {f.subject for f in train} == {"bd", "bk", "dg"} and {f.subject for f in test} == {"mm", "tr"}
    first = train[0]
    assert first.name == "HDM_bd_depositFloorR_001_120" and first.asf.name == "HDM_bd.asf" and first.asf.exists()
    with pytest.raises(ValueError, match="split"):
        hdm05_sequence_files("val", root=root)
    with pytest.raises(ValueError, match="unknown HDM05 action"):
        hdm05_sequence_files("train", ["swimming"], root=root)
    with pytest.raises(FileNotFoundError, match="hdm05_subset not found"):
        hdm05_data_dir(tmp_path / "nowhere")


def test_standing_starts_feet_on_floor_heights(root):
    """Every test take starts on its feet (y = 0 is the floor); all but the hops (which start
    crouched) start standing, the head top at a person's height."""
    for f in hdm05_sequence_files("test", root=root):
        motion = read_hdm05_motion(f, stride=1000)  # the first frame (and a few more)
        n = motion.skeleton.index
        lowest = float(motion.positions[0, [n(name) for name in FEET], 1].min())
        assert -0.05 < lowest < 0.1, f.name  # the floor is calibrated to a few cm
        if f.action != "hopBothLegs1hops":
            assert 1.4 < float(motion.positions[0, n("head_end"), 1]) < 1.95, f.name


def test_squats_bend_the_knees_forward(root):
    """At the deepest point of each squat (lowest pelvis) the knees lie ahead of the ankles, along the feet."""
    for motion in motions(root, "test", "squat1Reps", stride=2):
        p, n = motion.positions, motion.skeleton.index
        t = int(p[:, 0, 1].argmin())
        assert float(p[t, 0, 1]) < 0.65  # the pelvis went down (~1 m standing)
        for s in "lr":
            toes = p[t, n(f"{s}toes")] - p[t, n(f"{s}foot")]
            toes[1] = 0.0
            knee_ahead = (p[t, n(f"{s}tibia")] - p[t, n(f"{s}foot")]) @ (toes / toes.norm())
            assert float(knee_ahead) > 0.05


def test_lying_down_ends_horizontal(root):
    for split in ("train", "test"):
        for motion in motions(root, split, "lieDownFloor", stride=4):
            p, n = motion.positions, motion.skeleton.index
            torso = p[:, n("lowerneck")] - p[:, 0]
            torso = torso / torso.norm(dim=-1, keepdim=True)
            assert float(torso[0, 1]) > 0.85  # starts upright
            assert abs(float(torso[-1, 1])) < np.sin(np.radians(10))  # ends lying flat
            assert float(p[-1, n("head_end"), 1]) < 0.25


@pytest.fixture(scope="module")
def body64(anny_body):
    model = anny_body.double()
    yield model
    anny_body.float()


@pytest.mark.parametrize("action", ["lieDownFloor", "kickLFront1Reps", "squat1Reps"])
def test_retargeting_reproduces_limb_directions(root, body64, action):
    rest = body64.rest_joints(body64.blend_coefficients(body64.default_shape(1)))[0]
    motion = motions(root, "test", action, stride=3)[0]
    core = retarget_motion(motion, rest)
    full = torch.eye(3, dtype=core.dtype).expand(core.shape[0], len(BODY), 3, 3).clone()
    full[:, :NUM_BODY_CORE] = core
    ours = body64(full, with_vertices=False).joints
    src, n = motion.positions, motion.skeleton.index
    checked = 0
    for bone in CORE_BONES:
        if bone.cmu_bone is None:
            continue
        a, b = BODY.index(bone.joint), BODY.index(bone.primary)
        cos = torch.nn.functional.cosine_similarity(ours[:, b] - ours[:, a], src[:, n(bone.cmu_bone[1])] - src[:, n(bone.cmu_bone[0])], dim=-1)
        assert float(cos.min()) > np.cos(np.radians(0.01)), bone.joint
        checked += 1
    assert checked == 10
    # the torso follows HDM05's: pelvis->neck within 15 degrees of the source's root->neck base
    cos = torch.nn.functional.cosine_similarity(ours[:, BODY.index("neck")] - ours[:, 0], src[:, n("lowerneck")] - src[:, 0], dim=-1)
    assert float(cos.min()) > np.cos(np.radians(15))


def test_rest_pose_retargets_to_upright_torso(root, body64):
    """The ASF rest pose (all dofs zero) -> torso, neck and head at rest, feet flat."""
    f = hdm05_sequence_files("test", ["squat1Reps"], root=root)[0]
    motion = read_hdm05_motion(f)
    still = type(motion)(motion.skeleton, motion.rest[None], torch.eye(3, dtype=torch.float64)[None].expand(1, len(motion.rest), 3, 3), motion.rest)
    local = retarget_motion(still, body64.rest_joints(body64.blend_coefficients(body64.default_shape(1)))[0])[0]
    for name in ("pelvis", "spine1", "spine2", "spine3", "neck", "head", "left_collar"):
        torch.testing.assert_close(local[CORE_NAMES.index(name)], torch.eye(3, dtype=local.dtype), atol=1e-9, rtol=0)


def test_loader_frame_rate_and_cache(root, tmp_path, monkeypatch):
    anny_rest_joints()  # built before the cache folder moves (the Anny snapshot lives there too)
    monkeypatch.setenv("HMRKIT_CACHE_DIR", str(tmp_path))
    files = hdm05_sequence_files("test", ["kickLFront1Reps"], root=root)
    poses = load_hdm05_poses("test", stride=8, actions=["kickLFront1Reps"], root=root)
    lengths = [len(read_hdm05_motion(f)) for f in files]
    assert len(poses) == sum((n + 7) // 8 for n in lengths)
    assert poses.rotations.dtype == np.float32 and poses.rotations.shape[1:] == (22, 3, 3)
    assert set(poses.actions.tolist()) == {"kickLFront1Reps"} and poses.sequence_names == tuple(f.name for f in files)
    np.testing.assert_array_equal(poses.frames[:3], [0, 8, 16])  # 120 fps like the CMU files: stride 8 = 15 fps
    det = np.linalg.det(poses.rotations.astype(np.float64))
    np.testing.assert_allclose(det, 1.0, atol=1e-5)
    assert 0.8 < float(np.median(poses.root_positions[:, 1])) < 1.1
    assert_pose_cache_is_read_and_rebuilt(tmp_path / "hdm05", lambda: load_hdm05_poses("test", stride=8, actions=["kickLFront1Reps"], root=root), poses)
    # another stride is another cache
    assert len(load_hdm05_poses("test", stride=16, actions=["kickLFront1Reps"], root=root)) < len(poses)
    assert len(list((tmp_path / "hdm05").glob("*.npz"))) == 2
    with pytest.raises(ValueError, match="stride"):
        load_hdm05_poses("test", stride=0, root=root)
