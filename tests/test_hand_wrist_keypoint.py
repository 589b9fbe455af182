"""The hand21 wrist keypoint of the Anny hand: a point fixed on the palm (MediaPipe's wrist),
distinct from the wrist JOINT the hand turns about and attaches at."""

from __future__ import annotations

import pytest
import roma
import torch

from hmrkit.body.anny_keypoints import WRIST_PALM_COORDS, anny_keypoint_map
from hmrkit.body.anny_model import load_anny_body
from hmrkit.body.conventions import HAND21
from hmrkit.hands import fit_hand, load_biomech_hand
from hmrkit.hands.hand_model import mirror_points
from hmrkit.hands.synth import random_angles, random_shapes

PALM = ("index1", "middle1", "pinky1", "ring1", "thumb1")


def _palm_coords(hand, out, rotation: torch.Tensor) -> torch.Tensor:
    """The wrist keypoint in the palm frame (written here from the skeleton joints, left-hand axes)."""
    names = hand.model.skeleton.names
    j = {n: out.skeleton_joints[:, names.index(f"{hand.side}_{n}")] for n in ("wrist",) + PALM}
    local = lambda v: (rotation.transpose(1, 2) @ v[..., None])[..., 0]  # noqa: E731  back to the rest orientation
    y = local(j["middle1"] - j["wrist"])
    length = y.norm(dim=-1, keepdim=True)
    y = y / length
    x = local(j["index1"] - j["pinky1"])
    x = x - (x * y).sum(-1, keepdim=True) * y
    x = x / x.norm(dim=-1, keepdim=True)
    z = torch.linalg.cross(x, y) * (1.0 if hand.side == "left" else -1.0)
    p = local(out.joints[:, 0] - j["wrist"])
    return torch.stack([(p * x).sum(-1), (p * y).sum(-1), (p * z).sum(-1)], -1) / length


@pytest.mark.parametrize("side", ["left", "right"])
def test_wrist_keypoint_is_fixed_on_the_palm(side):
    hand = load_biomech_hand(side)
    g = torch.Generator().manual_seed(0)
    angles = random_angles(32, hand.axes, generator=g)
    shape = random_shapes(32, generator=g)
    rotation = roma.rotvec_to_rotmat(torch.randn(32, 3, generator=g))
    translation = torch.randn(32, 3, generator=g)
    with torch.no_grad():
        out = hand(angles, shape, rotation, translation)
        flat = hand(torch.zeros_like(angles), shape, rotation, translation)
    # the hand attaches at the wrist JOINT: translation is its position, whatever the keypoint
    assert torch.allclose(out.skeleton_joints[:, 0], translation, atol=1e-6)
    # finger angles do not move the wrist keypoint (it is rigid on the palm)
    assert torch.allclose(out.joints[:, 0], flat.joints[:, 0], atol=1e-6)
    coords = _palm_coords(hand, out, rotation)
    want = torch.tensor(WRIST_PALM_COORDS)
    neutral = hand(torch.zeros(1, 23), hand.default_shape(1))
    assert torch.allclose(_palm_coords(hand, neutral, torch.eye(3)[None])[0], want, atol=1e-4)
    assert float((coords - want).abs().max()) < 0.02  # other shapes: within 2 % of the palm length
    # it is not the wrist joint: ~1 cm towards the fingers
    assert 0.006 < float((out.joints[:, 0] - translation).norm(dim=-1).min())


def test_right_wrist_keypoint_mirrors_the_left():
    angles = torch.zeros(1, 23)
    left, right = load_biomech_hand("left")(angles), load_biomech_hand("right")(angles)
    assert torch.allclose(right.joints, mirror_points(left.joints), atol=1e-6)


def test_body_and_hand_share_the_wrist_keypoint():
    """The body fit compares the same palm point with MediaPipe's wrist that the hand IK uses."""
    body = load_anny_body()
    with torch.no_grad():
        out = body(body.identity_pose(1), keypoints=anny_keypoint_map(body, HAND21, side="left"))
    hand = load_biomech_hand("left")
    names = body.skeleton.names
    wrist = out.joints[0, names.index("left_wrist")]
    rest = hand(torch.zeros(1, 23), hand.default_shape(1))
    assert torch.allclose(out.keypoints[0, 0] - wrist, rest.joints[0, 0], atol=2e-4)


def test_fit_ignores_a_zero_weight_joint():
    hand = load_biomech_hand("left")
    g = torch.Generator().manual_seed(1)
    angles = random_angles(4, hand.axes, generator=g)
    shape = random_shapes(4, generator=g)
    with torch.no_grad():
        target = hand(angles, shape).joints
    moved = target.clone()
    moved[:, 0] += torch.tensor([0.0, 0.05, 0.0])  # a wrist landmark 5 cm off
    weights = torch.ones(21)
    weights[0] = 0.0
    a = fit_hand(target, "left", iterations=30, joint_weights=weights)
    b = fit_hand(moved, "left", iterations=30, joint_weights=weights)
    assert torch.allclose(a.joints, b.joints, atol=1e-5)
    c = fit_hand(moved, "left", iterations=30)
    assert float((c.joints - b.joints).abs().max()) > 1e-3  # with weight 1 the wrist does pull
    with pytest.raises(ValueError, match="joint_weights"):
        fit_hand(target, "left", iterations=1, joint_weights=torch.zeros(21))
