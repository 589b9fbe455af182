"""The 23-DoF parameterization on a MANO hand loaded from real-format files.

The MANO files are synthesized (no licensed data): MANO's keys, sizes, kintree table and
Python 2 pickle with chumpy objects (``smpl_fixtures``), with a hand-like geometry: 778
vertices of the Anny hand's rest mesh, turned by an arbitrary rotation (so MANO's rest frame is
not Anny's), its skinning weights, and a joint regressor that reproduces Anny's joints. The
right file is the mirror image of the left. Palm sides are taken from chirality here (on a
left hand, little x index points out of the palm), not from hmrkit's recipe.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import roma
import torch

from hmrkit.body.smpl_family import MANO, load_smpl_family
from hmrkit.hands import ANGLE_NAMES, ANGLE_SPECS, angles_to_rotations, load_biomech_hand, rotations_to_angles
from hmrkit.hands.hand_model import BiomechHand, mirror_points
from hmrkit.hands.post_opt import project_pose
from smpl_fixtures import PARENTS, SynthModel, as_official_pickle, dump_pickle

R0 = roma.rotvec_to_rotmat(torch.tensor([0.4, -1.3, 0.7], dtype=torch.float64))  # MANO's rest frame vs Anny's
TIPS = {"thumb": 4, "index": 8, "middle": 12, "ring": 16, "little": 20}


def _hand_like_arrays(seed: int = 3) -> dict[str, np.ndarray]:
    """A left MANO model's arrays with a hand-shaped rest mesh (see the module docstring)."""
    rng = np.random.default_rng(seed)
    anny = load_biomech_hand("left")
    with torch.no_grad():
        rest = anny(torch.zeros(1, 23), with_vertices=True)
    vertices = rest.vertices[0].double()
    weights = anny.model.skin_weights.double()
    tips = anny.keypoint_map.vertex_ids  # keep Anny's fingertip vertices among the 778
    others = np.setdiff1d(np.arange(len(vertices)), tips.numpy())
    ids = np.concatenate([tips.numpy(), rng.choice(others, 778 - len(tips), replace=False)])
    v = (vertices[ids] @ R0.T).numpy()
    joints = (rest.skeleton_joints[0].double() @ R0.T).numpy()
    regressor = np.zeros((16, 778))
    for j, joint in enumerate(joints):  # least-norm affine weights of the 8 nearest vertices: exact joints
        near = np.argsort(np.linalg.norm(v - joint, axis=1))[:8]
        a = np.vstack([v[near].T, np.ones(8)])
        regressor[j, near] = a.T @ np.linalg.solve(a @ a.T, np.append(joint, 1.0))
    return {
        "v_template": v,
        "shapedirs": rng.normal(scale=1e-3, size=(778, 3, 10)),
        "posedirs": np.zeros((778, 3, 135)),  # no pose correctives: the mirrored file is an exact mirror
        "J_regressor": regressor,
        "kintree_table": np.array([[2**32 - 1] + PARENTS["mano"][1:], list(range(16))], dtype=np.int64),
        "weights": weights[ids].numpy(),
        "f": rng.integers(0, 778, size=(1538, 3)).astype(np.uint32),
        "hands_components": rng.normal(scale=0.3, size=(45, 45)),
        "hands_mean": rng.normal(scale=0.2, size=45),
    }


@pytest.fixture(scope="module")
def mano_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mano_user") / "mano"
    folder.mkdir()
    left = _hand_like_arrays()
    flip = np.array([-1.0, 1.0, 1.0])
    right = dict(left, v_template=left["v_template"] * flip, shapedirs=left["shapedirs"] * flip[:, None],
                 f=left["f"][:, ::-1].copy())
    for side, arrays in (("LEFT", left), ("RIGHT", right)):
        dump_pickle(as_official_pickle(SynthModel(arrays, "mano")), folder / f"MANO_{side}.pkl", style="py2")
    return folder.parent


@pytest.fixture(scope="module")
def hands(mano_folder) -> dict[str, BiomechHand]:
    return {side: load_biomech_hand(side, model=load_smpl_family("mano", mano_folder, side=side)) for side in ("left", "right")}


def _random_angles(hand: BiomechHand, n: int, margin: float = 0.05, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lo, hi = hand.axes.lower + margin, hand.axes.upper - margin
    return lo + (hi - lo) * torch.rand(n, 23, generator=g)


def test_loaded_as_mano_with_own_axes(hands):
    left = hands["left"]
    assert isinstance(left.model, MANO) and left.model.side == "left" and not left.is_anny
    assert left.joint_names[0] == "wrist" and left.faces.shape == (1538, 3)
    anny = load_biomech_hand("left")
    # the axes follow MANO's own rest pose (Anny's turned by R0), not Anny's frame
    turned = anny.axes.axes.double() @ R0.T
    assert torch.allclose(left.axes.axes.double()[:16], turned[:16], atol=1e-4)  # fingers: from the joints
    # thumb: from the width of its distal vertices, here a subsample of Anny's
    assert torch.allclose(left.axes.axes.double()[16:], turned[16:], atol=0.15)
    assert not torch.allclose(left.axes.axes, anny.axes.axes, atol=0.3)


@pytest.mark.parametrize("side", ["left", "right"])
def test_names_and_anatomical_limits_are_anny_s(hands, side):
    axes = hands[side].axes
    anatomical_lo = torch.rad2deg(axes.lower + axes.rest_angles)
    anatomical_hi = torch.rad2deg(axes.upper + axes.rest_angles)
    assert torch.allclose(anatomical_lo, torch.tensor([s.lower_deg for s in ANGLE_SPECS]), atol=1e-3)
    assert torch.allclose(anatomical_hi, torch.tensor([s.upper_deg for s in ANGLE_SPECS]), atol=1e-3)
    assert bool((axes.lower < 0).all() & (axes.upper > 0).all())  # the rest pose is feasible
    assert len(ANGLE_NAMES) == 23


@pytest.mark.parametrize("side", ["left", "right"])
def test_zero_angles_are_the_mano_rest_pose(hands, side):
    hand = hands[side]
    mano = hand.model
    with torch.no_grad():
        ref = mano(mano.identity_pose(1), with_vertices=True)
        out = hand(torch.zeros(1, 23), with_vertices=True)
    wrist = ref.joints[:, :1]
    assert torch.allclose(out.skeleton_joints, ref.joints - wrist, atol=1e-6)
    assert torch.allclose(out.vertices, ref.vertices - wrist, atol=1e-6)
    # hand21: the joints, and fingertips that lie beyond the last joint along the finger
    assert torch.allclose(out.joints[0, [0, 5, 9, 17]], (ref.joints - wrist)[0, [0, 1, 4, 7]], atol=1e-6)
    for finger, tip in TIPS.items():
        dip, pre = out.joints[0, tip - 1], out.joints[0, tip - 2]
        assert float((out.joints[0, tip] - dip) @ (dip - pre)) > 0, finger


@pytest.mark.parametrize("side", ["left", "right"])
def test_round_trip_inside_limits(hands, side):
    hand = hands[side]
    angles = _random_angles(hand, 64, seed=1 if side == "left" else 2)
    rotations = angles_to_rotations(angles, hand.axes)
    assert torch.allclose(rotations.transpose(-1, -2) @ rotations, torch.eye(3).expand_as(rotations), atol=1e-5)
    back = rotations_to_angles(rotations, hand.axes)
    assert torch.allclose(back, angles, atol=1e-4)
    assert bool((back >= hand.axes.lower - 1e-6).all() & (back <= hand.axes.upper + 1e-6).all())


def _palmar(joints: torch.Tensor, side: str) -> torch.Tensor:
    """Out of the palm, by chirality: little x index (wrist-relative) on a left hand (seen palm-on with
    the fingers up, a left thumb is on the viewer's left), the opposite on a right one."""
    n = torch.linalg.cross(joints[17] - joints[0], joints[5] - joints[0])
    n = n / n.norm()
    return n if side == "left" else -n


@pytest.mark.parametrize("side", ["left", "right"])
def test_positive_flexion_moves_the_tip_towards_the_palm(hands, side):
    hand = hands[side]
    with torch.no_grad():
        rest = hand(torch.zeros(1, 23)).joints[0]
        palmar = _palmar(rest, side)
        for finger in ("index", "middle", "ring", "little"):
            for joint in ("mcp", "pip", "dip"):
                k = ANGLE_NAMES.index(f"{finger}_{joint}_flexion")
                angles = torch.zeros(1, 23)
                angles[0, k] = 0.6
                moved = hand(angles).joints[0, TIPS[finger]] - rest[TIPS[finger]]
                assert float(moved @ palmar) > 0.005, (finger, joint)  # > 5 mm towards the palm
        # thumb: positive CMC flexion brings the thumb tip across the palm, towards the little finger
        angles = torch.zeros(1, 23)
        angles[0, ANGLE_NAMES.index("thumb_cmc_flexion")] = 0.6
        bent = hand(angles).joints[0]
        assert (bent[4] - rest[17]).norm() < (rest[4] - rest[17]).norm() - 0.005
        # positive MCP abduction turns the index towards the thumb side (radial)
        angles = torch.zeros(1, 23)
        angles[0, ANGLE_NAMES.index("index_mcp_abduction")] = 0.4
        spread = hand(angles).joints[0]
        radial = rest[5] - rest[17]
        assert float((spread[8] - rest[8]) @ radial) > 0


def test_right_is_the_mirrored_left(hands):
    angles = _random_angles(hands["left"], 16, seed=3)
    with torch.no_grad():
        left = hands["left"](angles, with_vertices=True)
        right = hands["right"](angles, with_vertices=True)
    assert torch.allclose(right.joints, mirror_points(left.joints), atol=1e-5)
    assert torch.allclose(right.vertices, mirror_points(left.vertices), atol=1e-5)


def test_projection_45_to_23_on_mano(hands):
    hand = hands["right"]
    angles = _random_angles(hand, 8, margin=0.1, seed=4)
    rotations = angles_to_rotations(angles, hand.axes)
    exact = project_pose(rotations, "right", iterations=0, hand=hand)
    assert torch.allclose(exact, angles, atol=1e-4)
    # off-model twists at every joint: the projection stays feasible and close in position
    g = torch.Generator().manual_seed(5)
    twisted = rotations @ roma.rotvec_to_rotmat(math.radians(4.0) * torch.randn(8, 15, 3, generator=g))
    projected = project_pose(twisted, "right", iterations=10, hand=hand)
    assert bool((projected >= hand.axes.lower - 1e-6).all() & (projected <= hand.axes.upper + 1e-6).all())
    with torch.no_grad():
        eye = torch.eye(3).expand(8, 1, 3, 3)
        target = hand.posed(torch.cat([eye, twisted], 1)).joints
        got = hand(projected).joints
    assert float((got - target).norm(dim=-1).mean()) < 0.004  # < 4 mm mean joint error


def test_model_of_the_other_side_is_refused(mano_folder):
    mano = load_smpl_family("mano", mano_folder, side="left")
    with pytest.raises(ValueError, match="left hand model was given for side 'right'"):
        BiomechHand("right", model=mano)
