"""CMU mocap: the skeleton, reading files and forward kinematics against a plain reference."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hmrkit.data.cmu import (
    ASF_UNIT_M,
    CMU_SKELETON,
    cmu_data_dir,
    cmu_forward_kinematics,
    cmu_offsets,
    cmu_sequence_files,
    read_cmu_values,
)
from conftest import shared_data


@pytest.fixture(scope="module")
def walking():
    root = shared_data("cmu_mocap")
    files = cmu_sequence_files("test", ["walking", "running"], root=root)
    return torch.from_numpy(np.concatenate([read_cmu_values(f.path) for f in files]))


def reference_fk(values: np.ndarray) -> np.ndarray:
    """The files' convention as published, for one frame: row vectors, ``p @ R``, a loop."""
    offsets = cmu_offsets(torch.float64).numpy()
    world_r, world_p = [None] * 38, [None] * 38
    for i, p in enumerate(CMU_SKELETON.parents):
        r = Rotation.from_rotvec(values[3 + 3 * i : 6 + 3 * i]).as_matrix()
        if p < 0:
            world_r[i] = r
            world_p[i] = offsets[i] + values[:3] * ASF_UNIT_M
        else:
            world_p[i] = offsets[i] @ world_r[p] + world_p[p]
            world_r[i] = r @ world_r[p]
    return np.stack(world_p)


def test_skeleton_is_the_38_joint_layout():
    assert len(CMU_SKELETON) == 38
    # the layout's published parent array (motion-prediction code), 0-based
    assert CMU_SKELETON.parents == (
        -1, 0, 1, 2, 3, 4, 5, 0, 7, 8, 9, 10, 11, 0, 13, 14, 15, 16, 17, 18,
        15, 20, 21, 22, 23, 24, 25, 23, 27, 15, 29, 30, 31, 32, 33, 34, 32, 36,
    )  # fmt: skip
    # femur + tibia of a standing adult, metres
    leg = cmu_offsets()[[CMU_SKELETON.index("ltibia"), CMU_SKELETON.index("lfoot")]].norm(dim=1).sum()
    assert 0.75 < float(leg) < 0.95


def test_fk_matches_row_vector_reference(walking):
    frames = walking[::97].numpy()
    ours = cmu_forward_kinematics(torch.from_numpy(frames)).positions.numpy()
    for t in range(len(frames)):
        np.testing.assert_allclose(ours[t], reference_fk(frames[t]), atol=1e-9)


def test_bone_lengths_constant_feet_on_floor_plausible_heights(walking):
    motion = cmu_forward_kinematics(walking)
    pos = motion.positions
    parents = CMU_SKELETON.parents
    lengths = torch.stack([(pos[:, j] - pos[:, p]).norm(dim=-1) for j, p in enumerate(parents) if p >= 0], dim=1)
    assert float((lengths - lengths[0]).abs().max()) < 1e-9
    feet = [CMU_SKELETON.index(n) for n in ("lfoot", "ltoes", "ltoes_end", "rfoot", "rtoes", "rtoes_end")]
    lowest = pos[:, feet, 1].min(dim=1).values
    assert -0.05 < float(lowest.median()) < 0.1  # a foot touches the floor (y = 0) in walking/running
    head = pos[:, CMU_SKELETON.index("head_end"), 1]
    assert 1.3 < float(head.median()) < 1.8
    # walking goes where the pelvis faces (checks the root position's axis order)
    heading = motion.rotations[1:, 0, :, 2] * torch.tensor([1.0, 0.0, 1.0], dtype=pos.dtype)
    velocity = (pos[1:, 0] - pos[:-1, 0]) * torch.tensor([1.0, 0.0, 1.0], dtype=pos.dtype)
    cos = torch.nn.functional.cosine_similarity(heading, velocity, dim=-1)
    assert float(cos.median()) > 0.9


def test_knees_bend_forward_and_left_is_plus_x_at_rest(walking):
    motion = cmu_forward_kinematics(walking)
    p, g = motion.positions, motion.rotations
    fwd = g[:, 0, :, 2]
    n = CMU_SKELETON.index
    for s in "lr":
        hip, knee, ankle = p[:, n(f"{s}femur")], p[:, n(f"{s}tibia")], p[:, n(f"{s}foot")]
        knee_ahead = ((knee - (hip + ankle) / 2) * fwd).sum(-1)
        assert float(knee_ahead.median()) > 0.0
    rest = cmu_forward_kinematics(torch.zeros(1, 117, dtype=torch.float64)).positions[0]
    assert rest[n("lhumerus"), 0] > 0.1 and rest[n("rhumerus"), 0] < -0.1
    assert rest[n("ltoes"), 2] > rest[n("lfoot"), 2]  # toes point +z


def test_files_and_errors(tmp_path):
    root = shared_data("cmu_mocap")
    files = cmu_sequence_files("train", ["walking"], root=root)
    assert [f.name for f in files[:2]] == ["walking_1", "walking_2"]
    raw = np.loadtxt(files[0].path, delimiter=",")
    np.testing.assert_array_equal(read_cmu_values(files[0].path), raw[1:])  # calibration line dropped
    with pytest.raises(ValueError, match="split"):
        cmu_sequence_files("val", root=root)
    with pytest.raises(ValueError, match="unknown CMU action"):
        cmu_sequence_files("train", ["swimming"], root=root)
    with pytest.raises(FileNotFoundError, match="CMU mocap folder not found"):
        cmu_data_dir(tmp_path / "nowhere")
    bad = tmp_path / "bad.txt"
    bad.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(ValueError, match="117 values"):
        read_cmu_values(bad)
    with pytest.raises(ValueError, match=r"\(T, 117\)"):
        cmu_forward_kinematics(torch.zeros(3, 116))
