"""How a synthetic person looks: skin tone, hair, and clothes painted as per-vertex colours.

AJAHR dresses SMPL mannequins in BEDLAM's textures, balanced over two sexes and seven ethnic
groups. Anny ships no textures, so clothes are regions of the mesh found from its skinning
(which joint moves a vertex most) and its rest-pose geometry: a top with sleeves of random
length, trousers or shorts or a skirt-like long top, shoes, hair on the scalp. Each region gets
a colour and, sometimes, a simple pattern (stripes or checks in rest-pose coordinates, so the
pattern moves with the body). Skin tones are drawn from a palette spanning very light to very
dark, weighted like the paper's mix (more darker and medium tones than a web-photo sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# skin tones (linear-ish RGB in [0, 1]) from very light to very dark, with draw weights roughly as
# AJAHR's population mix (African, Asian, Indian 20 % each; the others 10 %)
SKIN_TONES = np.array([
    [0.96, 0.80, 0.69], [0.92, 0.74, 0.62], [0.87, 0.68, 0.55], [0.80, 0.60, 0.46], [0.72, 0.52, 0.39],
    [0.62, 0.43, 0.31], [0.52, 0.35, 0.24], [0.42, 0.28, 0.19], [0.33, 0.22, 0.15], [0.25, 0.17, 0.12],
])
SKIN_WEIGHTS = np.array([0.05, 0.08, 0.12, 0.14, 0.13, 0.12, 0.11, 0.10, 0.09, 0.06])
HAIR_COLOURS = np.array([[0.05, 0.04, 0.03], [0.15, 0.10, 0.06], [0.30, 0.20, 0.12], [0.55, 0.40, 0.22],
                         [0.80, 0.68, 0.45], [0.55, 0.55, 0.55], [0.85, 0.85, 0.85], [0.45, 0.18, 0.08]])
# clothing: saturated and muted colours alike
CLOTH_COLOURS = np.array([
    [0.9, 0.9, 0.9], [0.1, 0.1, 0.12], [0.2, 0.25, 0.5], [0.15, 0.2, 0.35], [0.6, 0.1, 0.1], [0.8, 0.3, 0.1],
    [0.9, 0.8, 0.2], [0.2, 0.5, 0.2], [0.3, 0.35, 0.25], [0.5, 0.4, 0.3], [0.7, 0.6, 0.5], [0.4, 0.4, 0.45],
    [0.6, 0.3, 0.6], [0.1, 0.5, 0.6], [0.95, 0.5, 0.6], [0.35, 0.2, 0.1],
])

TORSO = ("pelvis", "spine1", "spine2", "spine3", "left_collar", "right_collar")


@dataclass(frozen=True)
class BodyRegions:
    """Per-vertex facts of one body mesh used to paint clothes (computed once per model)."""

    joint: np.ndarray  # (V,) the joint with the largest skinning weight
    rest: np.ndarray  # (V, 3) rest-pose vertices of the neutral shape (metres, y up)
    joint_names: tuple[str, ...]
    limb_position: np.ndarray  # (V,) 0 at the limb segment's proximal joint, 1 at its distal one (else 0)
    scalp: np.ndarray  # (V,) bool: where hair grows

    def on(self, *names: str) -> np.ndarray:
        ids = [self.joint_names.index(n) for n in names if n in self.joint_names]
        return np.isin(self.joint, ids)


def body_regions(joint_names: tuple[str, ...], parents: tuple[int, ...], skin_weights: np.ndarray,
                 rest_vertices: np.ndarray, rest_joints: np.ndarray) -> BodyRegions:
    """Regions of a mesh from its skinning weights (V, J) and rest pose."""
    joint = skin_weights.argmax(1)
    # position along each limb segment: projection onto joint -> first child
    position = np.zeros(len(joint))
    for j, name in enumerate(joint_names):
        if not any(name.endswith(s) for s in ("shoulder", "elbow", "hip", "knee")):
            continue
        child = next(c for c, p in enumerate(parents) if p == j)
        a, b = rest_joints[j], rest_joints[child]
        sel = joint == j
        position[sel] = np.clip((rest_vertices[sel] - a) @ (b - a) / ((b - a) @ (b - a)), 0, 1)
    head = joint_names.index("head")
    h = rest_joints[head]
    v = rest_vertices
    # hair: head vertices above the eyes' level, and behind the ears lower down (not the face)
    scalp = (joint == head) & ((v[:, 1] > h[1] + 0.07) | ((v[:, 2] < h[2] - 0.02) & (v[:, 1] > h[1] - 0.02)))
    return BodyRegions(joint, rest_vertices, joint_names, position, scalp)


@dataclass(frozen=True)
class Outfit:
    skin: np.ndarray  # (3,)
    hair: np.ndarray  # (3,)
    hair_kept: bool  # False: bald or shaved
    top: np.ndarray
    bottom: np.ndarray
    shoes: np.ndarray
    sleeve: float  # 0 sleeveless ... 1 shoulder, 2 to the wrist (in segment units)
    leg: float  # trouser length: 0 briefs, 0.5 shorts, 1 knee, 2 ankle
    pattern: str  # "plain", "stripes", "checks" (on the top)
    pattern_colour: np.ndarray
    pattern_period: float  # metres


def random_skin(rng: np.random.Generator) -> np.ndarray:
    """(3,) a skin tone of the palette (drawn with its weights), slightly varied; not clipped."""
    return SKIN_TONES[rng.choice(len(SKIN_TONES), p=SKIN_WEIGHTS)] * rng.uniform(0.93, 1.07, 3)


def random_outfit(rng: np.random.Generator) -> Outfit:
    skin = random_skin(rng)
    cloth = CLOTH_COLOURS[rng.choice(len(CLOTH_COLOURS), 4)] * rng.uniform(0.8, 1.15, (4, 3))
    return Outfit(
        skin=np.clip(skin, 0, 1),
        hair=HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))],
        hair_kept=bool(rng.random() < 0.9),
        top=np.clip(cloth[0], 0, 1), bottom=np.clip(cloth[1], 0, 1), shoes=np.clip(cloth[2] * 0.6, 0, 1),
        sleeve=float(rng.choice([0.0, 0.5, 1.0, 2.0], p=[0.15, 0.35, 0.1, 0.4])),
        leg=float(rng.choice([0.5, 1.0, 2.0], p=[0.3, 0.1, 0.6])),
        pattern=str(rng.choice(["plain", "stripes", "checks"], p=[0.6, 0.25, 0.15])),
        pattern_colour=np.clip(cloth[3], 0, 1),
        pattern_period=float(rng.uniform(0.04, 0.12)),
    )


def vertex_colours(regions: BodyRegions, outfit: Outfit) -> np.ndarray:
    """(V, 3) colours in [0, 1] of ``outfit`` painted on the mesh of ``regions``."""
    r = regions
    colours = np.tile(outfit.skin, (len(r.joint), 1))
    segment = r.limb_position

    top = r.on(*TORSO)
    sides = ("left", "right")
    top |= r.on(*(f"{s}_shoulder" for s in sides)) & (segment <= outfit.sleeve)
    top |= r.on(*(f"{s}_elbow" for s in sides)) & (segment <= outfit.sleeve - 1)
    bottom = r.on(*(f"{s}_hip" for s in sides)) & (segment <= outfit.leg)
    bottom |= r.on(*(f"{s}_knee" for s in sides)) & (segment <= outfit.leg - 1)
    # the pelvis region is trousers below the hip joints' level
    hip_level = r.rest[r.on("left_hip", "right_hip")][:, 1].max() if r.on("left_hip").any() else 0.0
    pelvis = r.on("pelvis") & (r.rest[:, 1] < hip_level + 0.03)
    top &= ~pelvis
    bottom |= pelvis
    shoes = r.on(*(f"{s}_{p}" for s in sides for p in ("ankle", "foot")))

    top_colour = np.tile(outfit.top, (len(colours), 1))
    if outfit.pattern != "plain":
        phase = np.floor(r.rest[:, 1] / outfit.pattern_period)
        if outfit.pattern == "checks":
            phase = phase + np.floor(r.rest[:, 0] / outfit.pattern_period)
        top_colour[phase % 2 == 1] = outfit.pattern_colour
    colours[top] = top_colour[top]
    colours[bottom] = outfit.bottom
    colours[shoes] = outfit.shoes
    if outfit.hair_kept:
        colours[r.scalp] = outfit.hair
    return colours
