"""Synthetic MediaPipe-like body landmarks from real motion, generated on the fly in batches.

Each sample: a CMU pose (retargeted onto the core skeleton, :mod:`hmrkit.data.retarget`,
mirrored left-right half of the time) on an Anny body with random phenotypes (children to
elders, thin to heavy), turned to a random heading around the vertical, seen by a random
pinhole camera (field of view, pitch, roll) from a distance at which the person fills a
plausible share of the image. The model's MediaPipe33 keypoints are projected to pixels, then
corrupted the way MediaPipe's output is:

- Gaussian noise scaled to the person's size (stronger on hands and feet), rare outliers,
  rare left/right leg swaps;
- landmarks outside the image are unseen (truncation); limb landmarks are occluded at random
  and sometimes a whole limb is: most occluded landmarks are still reported as seen, displaced
  (MediaPipe guesses them), the rest are unseen;
- the hip-centred metric 3D landmarks (MediaPipe's "world" output) get noise, stronger and
  compressed in depth, and a wrong overall scale.

Unseen landmarks keep their noisy values, as MediaPipe still outputs a guess for them; the flag
says they are unseen (what :class:`~hmrkit.models.encoders.BodyKeypoints` holds) and the encoder
zeroes them.

The defaults follow MediaPipe's measured output on real photos (``benchmarks/hkmr_domain_gap.py``,
``docs/hkmr.md``): it reports nearly every landmark as seen (96 % at visibility >= 0.2 on LSPET,
the face and the torso always), and its errors have a heavy tail (14 % of seen limb landmarks
more than 0.1 box sides from the labels). :data:`V1_NOISE` is the earlier noise model (the
shipped ``hkmr.safetensors`` v1 and the held-out table ``benchmarks/results/hkmr_synthetic.md``).
The ground truth (pose, shape, joints, clean keypoints, camera) rides along for the losses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from hmrkit.body.anny_keypoints import anny_keypoint_map
from hmrkit.body.anny_model import AnnyModel
from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.body.conventions import MEDIAPIPE33
from hmrkit.data.retarget import load_cmu_poses, mirror_core_rotations
from hmrkit.geometry.cameras import PerspectiveCamera, perspective_project
from hmrkit.fitting.targets import BODY, FIT_KEYPOINTS, FitTargets
from hmrkit.geometry.crops import CropBox
from hmrkit.models.encoders import BOX_PADDING, BodyKeypoints, person_box

# canonical body frame (x left, y up, z forward) -> OpenCV camera (x right, y down, z away):
# a person facing the camera, upright.
CANONICAL_TO_CAMERA = torch.diag(torch.tensor([1.0, -1.0, -1.0]))

_mp = MEDIAPIPE33.index
FACE = list(range(11))
LIMBS: dict[str, list[int]] = {
    f"{side}_{part}": [_mp(f"{side}_{n}") for n in names]
    for side in ("left", "right")
    for part, names in (("arm", ("elbow", "wrist", "pinky", "index", "thumb")),
                        ("leg", ("knee", "ankle", "heel", "foot_index")))
}  # what "one limb" means for occlusion: the limb beyond its torso joint
_LIMB_MASK = torch.zeros(len(MEDIAPIPE33), dtype=torch.bool)
_LIMB_MASK[[i for idx in LIMBS.values() for i in idx]] = True
EXTREMITIES = [_mp(f"{s}_{n}") for s in ("left", "right") for n in ("wrist", "pinky", "index", "thumb", "ankle", "heel", "foot_index")]
LEGS = {side: [_mp(f"{side}_{n}") for n in ("hip", "knee", "ankle", "heel", "foot_index")] for side in ("left", "right")}


@dataclass(frozen=True)
class SynthConfig:
    """How samples are drawn (defaults: the noise model measured against MediaPipe; see :data:`V1_NOISE`)."""

    fov_degrees: tuple[float, float] = (35.0, 80.0)  # along the image's longer side
    aspects: tuple[float, ...] = (4 / 3, 3 / 4, 1.0, 16 / 9, 9 / 16)  # width / height
    long_side: tuple[int, int] = (480, 1280)  # pixels
    fill: tuple[float, float] = (0.35, 0.95)  # person's larger 2D extent / the image's shorter side
    truncation_prob: float = 0.25  # placed partly out of the frame (if enough stays in view)
    min_visible: int = 12  # fewer landmarks left in frame than this: placed inside instead
    pitch_degrees: float = 15.0  # std of the camera's pitch (looking down/up)
    roll_degrees: float = 5.0  # std of the camera's roll
    adult_share: float = 0.85  # age phenotype in [0.4, 1] with this chance, else [0.1, 0.4]
    mirror_prob: float = 0.5
    noise: tuple[float, float] = (0.004, 0.025)  # 2D noise std range, share of the person's box
    extremity_noise: float = 1.7  # factor on hands and feet
    outlier_prob: float = 0.05
    outlier_scale: float = 0.12  # std of an outlier's offset, share of the box
    leg_swap_prob: float = 0.02  # MediaPipe sometimes swaps the legs
    dropout: tuple[float, float] = (0.0, 0.2)  # per-sample rate of randomly occluded landmarks
    dropout_limbs_only: bool = True  # random occlusion hits only limb landmarks (MediaPipe always sees face and torso)
    limb_occlusion_prob: float = 0.2  # one whole limb occluded
    guess_prob: float = 0.7  # an occluded landmark is still reported as seen, displaced (MediaPipe's guess)
    guess_scale: float = 0.1  # std of a guess's offset, share of the box (2D; the 3D landmark moves along)
    face_away_unseen_prob: float = 0.0  # MediaPipe reports the face even from behind
    world_noise: tuple[float, float] = (0.01, 0.03)  # 3D landmark noise std range, metres
    world_depth_noise: float = 2.0  # factor on the depth axis
    world_depth_scale: tuple[float, float] = (0.7, 1.1)  # MediaPipe's depth is compressed
    world_scale: tuple[float, float] = (0.85, 1.15)  # and its metric scale a guess


V1_NOISE = SynthConfig(outlier_prob=0.02, dropout=(0.0, 0.12), dropout_limbs_only=False, guess_prob=0.0, face_away_unseen_prob=0.8)
"""The first noise model: occluded landmarks always unseen, random dropout over all landmarks,
the face mostly unseen when it looks away. The shipped ``hkmr.safetensors`` (v1) trained on it,
and ``benchmarks/bench_hkmr.py synthetic`` keeps it for its held-out set (comparable results).
It draws the same random numbers as before the newer fields existed."""


@dataclass
class SynthBatch:
    """B samples: the observation (what the regressor sees) and the ground truth."""

    observed: BodyKeypoints  # noisy; unseen landmarks flagged
    rotations: torch.Tensor  # (B, 22, 3, 3) local; joint 0 = orientation in the camera frame
    shape: torch.Tensor  # (B, 6) phenotypes
    translation: torch.Tensor  # (B, 3) camera frame (the model's origin)
    joints: torch.Tensor  # (B, 22, 3) core joints, camera frame
    keypoints: torch.Tensor  # (B, 33, 3) MediaPipe33 keypoints, camera frame
    keypoints2d: torch.Tensor  # (B, 33, 2) their clean projections, pixels
    camera: PerspectiveCamera  # (B,) fields
    image_size: torch.Tensor  # (B, 2) width, height

    @property
    def batch(self) -> int:
        return self.rotations.shape[0]

    def take(self, part: slice) -> SynthBatch:
        """The samples in ``part`` (a slice of the batch)."""
        o, cam = self.observed, self.camera
        return SynthBatch(
            BodyKeypoints(o.xy[part], o.visible[part], o.world[part]),
            *(t[part] for t in (self.rotations, self.shape, self.translation, self.joints, self.keypoints, self.keypoints2d)),
            PerspectiveCamera(*(torch.as_tensor(v).expand(self.batch)[part] for v in (cam.fx, cam.fy, cam.cx, cam.cy))),
            self.image_size[part],
        )


def _axis_rotation(angle: torch.Tensor, axis: int) -> torch.Tensor:
    """(B,) angles -> (B, 3, 3) rotations about x (0), y (1) or z (2)."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(c), torch.zeros_like(c)
    rows = {
        0: [one, zero, zero, zero, c, -s, zero, s, c],
        1: [c, zero, s, zero, one, zero, -s, zero, c],
        2: [c, -s, zero, s, c, zero, zero, zero, one],
    }[axis]
    return torch.stack(rows, -1).reshape(*angle.shape, 3, 3)


def remove_heading(root: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) canonical-frame root orientations with their heading about the vertical removed
    (the body's forward axis turned into the y-z plane); lean and tilt stay."""
    forward = root[..., :, 2]
    heading = torch.atan2(forward[..., 0], forward[..., 2])
    return _axis_rotation(-heading, 1) @ root


def random_shapes(n: int, adult_share: float = 0.85, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 6) phenotypes: gender uniform, age mostly adult, build and size centred on neutral."""
    u = torch.rand(n, 6, generator=generator)
    centred = (u + torch.rand(n, 6, generator=generator)) / 2  # triangular on [0, 1]
    shape = centred.clone()
    shape[:, 0] = u[:, 0]
    adult = torch.rand(n, generator=generator) < adult_share
    shape[:, 1] = torch.where(adult, 0.4 + 0.6 * u[:, 1], 0.1 + 0.3 * u[:, 1])
    return shape


def _uniform(n: int, bounds: tuple[float, float], generator: torch.Generator | None) -> torch.Tensor:
    return bounds[0] + (bounds[1] - bounds[0]) * torch.rand(n, generator=generator)


class SynthKeypoints:
    """Draws :class:`SynthBatch` es from one CMU split on an Anny body (keypoints-only forward)."""

    def __init__(self, model: AnnyModel, split: str = "train", stride: int = 2, config: SynthConfig = SynthConfig(),
                 poses: torch.Tensor | None = None):
        """``poses``: (N, 22, 3, 3) canonical-frame poses to draw from instead of the CMU ``split``."""
        self.model = model
        self.config = config
        self.keypoint_map = anny_keypoint_map(model, MEDIAPIPE33)
        if poses is None:
            poses = torch.from_numpy(load_cmu_poses(split, stride=stride).rotations)
        if poses.ndim != 4 or poses.shape[1:] != (NUM_BODY_CORE, 3, 3):
            raise ValueError(f"poses must have shape (N, {NUM_BODY_CORE}, 3, 3), got {tuple(poses.shape)}")
        self.poses = poses.float()

    def __len__(self) -> int:
        return self.poses.shape[0]

    @torch.no_grad()
    def sample(self, batch: int, generator: torch.Generator | None = None) -> SynthBatch:
        cfg, g = self.config, generator
        pose = self.poses[torch.randint(len(self), (batch,), generator=g)]
        mirror = torch.rand(batch, generator=g) < cfg.mirror_prob
        pose = torch.where(mirror[:, None, None, None], mirror_core_rotations(pose), pose)
        shape = random_shapes(batch, cfg.adult_share, g)

        # orientation: CMU lean, random heading, then the camera's pitch and roll
        heading = (torch.rand(batch, generator=g) * 2 - 1) * math.pi
        pitch = torch.randn(batch, generator=g) * math.radians(cfg.pitch_degrees)
        roll = torch.randn(batch, generator=g) * math.radians(cfg.roll_degrees)
        view = _axis_rotation(roll, 2) @ _axis_rotation(pitch, 0) @ CANONICAL_TO_CAMERA
        root = view @ _axis_rotation(heading, 1) @ remove_heading(pose[:, 0])
        rotations = torch.cat([root[:, None], pose[:, 1:]], dim=1)

        full = torch.eye(3).expand(batch, self.model.num_joints, 3, 3).clone()
        full[:, :NUM_BODY_CORE] = rotations
        out = self.model(full, shape, with_vertices=False, keypoints=self.keypoint_map)
        camera, size, translation = self._place(out.keypoints, g)
        joints = out.joints[:, :NUM_BODY_CORE] + translation[:, None]
        keypoints = out.keypoints + translation[:, None]
        xy = perspective_project(keypoints, camera)
        observed = self._observe(keypoints, xy, size, g)
        return SynthBatch(observed, rotations, shape, translation, joints, keypoints, xy, camera, size)

    def _place(self, points: torch.Tensor, g: torch.Generator | None) -> tuple[PerspectiveCamera, torch.Tensor, torch.Tensor]:
        """Random image size and focal; a depth and image position for each body."""
        cfg = self.config
        n = points.shape[0]
        aspect = torch.tensor(cfg.aspects)[torch.randint(len(cfg.aspects), (n,), generator=g)]
        long_side = _uniform(n, cfg.long_side, g).round()
        width = torch.where(aspect >= 1, long_side, (long_side * aspect).round())
        height = torch.where(aspect >= 1, (long_side / aspect).round(), long_side)
        fov = torch.deg2rad(_uniform(n, cfg.fov_degrees, g))
        focal = long_side / (2 * torch.tan(fov / 2))
        cx, cy = (width - 1) / 2, (height - 1) / 2

        lo, hi = points.amin(1), points.amax(1)
        centre = (lo + hi) / 2
        extent = (hi - lo)[:, :2].amax(-1)
        fill = _uniform(n, cfg.fill, g) * torch.minimum(width, height)  # person's extent in pixels
        # the body centre's depth; every point stays at least 0.5 m in front of the camera
        z = torch.maximum(focal * extent / fill, centre[:, 2] - lo[:, 2] + 0.5)
        depth = z - centre[:, 2]  # the translation's z

        # image position of the body's centre: inside (box in frame where it fits) or shifted out
        half = torch.stack([fill, fill], -1) / 2
        room = (torch.stack([width, height], -1) / 2 - half).clamp(min=0)
        inside = (torch.rand(n, 2, generator=g) * 2 - 1) * room
        out = torch.sign(torch.rand(n, 2, generator=g) - 0.5) * (room + half * torch.rand(n, 2, generator=g) * 0.8)
        truncate = torch.rand(n, generator=g) < cfg.truncation_prob
        camera = PerspectiveCamera(focal, focal, cx, cy)
        size = torch.stack([width, height], -1)

        def translation_for(offset: torch.Tensor) -> torch.Tensor:
            u = offset[:, 0] + cx
            v = offset[:, 1] + cy
            return torch.stack([z * (u - cx) / focal - centre[:, 0], z * (v - cy) / focal - centre[:, 1], depth], -1)

        t_in, t_out = translation_for(inside), translation_for(out)
        xy = perspective_project(points + t_out[:, None], camera)
        in_frame = ((xy >= 0) & (xy <= size[:, None] - 1)).all(-1).sum(1)
        use_out = truncate & (in_frame >= cfg.min_visible)
        return camera, size, torch.where(use_out[:, None], t_out, t_in)

    def _observe(self, keypoints: torch.Tensor, xy: torch.Tensor, size: torch.Tensor, g: torch.Generator | None) -> BodyKeypoints:
        cfg = self.config
        n, k = xy.shape[:2]
        box = (xy.amax(1) - xy.amin(1)).amax(-1)  # the person's extent in pixels
        sigma = _uniform(n, cfg.noise, g)[:, None] * box[:, None] * torch.ones(k)
        sigma[:, EXTREMITIES] *= cfg.extremity_noise
        noisy = xy + torch.randn(n, k, 2, generator=g) * sigma[..., None]
        outlier = torch.rand(n, k, generator=g) < cfg.outlier_prob
        noisy = noisy + outlier[..., None] * torch.randn(n, k, 2, generator=g) * (cfg.outlier_scale * box)[:, None, None]
        swap = torch.rand(n, generator=g) < cfg.leg_swap_prob
        left, right = LEGS["left"], LEGS["right"]
        swapped = noisy.clone()
        swapped[:, left], swapped[:, right] = noisy[:, right], noisy[:, left]
        noisy = torch.where(swap[:, None, None], swapped, noisy)

        in_frame = ((xy >= 0) & (xy <= size[:, None] - 1)).all(-1)
        occluded = torch.rand(n, k, generator=g) < _uniform(n, cfg.dropout, g)[:, None]
        if cfg.dropout_limbs_only:
            occluded &= _LIMB_MASK[None]
        limb_names = list(LIMBS)
        limb = torch.randint(len(limb_names), (n,), generator=g)
        occlude = torch.rand(n, generator=g) < cfg.limb_occlusion_prob
        for i, name in enumerate(limb_names):
            hit = occlude & (limb == i)
            occluded |= hit[:, None] & torch.isin(torch.arange(k), torch.tensor(LIMBS[name]))[None]
        seen = in_frame & ~occluded
        ears = keypoints[:, [_mp("left_ear"), _mp("right_ear")]].mean(1)
        looks_away = (keypoints[:, _mp("nose"), 2] - ears[:, 2]) > 0.02  # nose farther than the ears
        hide_face = looks_away & (torch.rand(n, generator=g) < cfg.face_away_unseen_prob)
        seen[:, FACE] &= ~hide_face[:, None]

        hips = keypoints[:, [_mp("left_hip"), _mp("right_hip")]].mean(1, keepdim=True)
        world = keypoints - hips
        world = world * torch.stack([torch.ones(n), torch.ones(n), _uniform(n, cfg.world_depth_scale, g)], -1)[:, None]
        world = world * _uniform(n, cfg.world_scale, g)[:, None, None]
        w_sigma = _uniform(n, cfg.world_noise, g)[:, None, None] * torch.tensor([1.0, 1.0, cfg.world_depth_noise])
        world = world + torch.randn(n, k, 3, generator=g) * w_sigma
        world = world - world[:, [_mp("left_hip"), _mp("right_hip")]].mean(1, keepdim=True)

        if cfg.guess_prob > 0:  # drawn last: with guess_prob 0 the random stream is V1_NOISE's
            guess = occluded & in_frame & (torch.rand(n, k, generator=g) < cfg.guess_prob)
            offset = torch.randn(n, k, 2, generator=g) * (cfg.guess_scale * box)[:, None, None] * guess[..., None]
            noisy = noisy + offset
            # the 3D landmark moves with the 2D guess (one network gives both): pixels -> metres at the body's scale
            metres_per_pixel = keypoints[..., :2].std(1).norm(dim=-1) / xy.std(1).norm(dim=-1)
            world = world + torch.cat([offset * metres_per_pixel[:, None, None], torch.zeros(n, k, 1)], -1)
            seen |= guess

        return BodyKeypoints(noisy, seen, world)


def batch_to(batch: SynthBatch, device: torch.device | str) -> SynthBatch:
    """``batch`` with every tensor on ``device`` (for GPU training)."""
    cam = batch.camera
    return SynthBatch(
        BodyKeypoints(batch.observed.xy.to(device), batch.observed.visible.to(device), batch.observed.world.to(device)),
        *(t.to(device) for t in (batch.rotations, batch.shape, batch.translation, batch.joints, batch.keypoints, batch.keypoints2d)),
        PerspectiveCamera(*(torch.as_tensor(v).to(device) for v in (cam.fx, cam.fy, cam.cx, cam.cy))),
        batch.image_size.to(device),
    )


def fit_targets(batch: SynthBatch) -> FitTargets:
    """The pipeline's :class:`FitTargets` for a synthetic batch: the body landmarks (weight 1
    where seen), no hands; the box as the perception front end makes it (visible landmarks,
    a margin)."""
    n = batch.batch
    k = len(FIT_KEYPOINTS)
    seen = batch.observed.visible.float()
    xy = torch.zeros(n, k, 2)
    world = torch.zeros(n, k, 3)
    weight = torch.zeros(n, k)
    xy[:, BODY], world[:, BODY], weight[:, BODY] = batch.observed.xy, batch.observed.world, seen
    return FitTargets(xy, weight, world, weight.clone(), person_box(batch.observed).size)


def crop_box_of(batch: SynthBatch) -> CropBox:
    """The square box a person detector would give: around the clean projected keypoints, with a margin."""
    lo, hi = batch.keypoints2d.amin(1), batch.keypoints2d.amax(1)
    return CropBox((lo + hi) / 2, (hi - lo).amax(-1) * BOX_PADDING)


@torch.no_grad()
def render_person_crops(batch: SynthBatch, body: AnnyModel, crop_size: int = 128, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, 3, S, S) float crops in [0, 1] of the posed Anny meshes, rendered with hmrkit's CPU
    rasterizer around :func:`crop_box_of` on a random flat background, random body colour and
    pixel noise: the training input of the image encoders (:class:`hmrkit.models.encoders.ImageEncoder`)."""
    from hmrkit.render.rasterizer import render_meshes

    n = batch.batch
    full = torch.eye(3).expand(n, body.num_joints, 3, 3).clone()
    full[:, :NUM_BODY_CORE] = batch.rotations
    vertices = body(full, batch.shape, batch.translation).vertices.numpy()
    faces = body.faces.numpy()
    box = crop_box_of(batch)
    scale = crop_size / box.size
    fx, cx, cy = (torch.as_tensor(v).expand(n) for v in (batch.camera.fx, batch.camera.cx, batch.camera.cy))
    fy = torch.as_tensor(batch.camera.fy).expand(n)
    colours = torch.rand(n, 2, 3, generator=generator)
    crops = []
    for i in range(n):
        # the crop is the image seen by a camera with the same centre, zoomed onto the box
        k = (float(fx[i] * scale[i]), float(fy[i] * scale[i]),
             float((cx[i] - box.center[i, 0]) * scale[i] + (crop_size - 1) / 2),
             float((cy[i] - box.center[i, 1]) * scale[i] + (crop_size - 1) / 2))
        background = tuple(int(c) for c in (colours[i, 0] * 255))
        image = render_meshes([(vertices[i], faces, colours[i, 1].tolist())], k, (crop_size, crop_size), background=background).color
        crops.append(torch.from_numpy(image).permute(2, 0, 1).float() / 255)
    crops = torch.stack(crops)
    return (crops + 0.03 * torch.randn(crops.shape, generator=generator)).clamp(0, 1)
