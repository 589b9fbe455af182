"""ASF/AMC: parsing, forward kinematics against a plain loop, the rest pose, a hand-made skeleton."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hmrkit.data.asf_amc import (
    AmcMotion,
    asf_forward_kinematics,
    asf_rest_joints,
    asf_skeleton_joints,
    euler_rotation,
    read_amc,
    read_asf,
)
from conftest import shared_data


@pytest.fixture(scope="module")
def hdm05_squat():
    folder = shared_data("hdm05_subset", "train", "10")
    skeleton = read_asf(folder / "HDM_bd.asf")
    return skeleton, read_amc(folder / "HDM_bd_squat1Reps_001_120.amc", skeleton)


def test_reads_the_hdm05_skeleton(hdm05_squat):
    skeleton, motion = hdm05_squat
    assert skeleton.metres_per_unit == pytest.approx(0.0254 / 0.45)  # ":units length 0.45": inches x 0.45
    assert skeleton.degrees and skeleton.root.order == ("TX", "TY", "TZ", "RX", "RY", "RZ")
    assert len(skeleton.bones) == 30
    femur = skeleton.bone("lfemur")
    assert femur.parent == "lhipjoint" and femur.dof == ("rx", "ry", "rz") and femur.axis == (0.0, 0.0, 20.0)
    assert femur.length == pytest.approx(7.34031)
    assert skeleton.bone("lwrist").dof == ("ry",) and skeleton.bone("lhipjoint").dof == ()
    names = [b.name for b in skeleton.bones]
    assert all(names.index(b.parent) < names.index(b.name) for b in skeleton.bones if b.parent != "root")
    assert len(motion) == 140 and motion.frame_numbers[0] == 1
    assert motion.root.shape == (140, 6) and motion.bones["lfoot"].shape == (140, 2)
    joints = asf_skeleton_joints(skeleton)
    assert len(joints) == 31 + 7  # root, 30 bones, the ends of 7 leaf bones
    assert {"ltoes_end", "head_end", "rfingers_end", "lthumb_end"} <= set(joints.names)


def test_zero_pose_is_the_asf_rest_pose(hdm05_squat):
    skeleton, motion = hdm05_squat
    zero = AmcMotion(motion.frame_numbers[:2], np.zeros_like(motion.root[:2]), {k: np.zeros_like(v[:2]) for k, v in motion.bones.items()})
    posed = asf_forward_kinematics(skeleton, zero)
    rest = asf_rest_joints(skeleton)
    torch.testing.assert_close(posed.positions[0], rest, atol=1e-12, rtol=0)
    torch.testing.assert_close(posed.rotations, torch.eye(3, dtype=torch.float64).expand_as(posed.rotations), atol=1e-12, rtol=0)
    joints = asf_skeleton_joints(skeleton)
    for bone in skeleton.bones:  # each bone's end is its direction x length away from its start
        start = rest[joints.index(bone.name)]
        child = next(j for j, p in enumerate(joints.parents) if p == joints.index(bone.name))
        expected = torch.tensor(bone.direction, dtype=torch.float64) * bone.length * skeleton.metres_per_unit
        torch.testing.assert_close(rest[child] - start, expected, atol=1e-12, rtol=0)


def reference_fk(skeleton, motion, t: int) -> dict[str, np.ndarray]:
    """The Acclaim convention as a plain loop with scipy: L = C M C^-1, M from the dofs, x first."""
    world, start, end = {}, {}, {}
    root_r = Rotation.from_euler("xyz", motion.root[t, 3:], degrees=True).as_matrix()  # extrinsic: x first
    world["root"], end["root"] = root_r, motion.root[t, :3] * skeleton.metres_per_unit
    for b in skeleton.bones:
        c = Rotation.from_euler(b.axis_order.lower(), b.axis, degrees=True).as_matrix()
        if b.dof:
            m = Rotation.from_euler("".join(d[1] for d in b.dof), motion.bones[b.name][t], degrees=True).as_matrix()
        else:
            m = np.eye(3)
        world[b.name] = world[b.parent] @ c @ m @ c.T
        start[b.name] = end[b.parent]
        end[b.name] = start[b.name] + world[b.name] @ np.array(b.direction) * b.length * skeleton.metres_per_unit
    return start


def test_fk_matches_a_plain_reference_loop(hdm05_squat):
    skeleton, motion = hdm05_squat
    posed = asf_forward_kinematics(skeleton, motion)
    joints = asf_skeleton_joints(skeleton)
    for t in (0, 57, 139):
        for name, position in reference_fk(skeleton, motion, t).items():
            np.testing.assert_allclose(posed.positions[t, joints.index(name)].numpy(), position, atol=1e-9)


def test_bone_lengths_constant_over_frames(hdm05_squat):
    skeleton, motion = hdm05_squat
    posed = asf_forward_kinematics(skeleton, motion)
    pos, parents = posed.positions, posed.skeleton.parents
    lengths = torch.stack([(pos[:, j] - pos[:, p]).norm(dim=-1) for j, p in enumerate(parents) if p >= 0], dim=1)
    rest = posed.rest
    expected = torch.stack([(rest[j] - rest[p]).norm() for j, p in enumerate(parents) if p >= 0])
    assert float((lengths - expected).abs().max()) < 1e-6


ASF = """# a two-bone arm, hand written
:version 1.10
:name arm
:units
  mass 1.0
  length 1.0
  angle rad
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name upper
     direction 1 0 0
     length 2.0
     axis 0 0 1.5707963267948966 XYZ
     dof rx
     limits (-3.0 3.0)
  end
  begin
     id 2
     name lower
     direction 0 1 0
     length 1.0
     axis 0 0 0 XYZ
     dof rz ry
     limits (-3.0 3.0)
            (-3.0 3.0)
  end
:hierarchy
  begin
    root upper
    upper lower
  end
"""


def test_hand_made_skeleton_axis_and_units(tmp_path):
    (tmp_path / "arm.asf").write_text(ASF)
    amc = ":FULLY-SPECIFIED\n:RADIANS\n1\nroot 0 0 0 0 0 0\nupper 1.5707963267948966\nlower 0 0\n"
    amc += "2\nroot 1 2 3 0 0 0\nupper 0\nlower 1.5707963267948966 0\n"
    (tmp_path / "arm.amc").write_text(amc)
    skeleton = read_asf(tmp_path / "arm.asf")
    assert skeleton.metres_per_unit == pytest.approx(0.0254) and not skeleton.degrees
    motion = read_amc(tmp_path / "arm.amc", skeleton)
    posed = asf_forward_kinematics(skeleton, motion)
    n = posed.skeleton.index
    inch = 0.0254
    # frame 1: the local x axis of "upper" is world y (axis turns it 90 deg about z), so rx turns the
    # bone (along world x) about world y: +x -> -z
    np.testing.assert_allclose(posed.positions[0, n("lower")].numpy(), [0.0, 0.0, -2 * inch], atol=1e-12)
    # frame 2: root translated by (1, 2, 3) units; "lower" turns 90 deg about z: +y -> -x
    np.testing.assert_allclose(posed.positions[1, n("lower_end")].numpy(), [(1 + 2 - 1) * inch, 2 * inch, 3 * inch], atol=1e-12)


def test_euler_rotation_applies_the_first_axis_first():
    angles = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64)
    ours = euler_rotation(angles, "XYZ").numpy()
    np.testing.assert_allclose(ours, Rotation.from_euler("xyz", angles.numpy()).as_matrix(), atol=1e-12)
    ours = euler_rotation(angles[:2], "ZX").numpy()
    np.testing.assert_allclose(ours, Rotation.from_euler("zx", angles[:2].numpy()).as_matrix(), atol=1e-12)


def test_errors(tmp_path, hdm05_squat):
    skeleton, _ = hdm05_squat
    (tmp_path / "bad.asf").write_text(":units\n  length 1\n:bonedata\n")
    with pytest.raises(ValueError, match="not an ASF file"):
        read_asf(tmp_path / "bad.asf")
    (tmp_path / "slide.asf").write_text(ASF.replace("dof rz ry", "dof tx ry"))
    with pytest.raises(ValueError, match="only rotations"):
        read_asf(tmp_path / "slide.asf")
    (tmp_path / "a.amc").write_text("1\nroot 0 0 0 0 0 0\nnosuchbone 1 2 3\n")
    with pytest.raises(ValueError, match="unknown segment 'nosuchbone'"):
        read_amc(tmp_path / "a.amc", skeleton)
    (tmp_path / "b.amc").write_text("1\nroot 0 0 0 0 0\n")
    with pytest.raises(ValueError, match="root has 5 values, expected 6"):
        read_amc(tmp_path / "b.amc", skeleton)
    (tmp_path / "c.amc").write_text("1\nroot 0 0 0 0 0 0\n")
    with pytest.raises(ValueError, match="not one line each"):
        read_amc(tmp_path / "c.amc", skeleton)
