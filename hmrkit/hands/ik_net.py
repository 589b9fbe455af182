"""The biomechanically feasible IK net (Fan & Wang 2023, sec. 3.3) and :class:`HandIK`.

Input: the 20 bones of the 21 hand joints in a wrist-centred canonical hand frame
(:func:`~hmrkit.hands.hand_model.canonical_frame`), as unit directions (60 numbers) and
lengths (20, in decimetres), so the global rotation is factored out. Three fully connected
layers with batch norm and ReLU feed two heads: 6 phenotypes (sigmoid) and 23 angles (a
sigmoid per angle onto its limits, so every output is feasible). The global rotation and
wrist translation are then solved in closed form by fitting the model's palm (wrist + four
MCPs, rigid in Anny) to the input's.

One net serves both sides: a right hand is mirrored (x -> -x) into a left hand first.
Weights are ``safetensors`` only (``hmrkit/weights/hand_ik.safetensors``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from hmrkit.errors import ModelAssetError
from hmrkit.io.integrity import save_file  # safetensors + content digest
from hmrkit.weights_file import read_weights
from hmrkit.hands.biomech import ANGLE_NAMES, NUM_ANGLES, squash
from hmrkit.hands.hand_model import (
    BiomechHand,
    HandFit,
    canonical_frame,
    check_joints21,
    check_side,
    load_biomech_hand,
    mirror_points,
)
from hmrkit.hands.post_opt import PostOptConfig, check_known_shape, fit_hand
from hmrkit.paths import weights_dir

PARENTS21 = (0, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)
NUM_FEATURES = 80
FORMAT = "hmrkit.hand_ik"
FORMAT_VERSION = "1"
WEIGHTS_NAME = "hand_ik.safetensors"


def ik_features(joints: torch.Tensor) -> torch.Tensor:
    """(B, 21, 3) LEFT-hand joints -> (B, 80): bone directions and lengths (dm) in the hand frame."""
    frame = canonical_frame(joints)
    local = (joints - joints[:, :1]) @ frame
    bones = local[:, 1:] - local[:, list(PARENTS21[1:])]
    length = bones.norm(dim=-1, keepdim=True)
    directions = bones / length.clamp_min(1e-6)
    return torch.cat([directions.flatten(1), 10.0 * length[..., 0]], dim=1)


class IKNet(torch.nn.Module):
    """3 x (Linear, BatchNorm, ReLU), then a shape head and an angle head."""

    def __init__(self, hidden: int = 512, num_shape: int = 6):
        super().__init__()
        layers: list[torch.nn.Module] = []
        width = NUM_FEATURES
        for _ in range(3):
            layers += [torch.nn.Linear(width, hidden), torch.nn.BatchNorm1d(hidden), torch.nn.ReLU()]
            width = hidden
        self.body = torch.nn.Sequential(*layers)
        self.shape_head = torch.nn.Linear(hidden, num_shape)
        self.angle_head = torch.nn.Linear(hidden, NUM_ANGLES)
        # the limits the net was trained for (checked against the current parameterization on load)
        self.register_buffer("lower", torch.zeros(NUM_ANGLES))
        self.register_buffer("upper", torch.zeros(NUM_ANGLES))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 80) -> angles (B, 23) inside the limits, phenotypes (B, 6) in (0, 1)."""
        h = self.body(features)
        return squash(self.angle_head(h), self.lower, self.upper), torch.sigmoid(self.shape_head(h))


def save_ik_net(net: IKNet, path: str | Path, extra: dict[str, str] | None = None) -> Path:
    path = Path(path)
    metadata = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "hidden": str(net.shape_head.in_features),
        "num_shape": str(net.shape_head.out_features),
        "angle_names": ",".join(ANGLE_NAMES),
        **(extra or {}),
    }
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata=metadata)
    return path


def load_ik_net(path: str | Path | None = None, hand: BiomechHand | None = None) -> IKNet:
    """Load the IK net; :class:`ModelAssetError` with the reason when the file is missing or malformed."""
    path = Path(path) if path is not None else weights_dir() / WEIGHTS_NAME
    state, meta = read_weights(path, "hand IK", FORMAT, "python -m hmrkit.train.hand_ik")
    if meta.get("version") != FORMAT_VERSION:
        raise ModelAssetError(f"{path} is hand IK weights of version {meta.get('version')!r}, this hmrkit reads v{FORMAT_VERSION}")
    if meta.get("angle_names") != ",".join(ANGLE_NAMES):
        raise ModelAssetError(f"{path} was trained for other angle names than this hmrkit's ANGLE_NAMES")
    try:
        net = IKNet(hidden=int(meta["hidden"]), num_shape=int(meta["num_shape"]))
        net.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError) as e:
        raise ModelAssetError(f"hand IK weights in {path} do not fit the IK net: {e}") from None
    if hand is not None:
        for name in ("lower", "upper"):
            ours, theirs = getattr(hand.axes, name), getattr(net, name)
            if not torch.allclose(ours, theirs, atol=1e-4):
                raise ModelAssetError(f"{path} was trained with other joint limits ({name}); retrain the IK net")
    return net.eval()


class HandIK:
    """IK net + biomechanical hand of one side: ``HandIK.load("left").solve(joints21)``."""

    def __init__(self, net: IKNet, hand: BiomechHand):
        self.net = net.eval()
        self.hand = hand
        self.side = hand.side

    @classmethod
    def load(cls, side: str, weights: str | Path | None = None) -> "HandIK":
        hand = load_biomech_hand(check_side(side))
        return cls(load_ik_net(weights, hand), hand)

    def predict(self, joints21: torch.Tensor, known_shape: torch.Tensor | None = None, with_vertices: bool = False) -> HandFit:
        """The IK net alone: angles and shape from the net, placement from the palm."""
        target = check_joints21(joints21)
        left = target if self.side == "left" else mirror_points(target)
        with torch.no_grad():
            angles, shape = self.net(ik_features(left))
            known = check_known_shape(known_shape, target.shape[0], self.hand.num_shape)
            if known is not None:
                shape = known
            rotation, translation = self.hand.place(shape, target)
            out = self.hand(angles, shape, rotation, translation, with_vertices=with_vertices)
        return HandFit(angles, shape, rotation, translation, out.joints, out.vertices)

    def solve(
        self,
        joints21: torch.Tensor,
        refine: bool = True,
        known_shape: torch.Tensor | None = None,
        iterations: int = 20,
        with_vertices: bool = False,
        config: PostOptConfig = PostOptConfig(),
    ) -> HandFit:
        """IK net, then (``refine``) the post-optimization from its answer."""
        fit = self.predict(joints21, known_shape, with_vertices=with_vertices and not refine)
        if not refine:
            return fit
        return fit_hand(joints21, self.side, init=fit, known_shape=known_shape, iterations=iterations,
                        with_vertices=with_vertices, config=config, hand=self.hand)
