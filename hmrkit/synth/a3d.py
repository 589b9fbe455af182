"""AJAHR's A3D on hmrkit's parts: synthetic people with limb differences, over real backgrounds.

Each sample (AJAHR Sec. 3.2, Supp. A): a pose from mocap or from hmrkit's own fits of real
photos (:mod:`hmrkit.synth.poses`), an Anny body of random age, sex and build, limbs removed
AJAHR's way (the model's collapse ``scales``, :mod:`hmrkit.body.amputation`; a quarter of the
people intact, the rest spread evenly over the 12 types, some with two or three limbs absent),
clothes and skin as vertex colours (:mod:`hmrkit.synth.appearance`), a random light and camera,
rendered with hmrkit's rasterizer over a background with its people removed
(:mod:`hmrkit.synth.backgrounds`). The labels (:class:`hmrkit.synth.dataset.SynthPerson`) add
what hmrkit's MediaPipe backend finds on the finished image: what the pipeline sees at inference.

Every sample draws from its own generator seeded by (seed, index): a set is the same for a seed
whichever samples were made first, so an interrupted run resumes where it stopped.

    python -m hmrkit.synth.a3d --out DIR --count N --seed S [--size 256]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hmrkit.body.amputation import collapse_scales
from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.body.limbs import LIMBS, LimbStatus, removed_keypoints
from hmrkit.data.retarget import mirror_core_rotations
from hmrkit.data.synth_keypoints import CANONICAL_TO_CAMERA, random_shapes
from hmrkit.perception.geometry import iou
from hmrkit.synth import dataset
from hmrkit.synth.appearance import BodyRegions, body_regions, random_outfit, vertex_colours
from hmrkit.synth.backgrounds import BackgroundBank, build_background_bank, data_root, random_crop, training_photo_sources
from hmrkit.synth.camera import CameraSettings, place_person, project
from hmrkit.synth.render import composite, random_light, render_person, visible_box

KIND = "a3d"


@dataclass(frozen=True)
class A3DSettings:
    size: tuple[int, int] = (256, 256)  # height, width
    intact_share: float = 0.25
    absent_count_weights: tuple[float, float, float] = (0.7, 0.22, 0.08)  # one, two, three limbs absent
    fitted_pose_share: float = 0.4  # poses from hmrkit's fits of real photos (when the bank has any)
    mocap_stride: int = 8
    pitch_degrees: float = 12.0  # std of the camera's pitch
    roll_degrees: float = 4.0
    adult_share: float = 0.85
    supersample: int = 2
    fitted_poses: bool = True  # build/use the pose bank of fits
    max_background_hole: float = 0.5  # backgrounds with more inpainted are left out
    crop_candidates: int = 12  # background crops tried; the one showing the least inpainting is taken
    data_root: str = ""  # "" : $HMRKIT_DATA_DIR or ../shared/data
    cache: str = ""  # cleaned backgrounds and the pose bank; "" : hmrkit's cache folder
    camera: CameraSettings = CameraSettings()

    def options(self) -> dict:
        d = asdict(self)
        d.pop("data_root")  # where the data and the cache lie does not change the set
        d.pop("cache")
        return json.loads(json.dumps(d))  # as the manifest will read back (lists, not tuples)


def sample_limbs(rng: np.random.Generator, settings: A3DSettings) -> np.ndarray:
    """(4,) limb classes: intact with ``intact_share``, else 1-3 distinct limbs each absent from a
    uniformly drawn level (so the 12 types are equally frequent)."""
    classes = np.zeros(len(LIMBS), np.int64)
    if rng.random() < settings.intact_share:
        return classes
    weights = np.asarray(settings.absent_count_weights, float)
    count = 1 + int(rng.choice(len(weights), p=weights / weights.sum()))
    limbs = rng.choice(len(LIMBS), count, replace=False)
    classes[limbs] = rng.integers(1, 4, count)
    return classes


def _rotation(axis: int, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    if axis == 1:  # right-handed about y: z -> x
        r[i, j], r[j, i] = s, -s
    return r


class A3DGenerator:
    """Holds the body, the backgrounds, the pose sources and the landmark detector; makes samples."""

    def __init__(self, settings: A3DSettings = A3DSettings(), log=print):
        from hmrkit.body.selection import BodyModelChoice, load_body
        from hmrkit.perception.mediapipe_backend import MediaPipeBackend, MediaPipeConfig
        from hmrkit.synth.poses import fitted_pose_bank, mocap_poses

        self.settings = settings
        cache = Path(settings.cache) if settings.cache else None
        root = data_root(settings.data_root)
        body = load_body(BodyModelChoice())
        self.model, self.keypoints = body.model, body.output_keypoints
        skeleton = self.model.skeleton
        with torch.no_grad():
            rest = self.model(self.model.identity_pose(1))
        self.faces = self.model.faces.numpy()
        self.regions: BodyRegions = body_regions(skeleton.names, skeleton.parents, self.model.skin_weights.numpy(),
                                                 rest.vertices[0].numpy(), rest.joints[0].numpy())
        sources = training_photo_sources(root)
        log(f"backgrounds: cleaning or reading {len(sources)} photos (cached after the first run)")
        self.backgrounds: BackgroundBank = build_background_bank(
            sources, cache=None if cache is None else cache / "backgrounds", progress=_every(50, log, "backgrounds"),
            max_hole=settings.max_background_hole)
        if not len(self.backgrounds):
            raise RuntimeError("no background passed the quality checks")
        log(f"backgrounds: {len(self.backgrounds)} kept, {len(self.backgrounds.rejected)} rejected")
        self.mocap = mocap_poses(settings.mocap_stride)
        self.fitted = None
        if settings.fitted_poses:
            lspet = [p for p in sources if "lspet_dev" in p.parts]
            demo = [p for p in sources if "demo_images" in p.parts]
            log(f"pose bank: fits of {len(lspet) + len(demo)} photos (cached after the first run)")
            self.fitted = fitted_pose_bank(lspet + demo, cache=cache, progress=_every(50, log, "pose bank"))
            log(f"pose bank: {len(self.fitted)} poses")
        # the pipeline's person search, less the face-seeded one (slow; a synthetic person is never
        # small), stopping after two people (ours, and perhaps one left in the background)
        self.detector = MediaPipeBackend(MediaPipeConfig(hands=False, hands_fallback=False, face_seeds=False, max_people=2))

    def close(self) -> None:
        self.detector.close()

    def _pose(self, rng: np.random.Generator) -> np.ndarray:
        """(J, 3, 3) canonical-frame local rotations (fingers included)."""
        s = self.settings
        full = np.tile(np.eye(3, dtype=np.float32), (self.model.num_joints, 1, 1))
        bank = self.fitted
        use_fit = bank is not None and len(bank) > 0 and rng.random() < s.fitted_pose_share
        if use_fit:
            full[:] = bank.rotations[rng.integers(len(bank))]
        else:
            full[:NUM_BODY_CORE] = self.mocap[rng.integers(len(self.mocap))]
            if bank is not None and len(bank) > 0:  # fingers from a fitted hand
                full[NUM_BODY_CORE:] = bank.rotations[rng.integers(len(bank)), NUM_BODY_CORE:]
        if rng.random() < 0.5:
            full[:NUM_BODY_CORE] = mirror_core_rotations(torch.from_numpy(full[:NUM_BODY_CORE])).numpy()
        return full

    @dataset.at_one_thread
    def sample(self, seed: int, index: int) -> tuple[np.ndarray, dataset.SynthPerson]:
        """The image (H, W, 3) uint8 and labels of sample ``index`` of the set of ``seed``."""
        s = self.settings
        rng = np.random.default_rng([seed, index])
        g = torch.Generator().manual_seed(int(rng.integers(2**62)))
        classes = sample_limbs(rng, s)
        status = LimbStatus.from_classes(classes)
        rotations = self._pose(rng)
        yaw = rng.uniform(-np.pi, np.pi)
        pitch, roll = np.radians(rng.normal(0, s.pitch_degrees)), np.radians(rng.normal(0, s.roll_degrees))
        view = _rotation(2, roll) @ _rotation(0, pitch) @ CANONICAL_TO_CAMERA.numpy()
        rotations[0] = (view @ _rotation(1, yaw) @ rotations[0]).astype(np.float32)
        shape = random_shapes(1, s.adult_share, g)
        scales = collapse_scales(self.model.skeleton, status.losses)
        with torch.no_grad():
            out = self.model(torch.from_numpy(rotations)[None], shape, with_vertices=True, keypoints=self.keypoints, scales=scales)
        vertices = out.vertices[0].numpy().astype(np.float64)
        placement = place_person(vertices, s.size, rng, s.camera)
        vertices = vertices + placement.translation
        keypoints3d = out.keypoints[0].numpy() + placement.translation
        # on a removed part: the pipeline's rule (the collapse joint's own keypoint stays, the stump's end)
        absent = removed_keypoints(self.keypoints.names, status)

        colours = vertex_colours(self.regions, random_outfit(rng))
        layer = render_person(vertices, self.faces, colours, placement.intrinsics, s.size, random_light(rng), s.supersample)
        box = visible_box(layer.alpha)
        b = int(rng.integers(len(self.backgrounds)))
        background = random_crop(self.backgrounds.images[b], s.size, rng, self.backgrounds.holes[b], box, s.crop_candidates)
        image = composite(background, layer, rng)
        person = dataset.SynthPerson(
            limb_classes=classes,
            box=box,
            camera=placement.intrinsics.astype(np.float32),
            rotations=rotations.astype(np.float32),
            shape=shape[0].numpy().astype(np.float32),
            translation=placement.translation.astype(np.float32),
            keypoints2d=project(keypoints3d, placement.intrinsics).astype(np.float32),
            keypoints3d=keypoints3d.astype(np.float32),
            keypoints_absent=absent,
            landmarks=self.landmarks(image, box),
            background=self.backgrounds.names[b],
        )
        return image, person

    def landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(33, 3) x, y, visibility of the detection overlapping ``box`` most; NaN when none does."""
        best, best_iou = None, 0.05
        for person in self.detector.detect_pose(image):
            if person.body is None:
                continue
            overlap = iou(person.box, box) if np.isfinite(box).all() else 0.0
            if overlap > best_iou:
                best, best_iou = person.body, overlap
        if best is None:
            return np.full((33, 3), np.nan, np.float32)
        return np.concatenate([best.xy, best.visibility[:, None]], 1).astype(np.float32)


def _every(n: int, log, what: str):
    return lambda i, total: log(f"{what}: {i}/{total}") if i % n == 0 and i else None


def generate(out: Path, count: int, seed: int, settings: A3DSettings = A3DSettings(), log=print,
             generator: A3DGenerator | None = None) -> int:
    """Write samples 0..count-1 of the set into ``out`` (those already there are kept); returns
    how many were made now. ``generator``: one already built with ``settings`` (kept open)."""
    manifest = dataset.SynthManifest(KIND, seed, count, tuple(settings.size), settings.options())
    return dataset.generate_set(out, manifest, lambda: A3DGenerator(settings, log), log, generator)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, A3DSettings]:
    parser = dataset.set_parser("hmrkit synth a3d", "Generate an A3D-style synthetic set (AJAHR).")
    parser.add_argument("--no-fitted-poses", action="store_true", help="mocap poses only (no pose bank of photo fits)")
    args = dataset.parse_set_args(parser, argv)
    return args, A3DSettings(size=(args.size, args.size), fitted_poses=not args.no_fitted_poses)


def main(argv: list[str] | None = None) -> int:
    args, settings = parse_args(argv)
    return dataset.run_command("hmrkit synth a3d", generate, args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
