"""Synthetic hands for the IK net: feasible poses, phenotypes, and MediaPipe-like landmark noise.

Poses are drawn inside the joint limits, half independently per angle and half as
"natural" curls (the joints of a finger flex together, DIP about 2/3 of PIP as in Lin et al.
2000's coupling), then ManoRender's finger swap (Fan & Wang 2023, sec. 3.2.3) copies one
finger's pose onto another. The noise imitates MediaPipe Hands' world landmarks: a few mm,
more at the fingertips, about twice as much along the viewing (depth) axis, and now and then a
finger whose depth is mirrored about its MCP (it bends towards instead of away from the camera).
"""

from __future__ import annotations

from dataclasses import dataclass

import roma
import torch

from hmrkit.hands.biomech import ANGLE_NAMES, FINGERS4, HAND21_CHAIN, NUM_ANGLES, BiomechAxes, clamp_angles
from hmrkit.hands.hand_model import BiomechHand

FINGER_ANGLES = {f: [ANGLE_NAMES.index(f"{f}_{n}") for n in ("mcp_flexion", "mcp_abduction", "pip_flexion", "dip_flexion")] for f in FINGERS4}
THUMB_ANGLES = [i for i, n in enumerate(ANGLE_NAMES) if n.startswith("thumb_")]
# per hand21 point: 0 wrist/MCPs/thumb CMC, 1 middle joints, 2 fingertips (noise here; how deep under the skin in synth.hands)
TIER = torch.tensor([0, 0, 1, 1, 2] + [0, 1, 1, 2] * 4)


@dataclass(frozen=True)
class SynthConfig:
    """How synthetic training hands are drawn (defaults used for the shipped weights)."""

    natural_share: float = 0.5  # share of coupled "natural" finger curls (rest: uniform per angle)
    swap_prob: float = 0.5  # chance per hand of one finger-swap (ManoRender augmentation)
    adult_share: float = 0.85  # age phenotype in [0.35, 1] (adults) with this chance, else [0.1, 0.35]
    noise_mm: tuple[float, float, float] = (3.0, 4.0, 6.0)  # std per axis: palm, middle joints, tips
    depth_factor: float = 2.0  # depth noise = this x the in-plane noise
    wrong_depth_prob: float = 0.05  # per finger: depth mirrored about its MCP
    clean_share: float = 0.25  # hands given without noise


def random_angles(n: int, axes: BiomechAxes, config: SynthConfig = SynthConfig(), generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 23) feasible angles (see the module docstring)."""
    lo, hi = axes.lower, axes.upper
    u = torch.rand(n, NUM_ANGLES, generator=generator)
    angles = lo + (hi - lo) * u
    natural = torch.rand(n, generator=generator) < config.natural_share
    if bool(natural.any()):
        m = int(natural.sum())
        nat = torch.zeros(m, NUM_ANGLES)
        zero_in_range = (-lo) / (hi - lo)  # where the rest pose lies in each range
        for finger, (mcp, abd, pip, dip) in FINGER_ANGLES.items():
            curl = torch.rand(m, generator=generator) ** 1.5  # more open than closed hands
            jitter = 0.15 * torch.randn(m, 3, generator=generator)
            nat[:, mcp] = (zero_in_range[mcp] + (1 - zero_in_range[mcp]) * (curl + jitter[:, 0])).clamp(0, 1)
            nat[:, pip] = (zero_in_range[pip] + (1 - zero_in_range[pip]) * (curl + jitter[:, 1])).clamp(0, 1)
            nat[:, dip] = (zero_in_range[dip] + (2 / 3) * (1 - zero_in_range[dip]) * (curl + jitter[:, 2])).clamp(0, 1)
            nat[:, abd] = (zero_in_range[abd] + 0.25 * torch.randn(m, generator=generator)).clamp(0, 1)
        thumb = torch.tensor(THUMB_ANGLES)
        nat[:, thumb] = (zero_in_range[thumb] + 0.3 * torch.randn(m, len(THUMB_ANGLES), generator=generator)).clamp(0, 1)
        angles[natural] = lo + (hi - lo) * nat
    return swap_fingers(angles, axes, config.swap_prob, generator)


def swap_fingers(angles: torch.Tensor, axes: BiomechAxes, prob: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """With chance ``prob`` per hand, copy one finger's four angles onto another (clamped to its limits)."""
    n = angles.shape[0]
    out = angles.clone()
    swap = torch.rand(n, generator=generator) < prob
    src = torch.randint(0, 4, (n,), generator=generator)
    dst = (src + torch.randint(1, 4, (n,), generator=generator)) % 4
    table = torch.tensor([FINGER_ANGLES[f] for f in FINGERS4])  # (4, 4)
    rows = torch.nonzero(swap)[:, 0]
    out[rows[:, None], table[dst[rows]]] = angles[rows[:, None], table[src[rows]]]
    return clamp_angles(out, axes)


def random_shapes(n: int, config: SynthConfig = SynthConfig(), generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 6) Anny phenotypes (gender, age, muscle, weight, height, proportions), mostly adults."""
    shape = torch.rand(n, 6, generator=generator)
    adult = torch.rand(n, generator=generator) < config.adult_share
    age = torch.rand(n, generator=generator)
    shape[:, 1] = torch.where(adult, 0.35 + 0.65 * age, 0.1 + 0.25 * age)
    return shape


def landmark_noise(joints: torch.Tensor, config: SynthConfig = SynthConfig(), generator: torch.Generator | None = None) -> torch.Tensor:
    """MediaPipe-like noise on (n, 21, 3) camera-frame joints (z = depth), metres."""
    n = joints.shape[0]
    sigma = torch.tensor(config.noise_mm)[TIER] / 1000.0  # (21,)
    scale = torch.tensor([1.0, 1.0, config.depth_factor])
    noisy = joints + torch.randn(n, 21, 3, generator=generator) * sigma[:, None] * scale
    for chain in HAND21_CHAIN.values():
        flip = torch.rand(n, generator=generator) < config.wrong_depth_prob
        if bool(flip.any()):
            tail = list(chain[1:])
            base = noisy[flip, chain[0], 2][:, None]
            noisy[flip.nonzero()[:, 0][:, None], torch.tensor(tail), 2] = 2 * base - noisy[flip][:, tail, 2]
    clean = torch.rand(n, generator=generator) < config.clean_share
    return torch.where(clean[:, None, None], joints, noisy)


@dataclass
class SynthBatch:
    angles: torch.Tensor  # (n, 23)
    shape: torch.Tensor  # (n, 6)
    global_rotation: torch.Tensor  # (n, 3, 3)
    joints: torch.Tensor  # (n, 21, 3) clean hand21 joints, wrist at the origin
    observed: torch.Tensor  # (n, 21, 3) the same with landmark noise
    vertices: torch.Tensor | None = None


def synth_batch(
    hand: BiomechHand,
    n: int,
    config: SynthConfig = SynthConfig(),
    generator: torch.Generator | None = None,
    with_vertices: bool = False,
) -> SynthBatch:
    """``n`` random hands of ``hand``'s side in random orientations (the camera looks along +z)."""
    angles = random_angles(n, hand.axes, config, generator)
    shape = random_shapes(n, config, generator)
    rotation = random_rotations(n, generator)
    with torch.no_grad():
        out = hand(angles, shape, rotation, with_vertices=with_vertices)
    return SynthBatch(angles, shape, rotation, out.joints, landmark_noise(out.joints, config, generator), out.vertices)


def random_rotations(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 3, 3) uniformly distributed rotations (normalized Gaussian quaternions)."""
    q = torch.randn(n, 4, generator=generator)
    return roma.unitquat_to_rotmat(q / q.norm(dim=-1, keepdim=True))
