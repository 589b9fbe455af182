"""Synthetic hand images for Lite I2L MeshNet (Fan & Wang 2023, Sec. 3.2.3) on the Anny hand.

Each sample is a square hand crop with its labels (:class:`hmrkit.synth.hand_dataset.SynthHand`):

- side: left or right, evenly;
- pose (ManoRender's pose variety): 23 angles drawn in the feasible space
  (:func:`hmrkit.hands.synth.random_angles`: uniform per angle or coupled natural curls), or,
  with ``real_pose_share``, a pose MediaPipe Hands + the IK net found on a real training photo
  (:mod:`hmrkit.synth.hand_poses`); both then get ManoRender's random finger swap.
  ``pose_variety=False`` (Tab. 3's ablation): the real poses alone, no swap;
- view (AngRender's view variety): the hand is held upright (fingers up) and the camera stands
  on a sphere around it, elevation in [-60, 90] degrees, any azimuth, then turned about its
  axis by any angle (a hand crop can show a hand in any orientation). ``view_variety=False``:
  the camera faces the palm or the back within ~15 degrees, turned by ~20 degrees;
- framing: a pinhole camera of narrow field of view (a crop out of a photo) with the hand
  filling 50-85 % of the side, sometimes cut at an edge (:func:`hmrkit.synth.camera.place_person`);
- look: an Anny phenotype shape (:func:`hmrkit.hands.synth.random_shapes`), a skin tone of the
  body generator's palette with lighter palms and nails, a forearm stub (bare or sleeved, bent at
  the wrist), one directional light (:func:`hmrkit.synth.render.random_light`), a real photo
  background with its people removed (:mod:`hmrkit.synth.backgrounds`), and sometimes occluding
  objects in front (flat coloured shapes or patches of another photo).

Labels come from the mesh that was rendered: joints and vertices are those of
``BiomechHand(side)(angles, shape, global_rotation, translation)``. A joint is ``OCCLUDED`` when
the surface drawn at its pixel is the forearm's, or the hand's lying further in front of it than
the joint can lie under the skin (``hidden_depth``: wrist, knuckles and thumb base ~3 cm, finger
joints ~1.8 cm, tips ~1.2 cm: tips are on the skin), or an occluder covers it. A heuristic: a
joint whose pixel shows no surface at all (a fingertip on the outline) counts as visible.

Every sample draws from its own generator seeded by (seed, index): a set is the same for a seed
whichever samples were made first, so an interrupted run resumes where it stopped.

    hmrkit synth hands --out DIR --count N --seed S [--size 256] [--no-pose-variety] [--no-view-variety]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from hmrkit.hands.hand_model import SIDES, BiomechHand, canonical_frame, load_biomech_hand
from hmrkit.hands.synth import TIER, SynthConfig, random_angles, random_shapes, swap_fingers
from hmrkit.render.mesh_ops import vertex_normals
from hmrkit.synth import dataset
from hmrkit.synth.appearance import CLOTH_COLOURS, random_skin
from hmrkit.synth.backgrounds import BackgroundBank, build_background_bank, data_root, random_crop, training_photo_sources
from hmrkit.synth.camera import CameraSettings, place_person, project
from hmrkit.synth.hand_dataset import KIND, OCCLUDED, OUTSIDE, VISIBLE, SynthHand
from hmrkit.synth.render import composite, random_light, render_person, visible_box

HAND_CAMERA = CameraSettings(fov_degrees=(10.0, 40.0), fill=(0.5, 0.85), truncation_prob=0.1, truncation_depth=(0.05, 0.25))


@dataclass(frozen=True)
class HandSynthSettings:
    size: tuple[int, int] = (256, 256)  # height, width
    pose_variety: bool = True  # ManoRender: feasible-space poses and finger swaps beside the real ones
    view_variety: bool = True  # AngRender: cameras all over the sphere around the hand
    real_pose_share: float = 0.3  # with pose variety: share of poses from the real photos' bank
    swap_prob: float = 0.5  # ManoRender's finger swap, per hand
    elevation_degrees: tuple[float, float] = (-60.0, 90.0)  # AngRender's range
    narrow_view_degrees: tuple[float, float, float] = (15.0, 15.0, 20.0)  # without view variety: std of azimuth, elevation, roll
    forearm_prob: float = 0.9
    sleeve_prob: float = 0.5  # the forearm stub is covered by a sleeve from some distance on
    wrist_bend_degrees: tuple[float, float] = (35.0, 15.0)  # std of the stub's flexion and deviation at the wrist
    occluder_prob: float = 0.35
    supersample: int = 2
    hidden_depth: tuple[float, float, float] = (0.03, 0.018, 0.012)  # metres: a hand surface further in front of a
    # joint hides it; per tier (hands.synth.TIER): wrist / MCPs / thumb CMC, middle joints, tips (tips are on the skin)
    data_root: str = ""  # "" : $HMRKIT_DATA_DIR or ../shared/data
    cache: str = ""  # cleaned backgrounds and the real pose bank; "" : hmrkit's cache folder
    camera: CameraSettings = field(default_factory=lambda: HAND_CAMERA)

    def options(self) -> dict:
        d = asdict(self)
        d.pop("data_root")
        d.pop("cache")
        return json.loads(json.dumps(d))  # as the manifest will read back (lists, not tuples)


def sphere_camera(azimuth: float, elevation: float, roll: float) -> np.ndarray:
    """(3, 3) world -> camera rotation (OpenCV camera) for a camera on the unit sphere around the
    origin, looking at it, world y up; ``roll`` turns the image about the viewing axis."""
    to_camera = np.array([np.cos(elevation) * np.sin(azimuth), np.sin(elevation), np.cos(elevation) * np.cos(azimuth)])
    forward = -to_camera
    up = np.array([0.0, 1.0, 0.0]) if abs(to_camera[1]) < 0.99 else np.array([0.0, 0.0, -np.sign(to_camera[1])])
    down = -(up - (up @ forward) * forward)
    down /= np.linalg.norm(down)
    right = np.cross(down, forward)
    rotation = np.stack([right, down, forward])
    c, s = np.cos(roll), np.sin(roll)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ rotation


def forearm_stub(axis: np.ndarray, across: np.ndarray, start: np.ndarray, width: float, length: float = 0.3,
                 segments: int = 16, rings: int = 13) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A slightly widening elliptic tube from ``start`` along unit ``axis``, capped at the far end.

    Returns vertices (rings * segments + 1, 3), faces and each vertex's distance along the axis."""
    across = across - (across @ axis) * axis
    across /= np.linalg.norm(across)
    other = np.cross(axis, across)
    t = np.linspace(0.0, length, rings)
    phi = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    grow = 1.0 + 0.25 * t / length
    rx, rz = 0.5 * width * grow, 0.33 * width * grow  # a wrist is about two thirds as thick as wide
    ring = (rx[:, None, None] * np.cos(phi)[None, :, None] * across + rz[:, None, None] * np.sin(phi)[None, :, None] * other)
    vertices = (start + t[:, None, None] * axis + ring).reshape(-1, 3)
    a = np.arange(rings - 1)[:, None] * segments + np.arange(segments)[None]
    b = np.arange(rings - 1)[:, None] * segments + (np.arange(segments)[None] + 1) % segments
    quads = np.stack([a, b, b + segments, a + segments], -1).reshape(-1, 4)
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    centre = len(vertices)
    last = (rings - 1) * segments + np.arange(segments)
    cap = np.stack([last, np.roll(last, -1), np.full(segments, centre)], -1)
    vertices = np.concatenate([vertices, (start + length * axis)[None]])
    along = np.concatenate([np.repeat(t, segments), [length]])
    return vertices, np.concatenate([faces, cap]).astype(np.int64), along


def _rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


@dataclass
class _RestHand:
    """Per side: the upright frame and the rest-pose facts that colour the skin."""

    hand: BiomechHand
    upright: np.ndarray  # (3, 3) rest hand -> upright world (fingers along +y)
    frame: np.ndarray  # (3, 3) the rest hand's canonical frame (columns x, y, z)
    palm_side: np.ndarray  # (V,) in [0, 1]: how much a vertex faces the palm's way
    nail: np.ndarray  # (V,) bool: on a fingernail


def _rest_hand(side: str) -> _RestHand:
    hand = load_biomech_hand(side)
    with torch.no_grad():
        out = hand(torch.zeros(1, 23), hand.default_shape(1), with_vertices=True)
    joints, vertices = out.joints[0].numpy(), out.vertices[0].numpy()
    frame = canonical_frame(out.joints)[0].numpy()
    palm = -frame[:, 2] if side == "left" else frame[:, 2]  # canonical z: the back of a left hand, a right hand's palm
    normals = vertex_normals(vertices.astype(np.float32), hand.faces.numpy())
    facing = normals @ palm
    tips = joints[[4, 8, 12, 16, 20]]
    near_tip = (np.linalg.norm(vertices[:, None] - tips[None], axis=-1) < 0.011).any(1)
    return _RestHand(hand, frame.T, frame, np.clip(facing, 0, 1), near_tip & (facing < -0.3))


class HandSynthGenerator:
    """Holds both hands, the backgrounds and the real pose bank; makes samples."""

    def __init__(self, settings: HandSynthSettings = HandSynthSettings(), log=print):
        from hmrkit.synth.hand_poses import hand_photo_sources, hand_pose_bank

        self.settings = settings
        cache = Path(settings.cache) if settings.cache else None
        root = data_root(settings.data_root)
        self.rest = {side: _rest_hand(side) for side in SIDES}
        sources = training_photo_sources(root)
        log(f"backgrounds: cleaning or reading {len(sources)} photos (cached after the first run)")
        self.backgrounds: BackgroundBank = build_background_bank(
            sources, cache=None if cache is None else cache / "backgrounds", max_hole=0.5)
        if not len(self.backgrounds):
            raise RuntimeError("no background passed the quality checks")
        photos = hand_photo_sources(root)
        log(f"real hand poses: MediaPipe Hands + IK net on {len(photos)} photos (cached after the first run)")
        self.poses = hand_pose_bank(photos, cache=cache)
        log(f"real hand poses: {len(self.poses)} hands")
        if not settings.pose_variety and not len(self.poses):
            raise RuntimeError("no real hand pose found, and --no-pose-variety uses those alone")

    def close(self) -> None:
        pass

    def _angles(self, rest: _RestHand, rng: np.random.Generator, g: torch.Generator) -> tuple[torch.Tensor, str]:
        s = self.settings
        axes = rest.hand.axes
        use_real = len(self.poses) and (not s.pose_variety or rng.random() < s.real_pose_share)
        if use_real:
            k = int(rng.integers(len(self.poses)))
            angles = torch.from_numpy(self.poses.angles[k : k + 1].copy())
            source = f"real:{self.poses.sources[k]}"
        else:
            angles, source = random_angles(1, axes, SynthConfig(swap_prob=0.0), g), "sampled"
        if s.pose_variety:
            angles = swap_fingers(angles, axes, s.swap_prob, g)
        return angles, source

    def _view(self, rng: np.random.Generator) -> np.ndarray:
        s = self.settings
        if s.view_variety:
            azimuth = rng.uniform(0, 2 * np.pi)
            elevation = np.radians(rng.uniform(*s.elevation_degrees))
            roll = rng.uniform(-np.pi, np.pi)
        else:
            sa, se, sr = np.radians(s.narrow_view_degrees)
            azimuth = np.pi * int(rng.integers(2)) + rng.normal(0, sa)
            elevation, roll = rng.normal(0, se), rng.normal(0, sr)
        return sphere_camera(azimuth, elevation, roll)

    def _colours(self, rest: _RestHand, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(V, 3) hand colours and the (3,) skin tone: palms and nails lighter, a little mottling."""
        skin = np.clip(random_skin(rng), 0, 1)
        light = np.array([0.93, 0.78, 0.68])
        darkness = 1.0 - skin.mean()  # darker skin has markedly lighter palms
        palm = skin + (light - skin) * (0.15 + 0.5 * darkness) * rest.palm_side[:, None]
        nails = np.array([0.92, 0.75, 0.72]) * rng.uniform(0.9, 1.05)
        colours = np.where(rest.nail[:, None], skin + (nails - skin) * 0.6, palm)
        colours = colours * rng.normal(1.0, 0.025, (len(colours), 1))
        return np.clip(colours, 0, 1), skin

    def _forearm(self, rest: _RestHand, joints: np.ndarray, rng: np.random.Generator, skin: np.ndarray):
        """Forearm stub in the rest hand's frame (wrist joint at the origin) and its colours."""
        s = self.settings
        x, y, z = rest.frame.T
        flex, deviate = np.radians(rng.normal(0, s.wrist_bend_degrees[0])), np.radians(rng.normal(0, s.wrist_bend_degrees[1]))
        axis = _rotation_about(z, deviate) @ _rotation_about(x, flex) @ -y
        width = 0.8 * float(np.linalg.norm(joints[5] - joints[17]))
        vertices, faces, along = forearm_stub(axis, x, 0.012 * y, width)
        colours = np.tile(skin * rng.uniform(0.95, 1.03), (len(vertices), 1))
        if rng.random() < s.sleeve_prob:
            cloth = np.clip(CLOTH_COLOURS[rng.integers(len(CLOTH_COLOURS))] * rng.uniform(0.8, 1.15, 3), 0, 1)
            colours[along >= rng.uniform(0.03, 0.2)] = cloth
        return vertices, faces, colours

    @dataset.at_one_thread
    def sample(self, seed: int, index: int) -> tuple[np.ndarray, SynthHand]:
        """The image (H, W, 3) uint8 and labels of sample ``index`` of the set of ``seed``."""
        s = self.settings
        rng = np.random.default_rng([seed, index])
        g = torch.Generator().manual_seed(int(rng.integers(2**62)))
        side = SIDES[int(rng.integers(2))]
        rest = self.rest[side]
        angles, pose_source = self._angles(rest, rng, g)
        shape = random_shapes(1, SynthConfig(), g)
        rotation = self._view(rng) @ rest.upright  # camera frame, relative to the rest hand
        g_rot = torch.from_numpy(rotation).float()[None]
        with torch.no_grad():
            local = rest.hand(angles, shape, with_vertices=True)  # rest orientation, wrist joint at the origin
        local_joints, local_vertices = local.joints[0].numpy().astype(np.float64), local.vertices[0].numpy().astype(np.float64)
        placed = place_person(local_vertices @ rotation.T, s.size, rng, s.camera)
        translation = placed.translation
        with torch.no_grad():
            out = rest.hand(angles, shape, g_rot, torch.from_numpy(translation).float()[None], with_vertices=True)
        joints3d, vertices = out.joints[0].numpy().astype(np.float64), out.vertices[0].numpy().astype(np.float64)

        colours, skin = self._colours(rest, rng)
        mesh_v, mesh_f, mesh_c = [vertices], [rest.hand.faces.numpy()], [colours]
        if rng.random() < s.forearm_prob:
            arm_v, arm_f, arm_c = self._forearm(rest, local_joints, rng, skin)
            mesh_v.append(arm_v @ rotation.T + translation)
            mesh_f.append(arm_f + len(vertices))
            mesh_c.append(arm_c)
        layer = render_person(np.concatenate(mesh_v), np.concatenate(mesh_f), np.concatenate(mesh_c),
                              placed.intrinsics, s.size, random_light(rng), s.supersample)
        hand_faces = len(mesh_f[0])
        frags = layer.fragments
        hand_alpha = _coverage(frags.face_index, hand_faces, s.size)
        b = int(rng.integers(len(self.backgrounds)))
        box_all = visible_box(layer.alpha)
        background = random_crop(self.backgrounds.images[b], s.size, rng, self.backgrounds.holes[b], box_all)
        image = composite(background, layer, rng)
        occluder = np.zeros(s.size, np.float32)
        joints2d = project(joints3d, placed.intrinsics)
        if rng.random() < s.occluder_prob and np.isfinite(visible_box(hand_alpha)).all():
            image, occluder = add_occluders(image, joints2d, visible_box(hand_alpha), self.backgrounds, rng)
        visibility = joint_visibility(joints2d, joints3d[:, 2], frags, hand_faces, occluder, s.supersample, s.hidden_depth)
        label = SynthHand(
            side=side,
            camera=placed.intrinsics.astype(np.float32),
            joints2d=joints2d.astype(np.float32),
            joints3d=joints3d.astype(np.float32),
            visibility=visibility,
            vertices=vertices.astype(np.float32),
            angles=angles[0].numpy().astype(np.float32),
            shape=shape[0].numpy().astype(np.float32),
            global_rotation=rotation.astype(np.float32),
            translation=translation.astype(np.float32),
            box=visible_box(hand_alpha * (1 - occluder)),
            pose_source=pose_source,
            background=self.backgrounds.names[b],
        )
        return image, label


def _coverage(face_index: np.ndarray, hand_faces: int, size: tuple[int, int]) -> np.ndarray:
    """(H, W) share of each output pixel covered by the hand's own faces (not the forearm's)."""
    mask = ((face_index >= 0) & (face_index < hand_faces)).astype(np.float32)
    return cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def joint_visibility(joints2d: np.ndarray, depth: np.ndarray, frags, hand_faces: int, occluder: np.ndarray,
                     supersample: int, hidden_depth: tuple[float, float, float]) -> np.ndarray:
    """(21,) uint8 OUTSIDE / OCCLUDED / VISIBLE (see the module docstring)."""
    h, w = occluder.shape
    inside = (joints2d[:, 0] > -0.5) & (joints2d[:, 0] < w - 0.5) & (joints2d[:, 1] > -0.5) & (joints2d[:, 1] < h - 0.5)
    out = np.full(len(joints2d), OUTSIDE, np.uint8)
    uv = np.clip(np.round(joints2d * supersample + (supersample - 1) / 2).astype(int), 0,
                 [frags.face_index.shape[1] - 1, frags.face_index.shape[0] - 1])
    face = frags.face_index[uv[:, 1], uv[:, 0]]
    surface = frags.depth[uv[:, 1], uv[:, 0]]
    px = np.clip(np.round(joints2d).astype(int), 0, [w - 1, h - 1])
    tolerance = np.asarray(hidden_depth)[TIER.numpy()]
    in_front = (face >= 0) & ((face >= hand_faces) | (surface < depth - tolerance))  # the forearm, or the hand itself
    seen = ~in_front & (occluder[px[:, 1], px[:, 0]] < 0.5)
    out[inside] = np.where(seen[inside], VISIBLE, OCCLUDED)
    return out


def add_occluders(image: np.ndarray, joints2d: np.ndarray, hand_box: np.ndarray, backgrounds: BackgroundBank,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One or two objects in front of the hand: an ellipse, a rotated box or a polygon, flat-coloured
    with a shading gradient or cut from another photo; returns the image and the (H, W) coverage."""
    h, w = image.shape[:2]
    scale = 4  # drawn at 4x, averaged down: anti-aliased edges
    coverage = np.zeros((h, w), np.float32)
    out = image.astype(np.float32)
    diagonal = float(np.hypot(hand_box[2] - hand_box[0], hand_box[3] - hand_box[1]))
    for _ in range(1 + int(rng.random() < 0.3)):
        centre = joints2d[rng.integers(len(joints2d))] + rng.normal(0, 0.1 * diagonal, 2)
        radius = diagonal * rng.uniform(0.08, 0.22, 2)
        big = np.zeros((h * scale, w * scale), np.uint8)
        c = tuple(int(v) for v in (centre + 0.5) * scale)
        kind = int(rng.integers(3))
        angle = rng.uniform(0, 180)
        if kind == 0:
            cv2.ellipse(big, c, tuple(int(r * scale) for r in radius), angle, 0, 360, 255, -1)
        elif kind == 1:
            box = cv2.boxPoints(((c[0], c[1]), (2 * radius[0] * scale, 2 * radius[1] * scale), angle))
            cv2.fillPoly(big, [box.astype(np.int32)], 255)
        else:
            n = int(rng.integers(3, 7))
            phi = np.sort(rng.uniform(0, 2 * np.pi, n))
            r = radius.mean() * rng.uniform(0.6, 1.3, n)
            pts = np.stack([c[0] + scale * r * np.cos(phi), c[1] + scale * r * np.sin(phi)], -1)
            cv2.fillPoly(big, [pts.astype(np.int32)], 255)
        mask = cv2.resize(big.astype(np.float32) / 255, (w, h), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:
            colour = np.clip(rng.uniform(0, 1, 3), 0, 1) * 255
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            direction = rng.normal(0, 1, 2)
            shade = 1 + 0.25 * np.tanh(((xs - centre[0]) * direction[0] + (ys - centre[1]) * direction[1]) / (radius.mean() + 1))
            fill = colour[None, None] * shade[..., None]
        else:
            k = int(rng.integers(len(backgrounds)))
            fill = random_crop(backgrounds.images[k], (h, w), rng).astype(np.float32)
        out = out * (1 - mask[..., None]) + fill * mask[..., None]
        coverage = np.maximum(coverage, mask)
    return (np.clip(out, 0, 255) + 0.5).astype(np.uint8), coverage


def generate(out: Path, count: int, seed: int, settings: HandSynthSettings = HandSynthSettings(), log=print,
             generator: HandSynthGenerator | None = None) -> int:
    """Write samples 0..count-1 of the set into ``out`` (those already there are kept); returns how
    many were made now. ``generator``: one already built with ``settings``."""
    manifest = dataset.SynthManifest(KIND, seed, count, tuple(settings.size), settings.options())
    return dataset.generate_set(out, manifest, lambda: HandSynthGenerator(settings, log), log, generator)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, HandSynthSettings]:
    parser = dataset.set_parser("hmrkit synth hands", "Generate synthetic hand images (Lite I2L MeshNet's ManoRender / AngRender).")
    parser.add_argument("--no-pose-variety", action="store_true", help="real photos' poses only, no sampled poses or finger swaps (Tab. 3 ablation)")
    parser.add_argument("--no-view-variety", action="store_true", help="cameras near the palm or back only, not all over the sphere (Tab. 3 ablation)")
    args = dataset.parse_set_args(parser, argv)
    return args, HandSynthSettings(size=(args.size, args.size), pose_variety=not args.no_pose_variety,
                                   view_variety=not args.no_view_variety)


def main(argv: list[str] | None = None) -> int:
    args, settings = parse_args(argv)
    return dataset.run_command("hmrkit synth hands", generate, args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
