"""Synthetic whole-body samples for HMR-Adapter: mocap bodies with feasible hands, seen as MediaPipe sees them.

Each sample is a :mod:`hmrkit.data.synth_keypoints` body (a CMU pose on a random Anny body, a
random camera, MediaPipe-like noisy body landmarks; train and held-out split by CMU sequence)
with two feasible hands (:func:`hmrkit.hands.synth.random_angles`) on its wrists. The hand's
pose is exactly what the whole Anny body would carry: its global orientation is the body's wrist
rotation in the camera frame, and the hand21 points are the Anny hand posed by the angles with
that orientation and the body's phenotypes (the same points as the body's own hand keypoints:
tested against a whole-body forward). The body landmarks are made with the fingers at rest.

The hand landmarks imitate MediaPipe Hands' world output: wrist-relative, camera axes,
:func:`hmrkit.hands.synth.landmark_noise` plus a small error of the whole hand's orientation,
and per hand one of these conditions (:data:`CONDITIONS`):

- ``clean``: the noise alone;
- ``occluded``: one to three fingers hidden; their points (beyond the MCP) are missing or, as
  MediaPipe does, guessed (reported with large errors);
- ``truncated``: the hand cut by an image edge: the points beyond a random line across the hand
  are missing (never the wrist);
- ``unreliable``: three times the noise and a low hand score;
- ``missing``: no hand found (every landmark missing, confidence 0).

Everything is in the left-hand convention per hand (a right hand mirrored x -> -x), what
:class:`hmrkit.models.hmr_adapter.HandInputs` holds; index 0 of the side axis is the left hand.
Vectorised over the batch; deterministic for a given ``torch.Generator`` seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import roma
import torch

from hmrkit.body.anny_model import AnnyModel
from hmrkit.data.synth_keypoints import SynthBatch, SynthConfig, SynthKeypoints
from hmrkit.hands.biomech import HAND21_CHAIN
from hmrkit.hands.hand_model import BiomechHand, load_biomech_hand, mirror_rotation
from hmrkit.hands.synth import SynthConfig as HandNoiseConfig
from hmrkit.hands.synth import landmark_noise, random_angles
from hmrkit.models.hmr_adapter import HandInputs, arm_chains, global_rotations
from hmrkit.data.retarget import CORE_NAMES

CONDITIONS = ("clean", "occluded", "truncated", "unreliable", "missing")
WRISTS = [CORE_NAMES.index(f"{side}_wrist") for side in ("left", "right")]
_FINGER_POINTS = torch.tensor([list(chain[1:]) for chain in HAND21_CHAIN.values()])  # (5, 3) beyond each MCP / CMC


@dataclass(frozen=True)
class WholeBodyConfig:
    body: SynthConfig = field(default_factory=SynthConfig)
    hand_noise: HandNoiseConfig = field(default_factory=lambda: HandNoiseConfig(clean_share=0.0))
    orientation_noise_deg: float = 6.0  # std of the error of the hand landmarks' overall orientation
    # chances of the conditions after "clean" (CONDITIONS[1:]); clean takes the rest
    condition_probs: tuple[float, float, float, float] = (0.25, 0.1, 0.1, 0.1)
    guess_share: float = 0.5  # occluded fingers reported as guesses (else missing)
    guess_noise_mm: float = 20.0
    unreliable_factor: float = 3.0
    score: tuple[float, float] = (0.7, 1.0)  # MediaPipe's hand score of a found hand
    unreliable_score: tuple[float, float] = (0.3, 0.6)


@dataclass
class WholeBodyBatch:
    body: SynthBatch  # the body sample: noisy body landmarks and its truth
    angles: torch.Tensor  # (B, 2, 23) true hand angles (left, right)
    hand_rotation: torch.Tensor  # (B, 2, 3, 3) true global hand orientation, camera frame, left convention
    hand_joints: torch.Tensor  # (B, 2, 21, 3) true hand21 points, wrist-relative, left convention
    hands: HandInputs  # flattened (2B rows: sample-major, left then right); arm = the TRUE arm chain
    condition: torch.Tensor  # (B, 2) index into CONDITIONS

    @property
    def batch(self) -> int:
        return self.angles.shape[0]


def _uniform(shape: tuple[int, ...], bounds: tuple[float, float], g: torch.Generator | None) -> torch.Tensor:
    return bounds[0] + (bounds[1] - bounds[0]) * torch.rand(shape, generator=g)


class WholeBodySynth:
    """Draws :class:`WholeBodyBatch` es from one CMU split (``"train"`` or the held-out ``"test"``)."""

    def __init__(self, model: AnnyModel, split: str = "train", stride: int = 4, config: WholeBodyConfig = WholeBodyConfig(),
                 poses: torch.Tensor | None = None):
        self.config = config
        self.bodies = SynthKeypoints(model, split, stride, config.body, poses)
        self.hand: BiomechHand = load_biomech_hand("left")

    @torch.no_grad()
    def sample(self, batch: int, generator: torch.Generator | None = None) -> WholeBodyBatch:
        cfg, g = self.config, generator
        body = self.bodies.sample(batch, g)
        n = 2 * batch
        wrists = global_rotations(body.rotations)[:, WRISTS]  # (B, 2, 3, 3)
        rotation = torch.stack([wrists[:, 0], mirror_rotation(wrists[:, 1])], dim=1)
        angles = random_angles(n, self.hand.axes, generator=g)
        shape = body.shape.repeat_interleave(2, dim=0)
        joints = self.hand(angles, shape, rotation.reshape(n, 3, 3)).joints  # wrist-relative
        hands, condition = self._observe(joints, g)
        hands.arm = arm_chains(body.rotations).reshape(n, 4, 3, 3)
        return WholeBodyBatch(body, angles.reshape(batch, 2, -1), rotation, joints.reshape(batch, 2, 21, 3), hands,
                              condition.reshape(batch, 2))

    def _observe(self, joints: torch.Tensor, g: torch.Generator | None) -> tuple[HandInputs, torch.Tensor]:
        cfg = self.config
        n = joints.shape[0]
        probs = torch.tensor((1.0 - sum(cfg.condition_probs),) + tuple(cfg.condition_probs))
        condition = torch.multinomial(probs, n, replacement=True, generator=g)
        noisy = landmark_noise(joints, cfg.hand_noise, g)
        unreliable = condition == CONDITIONS.index("unreliable")
        noisy = torch.where(unreliable[:, None, None], joints + cfg.unreliable_factor * (noisy - joints), noisy)
        turn = roma.rotvec_to_rotmat(torch.randn(n, 3, generator=g) * math.radians(cfg.orientation_noise_deg))
        noisy = (noisy - noisy[:, :1]) @ turn.transpose(1, 2)  # wrist-relative, slightly turned
        missing = torch.zeros(n, 21, dtype=torch.bool)

        # occluded fingers: 1-3 of the 5, their points beyond the MCP missing or guessed
        occluded = condition == CONDITIONS.index("occluded")
        count = torch.randint(1, 4, (n,), generator=g)
        order = torch.rand(n, 5, generator=g).argsort(dim=1)
        hidden_finger = (order < count[:, None]) & occluded[:, None]  # (n, 5)
        hidden = torch.zeros(n, 21, dtype=torch.bool)
        hidden[:, _FINGER_POINTS.flatten()] = hidden_finger.repeat_interleave(3, dim=1)
        guess = torch.rand(n, generator=g) < cfg.guess_share
        offset = torch.randn(n, 21, 3, generator=g) * cfg.guess_noise_mm / 1000
        noisy = torch.where(hidden[..., None] & guess[:, None, None], noisy + offset, noisy)
        missing |= hidden & ~guess[:, None]

        # truncation: the points beyond a random line across the hand (image plane) are missing
        truncated = condition == CONDITIONS.index("truncated")
        theta = torch.rand(n, generator=g) * 2 * math.pi
        direction = torch.stack([theta.cos(), theta.sin()], dim=-1)
        along = (joints[..., :2] * direction[:, None]).sum(-1)  # wrist at 0
        cut = along.amax(1) * _uniform((n,), (0.2, 0.8), g)
        beyond = (along > cut[:, None]) & truncated[:, None]
        beyond[:, 0] = False
        missing |= beyond

        dropped = condition == CONDITIONS.index("missing")
        missing |= dropped[:, None]
        score = torch.where(unreliable, _uniform((n,), cfg.unreliable_score, g), _uniform((n,), cfg.score, g))
        confidence = torch.where(missing, 0.0, score[:, None].expand(n, 21))
        points = torch.where(missing[..., None], 0.0, noisy)
        return HandInputs(points, confidence, missing, torch.empty(n, 4, 3, 3)), condition
