"""Train BPAC-Net (AJAHR's limb classifier) on an A3D synthetic set plus real photos of intact people.

    python -m hmrkit.train.bpac --a3d /work/a3d/train             # = hmrkit train bpac --a3d DIR
    python -m hmrkit.train.bpac --a3d DIR --resume                # continue a run from its checkpoint
    python -m hmrkit.train.bpac --a3d DIR1,DIR2 --init hmrkit/weights/bpac.safetensors   # several sets, fine-tune
    python -m hmrkit.train.bpac --a3d DIR1,DIR2 --imagenet-trunk --head-lr-factor 3 --lr 5e-4 \
        --batch-size 32 --warmup 50 --steps 1500 --threads 2          # the shipped net (BpacLiteNet)

Data:
- the A3D set (:mod:`hmrkit.synth.dataset`): each person's crop and the MediaPipe landmarks found
  on the synthetic image (what the pipeline will give the classifier), labelled with the four limb
  classes; every 10th sample (index % 10 == 9) is held out for validation and calibration;
- real intact people, labelled "present" on every limb, so that the synthetic-to-real gap cannot
  turn ordinary people into amputees: everyone hmrkit's perception finds in the even-numbered
  ``lspet_dev`` photos and in ``demo_images`` (not ``hands/``). Even photos whose number is a
  multiple of 6 are held out for calibration. The odd-numbered ``lspet_dev`` photos and
  ``coco_mini_dev`` are never read here (they measure the false-amputation rate:
  ``benchmarks/bench_bpac.py``). Detections are cached in the run folder;
- with ``--erased``, the same real training people (not the calibration photos) once more with a
  limb erased and once with the same fill painted beside them (:mod:`hmrkit.synth.erase`,
  perception run again on each edit): absent limbs in real pixels, so "real-looking" cannot
  mean "present", and a fill that is not on a limb labelled present. Cut once into
  ``prepared_erased.npz``.

The net is :class:`BpacNet` (ResNet + CBAM from scratch, the paper's design) or, with
``--imagenet-trunk``, :class:`BpacLiteNet` (an ImageNet EfficientNet-Lite0 trunk fine-tuned end to
end, its new layers at ``--head-lr-factor`` x the learning rate).

Every sample is cut once (``prepared_*.npz`` in the run folder; a set folder removed later is read
from there, matched by its path and the crop settings) with room around the crop for
augmentation: random scale, rotation and shift, colour (brightness, contrast, saturation),
landmark and visibility jitter, left-right flips with the limb labels swapped. A batch holds
``real_fraction`` real people; the cross-entropy per head is weighted against class frequency
(AJAHR's loss: the sum over the four heads). At the end the decision threshold is calibrated on
the held-out slices (see :func:`calibrate`) and written into the weights:
one for all four limbs (the default) or one per limb (``--per-limb``).
The run folder holds ``checkpoint.safetensors`` + ``state.json`` (resumable), ``curves.png`` and
``summary.json``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hmrkit.train.options import config_parser
from hmrkit.train.schedule import learning_rate
from hmrkit.body.limbs import LIMBS
from hmrkit.errors import HmrkitError
from hmrkit.geometry.crops import CropBox
from hmrkit.models.bpac_net import (
    NUM_CLASSES,
    NUM_LANDMARKS,
    BpacConfig,
    BpacLiteNet,
    BpacNet,
    build_bpac_net,
    crop_landmarks,
    cut_person,
    decide,
    limb_probabilities,
    mirror,
    net_input,
    person_crop_box,
    save_bpac,
)
from hmrkit.paths import cache_dir, package_dir, weights_dir
from hmrkit.synth.dataset import completed, image_path, label_path, load_person, read_manifest

DATA = package_dir().parent.parent / "shared" / "data"
ROOM = 1.25  # prepared crops cover this x the net's crop, for the augmentation's scale and shift


@dataclass
class BpacTrainConfig:
    a3d: str = ""  # the A3D training set folder(s) (hmrkit synth a3d), comma-separated
    init: str = ""  # start from these BPAC-Net weights (fine-tuning; "" : from scratch)
    imagenet_trunk: bool = False  # BpacLiteNet: an ImageNet EfficientNet-Lite0 trunk, fine-tuned (off: BpacNet from scratch)
    head_lr_factor: float = 1.0  # with --imagenet-trunk: the new layers learn at lr x this, the pretrained trunk at lr
    per_limb: bool = False  # calibrate one threshold per limb (off: on the from-scratch net it overfitted the 194 calibration people, bpac_scratch_diagnosis.md)
    steps: int = 1500
    batch_size: int = 48
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    real_fraction: float = 0.25  # share of real people in a batch (intact ones, and with --erased their edits)
    erased: bool = False  # also real training people with a limb erased, and with a decoy fill beside them (hmrkit.synth.erase)
    class_balance: float = 0.5  # cross-entropy weight per class = (share of the class) ** -class_balance
    false_rate: float = 0.005  # calibration: at most this share of held-out real intact people get any limb called absent
    synth_false_rate: float = 0.02  # ... and at most this share of held-out synthetic people with every limb present
    crop_size: int = 112
    seed: int = 0
    threads: int = 1
    val_every: int = 100
    checkpoint_every: int = 100
    grow_every: int = 0  # every N steps, add the samples the generator finished since (a set still being made; 0: never)
    max_a3d: int = 0  # use only the set's samples with index < N (0: all; benchmarks/bench_bpac.py --a3d-from N tests on the rest)
    data: str = str(DATA)  # the development data (lspet_dev, demo_images)
    run_dir: str = ""  # default: <cache>/train/bpac
    out: str = str(weights_dir() / "bpac.safetensors")
    record: str = str(package_dir().parent / "benchmarks" / "results" / "bpac_train")  # .json + .md of the run ("" for none)
    resume: bool = False

    def run(self) -> Path:
        return Path(self.run_dir) if self.run_dir else cache_dir() / "train" / "bpac"


# -- real intact people ------------------------------------------------------------------------


@dataclass
class Detections:
    """Everyone perception found in a list of photos (cached as plain arrays)."""

    photo: np.ndarray  # (N,) str: the photo's path
    xy: np.ndarray  # (N, 33, 2) float32 pixels
    visibility: np.ndarray  # (N, 33) float32
    box: np.ndarray  # (N, 4) float32
    photos: int  # photos read


def detect_people(paths: list[Path], cache: Path, log=print) -> Detections:
    """Run hmrkit's perception (MediaPipe, the pipeline's settings for photos) on ``paths`` once;
    later calls read ``cache``."""
    from hmrkit.io.images import load_image
    from hmrkit.perception.mediapipe_backend import MediaPipeBackend, MediaPipeConfig

    names = [str(p) for p in paths]
    if cache.exists():
        with np.load(cache, allow_pickle=False) as f:
            if list(f["photos_read"]) == names:
                return Detections(f["photo"], f["xy"], f["visibility"], f["box"], len(names))
    photo, xy, vis, box = [], [], [], []
    start = time.perf_counter()
    with MediaPipeBackend(MediaPipeConfig()) as backend:
        for i, path in enumerate(paths):
            for person in backend.detect(load_image(path).rgb).people:
                if person.body is not None:
                    photo.append(str(path))
                    xy.append(person.body.xy)
                    vis.append(person.body.visibility)
                    box.append(person.box)
            if (i + 1) % 100 == 0:
                log(f"perception: {i + 1}/{len(paths)} photos, {len(photo)} people, {time.perf_counter() - start:.0f} s")
    out = Detections(np.array(photo, dtype=str), np.array(xy, np.float32).reshape(-1, NUM_LANDMARKS, 2),
                     np.array(vis, np.float32).reshape(-1, NUM_LANDMARKS), np.array(box, np.float32).reshape(-1, 4), len(paths))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, photo=out.photo, xy=out.xy, visibility=out.visibility, box=out.box, photos_read=np.array(names, dtype=str))
    return out


def lspet_photos(data: Path, parity: str) -> list[Path]:
    """``lspet_dev`` photos by the parity of their number (im00002.jpg is even)."""
    folder = data / "lspet_dev" / "images"
    if not folder.is_dir():
        raise ValueError(f"{folder} not found: the real intact people come from ../shared/data")
    keep = 0 if parity == "even" else 1
    return sorted(p for p in folder.glob("im*.jpg") if int(p.stem[2:]) % 2 == keep)


def demo_photos(data: Path) -> list[Path]:
    return sorted(p for p in (data / "demo_images").glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def is_calibration_photo(path: str) -> bool:
    """Even lspet photos whose number is a multiple of 6 are held out from training."""
    stem = Path(path).stem
    return "lspet_dev" in path and stem.startswith("im") and int(stem[2:]) % 6 == 0


# -- prepared samples --------------------------------------------------------------------------


@dataclass
class Samples:
    """People cut out once, with room for augmentation: crops of ROOM x the net's crop."""

    crops: np.ndarray  # (N, P, P, 3) uint8
    xy: np.ndarray  # (N, 33, 2) float32 in pixels of the prepared crop (NaN: not found)
    visibility: np.ndarray  # (N, 33) float32
    labels: np.ndarray  # (N, 4) int64 limb classes
    real: np.ndarray  # (N,) bool: a real photo (all limbs present)

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> Samples:
        return Samples(self.crops[index], self.xy[index], self.visibility[index], self.labels[index], self.real[index])

    @staticmethod
    def concat(parts: list[Samples]) -> Samples:
        return Samples(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Samples)))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{f.name: getattr(self, f.name) for f in fields(Samples)})

    @classmethod
    def load(cls, path: Path) -> Samples:
        with np.load(path, allow_pickle=False) as f:
            return cls(**{fl.name: f[fl.name] for fl in fields(cls)})


def prepare_person(rgb: np.ndarray, landmarks_xy: np.ndarray, config: BpacConfig) -> tuple[np.ndarray, np.ndarray]:
    """The person's prepared crop (ROOM x the net's crop around :func:`person_crop_box`) and its
    landmarks in that crop's pixels."""
    box = person_crop_box(landmarks_xy, config.crop_padding)
    size = int(round(config.crop_size * ROOM))
    wide = CropBox(box.center, box.size * (size / config.crop_size))
    return cut_person(rgb, wide, size), crop_landmarks(landmarks_xy, wide, size)


def prepare_a3d(root: Path, config: BpacConfig, stop: int = 0, log=print, start: int = 0) -> tuple[Samples, np.ndarray]:
    """Samples of a synthetic set (people MediaPipe found nothing on are skipped: the pipeline never
    asks about them) and their indices in the set: the complete ones with ``start <= index < stop``
    (``stop`` 0: no end)."""
    from hmrkit.io.images import load_image

    read_manifest(root)
    indices = [i for i in completed(root) if i >= start and (not stop or i < stop)]
    if not indices and not start:
        raise ValueError(f"{root}: no complete samples")
    crops, xys, vis, labels, kept = [], [], [], [], []
    start = time.perf_counter()
    for n, i in enumerate(indices):
        try:  # a sample the generator is still writing reads as damaged: left out
            person = load_person(label_path(root, i))
            rgb = load_image(image_path(root, i)).rgb
        except (ValueError, HmrkitError) as error:
            log(f"skipped sample {i}: {error}")
            continue
        lm = np.asarray(person.landmarks, np.float32)
        if not np.isfinite(lm[:, :2]).all():
            continue
        crop, xy = prepare_person(rgb, lm[:, :2], config)
        crops.append(crop)
        xys.append(xy)
        vis.append(lm[:, 2])
        labels.append(np.asarray(person.limb_classes, np.int64))
        kept.append(i)
        if (n + 1) % 1000 == 0:
            log(f"{root}: {n + 1}/{len(indices)} samples cut, {time.perf_counter() - start:.0f} s")
    size = int(round(config.crop_size * ROOM))
    samples = Samples(np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8),
                      np.stack(xys) if xys else np.zeros((0, NUM_LANDMARKS, 2), np.float32),
                      np.stack(vis).astype(np.float32) if vis else np.zeros((0, NUM_LANDMARKS), np.float32),
                      np.stack(labels) if labels else np.zeros((0, len(LIMBS)), np.int64), np.zeros(len(kept), bool))
    return samples, np.array(kept, np.int64)


def prepare_erased(people: Detections, config: BpacConfig, seed: int, log=print) -> Samples:
    """Real people with a limb erased (labelled with that limb's level) and the same people with a
    decoy fill beside them (every limb present): :func:`hmrkit.synth.erase.edit_person`, perception
    run again on each edited photo. Each person gets the first absence type, in a seeded random
    order, whose limb is in view (``limb_in_view``); people with none are skipped."""
    from hmrkit.body.limbs import ABSENCE_TYPES
    from hmrkit.io.images import load_image
    from hmrkit.perception.mediapipe_backend import MediaPipeBackend, MediaPipeConfig
    from hmrkit.perception.types import BodyLandmarks
    from hmrkit.synth.erase import edit_person, limb_in_view

    rng = np.random.default_rng(seed)
    crops, xys, vis, labels = [], [], [], []
    start = time.perf_counter()
    with MediaPipeBackend(MediaPipeConfig()) as backend:
        def detect(rgb: np.ndarray) -> list[BodyLandmarks]:
            return [p.body for p in backend.detect(rgb).people if p.body is not None]

        rgb, last = None, None
        for n, (name, xy, visibility) in enumerate(zip(people.photo, people.xy, people.visibility)):
            if name != last:
                rgb, last = load_image(name).rgb, name
            body = BodyLandmarks(xy.astype(np.float64), visibility.astype(np.float64), np.zeros((NUM_LANDMARKS, 3)))
            usable = [ABSENCE_TYPES[k] for k in rng.permutation(len(ABSENCE_TYPES))
                      if limb_in_view(body, ABSENCE_TYPES[k][0], rgb.shape[:2])]
            if not usable:
                continue
            for decoy in (False, True):
                edit = edit_person(rgb, body, *usable[0], detect, decoy=decoy)
                if edit is None:
                    continue
                crop, cxy = prepare_person(edit.rgb, edit.body.xy, config)
                crops.append(crop)
                xys.append(cxy)
                vis.append(edit.body.visibility)
                labels.append(edit.limb_classes)
            if (n + 1) % 100 == 0:
                log(f"erased limbs: {n + 1}/{len(people.photo)} people, {len(crops)} edits, {time.perf_counter() - start:.0f} s")
    size = int(round(config.crop_size * ROOM))
    return Samples(np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8),
                   np.stack(xys).astype(np.float32) if xys else np.zeros((0, NUM_LANDMARKS, 2), np.float32),
                   np.stack(vis).astype(np.float32) if vis else np.zeros((0, NUM_LANDMARKS), np.float32),
                   np.stack(labels) if labels else np.zeros((0, len(LIMBS)), np.int64), np.ones(len(crops), bool))


def prepare_real(people: Detections, config: BpacConfig) -> Samples:
    """Samples of detected real people, every limb present."""
    from hmrkit.io.images import load_image

    crops, xys = [], []
    cache: dict[str, np.ndarray] = {}
    for name, xy in zip(people.photo, people.xy):
        if name not in cache:
            cache.clear()
            cache[name] = load_image(name).rgb
        crop, cxy = prepare_person(cache[name], xy, config)
        crops.append(crop)
        xys.append(cxy)
    n = len(people.photo)
    size = int(round(config.crop_size * ROOM))
    return Samples(np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8),
                   np.stack(xys) if xys else np.zeros((0, NUM_LANDMARKS, 2), np.float32),
                   people.visibility.astype(np.float32), np.zeros((n, len(LIMBS)), np.int64), np.ones(n, bool))


# -- augmentation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Augmentation:
    """Random transforms of a training person (ranges are uniform unless said)."""

    scale: float = 0.15  # crop side x [1 - scale, 1 + scale]
    rotation: float = 0.2  # radians, +-
    shift: float = 0.07  # of the crop's half side, +- per axis
    landmark_noise: float = 0.01  # Gaussian sigma, fraction of the crop side
    visibility: float = 0.15  # visibility x [1 - v, 1 + v], clipped to [0, 1]
    saturation: float = 0.4
    contrast: float = 0.3
    brightness: float = 0.3
    flip: float = 0.5  # probability of a left-right flip (labels swapped)


def augment(samples: Samples, config: BpacConfig, generator: torch.Generator,
            aug: Augmentation = Augmentation()) -> tuple[torch.Tensor, torch.Tensor]:
    """The net's input (B, 36, S, S) and labels (B, 4) of prepared samples, randomly transformed."""
    b, p, s = len(samples), samples.crops.shape[1], config.crop_size

    def around_one(spread: float, *shape: int) -> torch.Tensor:
        return 1 + spread * (2 * torch.rand(b, *shape, generator=generator) - 1)

    # output normalized coords o -> prepared-crop normalized coords i = A o + t (grid_sample, align_corners=False)
    scale = around_one(aug.scale)
    angle = aug.rotation * (2 * torch.rand(b, generator=generator) - 1)
    shift = aug.shift * (2 * torch.rand(b, 2, generator=generator) - 1) / ROOM
    cos, sin = torch.cos(angle) * scale / ROOM, torch.sin(angle) * scale / ROOM
    a = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
    images = torch.from_numpy(samples.crops).permute(0, 3, 1, 2).float() / 255.0
    grid = F.affine_grid(torch.cat([a, shift[..., None]], -1), [b, 3, s, s], align_corners=False)
    rgb = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = (2 * torch.from_numpy(samples.xy).float() + 1) / p - 1
    out = torch.linalg.solve(a[:, None], (inside - shift[:, None])[..., None])[..., 0]
    xy = ((out + 1) * s - 1) / 2 + aug.landmark_noise * s * torch.randn(b, NUM_LANDMARKS, 2, generator=generator)
    vis = (torch.from_numpy(samples.visibility).float() * around_one(aug.visibility, NUM_LANDMARKS)).clamp(0, 1)
    gray = rgb.mean(1, keepdim=True)
    rgb = gray + (rgb - gray) * around_one(aug.saturation, 1, 1, 1)
    mean = rgb.mean((1, 2, 3), keepdim=True)
    rgb = ((rgb - mean) * around_one(aug.contrast, 1, 1, 1) + mean) * around_one(aug.brightness, 1, 1, 1)
    labels = torch.from_numpy(samples.labels).clone()
    flip = torch.rand(b, generator=generator) < aug.flip
    if flip.any():
        rgb[flip], xy[flip], vis[flip], labels[flip] = mirror(rgb[flip], xy[flip], vis[flip], labels[flip])
    return net_input(rgb.clamp(0, 1), xy, vis, config), labels


# -- evaluation and calibration ----------------------------------------------------------------


def predict(net: BpacNet | BpacLiteNet, samples: Samples, chunk: int = 128, flip_average: bool = True) -> np.ndarray:
    """(N, 4, 4) class probabilities of prepared samples (their centre crops), as the classifier
    computes them."""
    p, s = samples.crops.shape[1], net.config.crop_size
    lo = (p - s) // 2
    out = [limb_probabilities(net, torch.from_numpy(np.ascontiguousarray(samples.crops[i:i + chunk, lo:lo + s, lo:lo + s])),
                              torch.from_numpy(samples.xy[i:i + chunk] - lo), torch.from_numpy(samples.visibility[i:i + chunk]),
                              flip_average)
           for i in range(0, len(samples), chunk)]
    return torch.cat(out).double().numpy() if out else np.zeros((0, len(LIMBS), NUM_CLASSES))


def scores(probabilities: np.ndarray, labels: np.ndarray, thresholds: np.ndarray | None) -> dict:
    """Per-head accuracy, absent-limb recall, intact-limb false-absence rate, and the share of
    people with every limb present that get any limb called absent; decided by the thresholds,
    or by the most probable class (None)."""
    pred = probabilities.argmax(-1) if thresholds is None else decide(probabilities, thresholds)
    absent = labels > 0
    intact_people = ~absent.any(1)
    return {
        "accuracy": [float((pred[:, k] == labels[:, k]).mean()) for k in range(len(LIMBS))],
        "absent_recall": float((pred[absent] > 0).mean()) if absent.any() else float("nan"),
        "absent_level_accuracy": float((pred[absent] == labels[absent]).mean()) if absent.any() else float("nan"),
        "intact_limb_false_absent": float((pred[~absent] > 0).mean()) if (~absent).any() else float("nan"),
        "intact_people_false_amputation": float((pred[intact_people] > 0).any(1).mean()) if intact_people.any() else float("nan"),
    }


def rate_limit(present: np.ndarray, rate: float) -> float:
    """The largest threshold on P(present) at which at most ``rate`` of these intact people ((N, 4)
    P(present)) get any limb called absent: the limit one held-out slice sets in :func:`calibrate`."""
    return float(np.quantile(present.min(1), rate, method="lower"))


def calibrate(present_real: np.ndarray, present_synth: np.ndarray, false_rate: float, synth_false_rate: float) -> float:
    """One threshold on P(present) for all limbs: the largest at which at most ``false_rate`` of the
    held-out real intact people and at most ``synth_false_rate`` of the held-out synthetic people
    with every limb present have any limb's P(present) below it (never above 0.5). Inputs: (N, 4)
    P(present) of such people. Synthetic people get a looser rate: some are cut by the frame
    edge or hidden by their own pose, where "present" cannot be seen."""
    levels = [rate_limit(p, rate) for p, rate in ((present_real, false_rate), (present_synth, synth_false_rate)) if len(p)]
    if not levels:
        raise ValueError("calibration needs held-out intact people")
    return float(min(min(levels), 0.5))


def calibrate_per_limb(present_real: np.ndarray, present_synth: np.ndarray, absent_synth: np.ndarray,
                       false_rate: float, synth_false_rate: float, grid: int = 40) -> np.ndarray:
    """(4,) thresholds on P(present), one per limb, under :func:`calibrate`'s two constraints on
    people (any limb below its threshold counts), chosen greedily for recall: start from the
    common threshold, then repeatedly raise the one limb's threshold that catches the most more
    held-out synthetic absent limbs while both constraints still hold. ``absent_synth``: (N, 4)
    P(present) of held-out synthetic people, NaN where the limb is present. Candidates: ``grid``
    quantiles of each limb's absent P(present) (never above 0.5). The arms' and legs' P(present)
    are not on one scale (intact arms sit lower), which one threshold cannot follow."""
    start = calibrate(present_real, present_synth, false_rate, synth_false_rate)
    thresholds = np.full(present_real.shape[1], start)
    n_real, n_synth = len(present_real), len(present_synth)
    allowed_real, allowed_synth = np.floor(false_rate * n_real), np.floor(synth_false_rate * n_synth)

    def feasible(t: np.ndarray) -> bool:
        return (int((present_real < t).any(1).sum()) <= allowed_real if n_real else True) and \
               (int((present_synth < t).any(1).sum()) <= allowed_synth if n_synth else True)

    budget_real = int((present_real < thresholds).any(1).sum()) if n_real else 0
    if n_real and budget_real > allowed_real:  # the common threshold's own ties: keep it
        return thresholds
    candidates = [np.unique(np.clip(np.nanquantile(a, np.linspace(0, 1, grid)), 0, 0.5)) if np.isfinite(a).any() else np.array([])
                  for a in absent_synth.T]
    while True:
        best, gain = None, 0
        for k, values in enumerate(candidates):
            for v in values[values > thresholds[k]]:
                t = thresholds.copy()
                t[k] = v
                caught = int(np.nansum(absent_synth[:, k] < v) - np.nansum(absent_synth[:, k] < thresholds[k]))
                if caught > gain and feasible(t):
                    best, gain = t, caught
        if best is None:
            return thresholds
        thresholds = best


# -- checkpoints and curves --------------------------------------------------------------------


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [h for h in history if "loss" in h]
    val = [h for h in history if "val_accuracy" in h]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot([h["step"] for h in train], [h["loss"] for h in train], label="training loss (sum of 4 heads)")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].legend()
    axes[1].plot([h["step"] for h in val], [np.mean(h["val_accuracy"]) for h in val], "o-", label="held-out A3D: mean head accuracy")
    axes[1].plot([h["step"] for h in val], [h["val_absent_recall"] for h in val], "o-", label="held-out A3D: absent-limb recall")
    axes[1].plot([h["step"] for h in val], [h["val_real_false_amputation"] for h in val], "o-",
                 label="held-out real intact: any limb absent")
    axes[1].set_xlabel("step")
    axes[1].set_title("validation (most probable class)")
    axes[1].legend(fontsize=8)
    axes[1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# -- the run -----------------------------------------------------------------------------------


def cached(path: Path, key: dict, build) -> Samples:
    """``build()``'s samples, kept at ``path`` and reused while ``key`` (what they were made from) holds."""
    stamp = path.with_suffix(".json")
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == key:
        return Samples.load(path)
    samples = build()
    samples.save(path)
    stamp.write_text(json.dumps(key))
    return samples


def prepared_without_set(path: Path, key: dict, log=print) -> Samples:
    """The samples a run folder prepared from a set folder that is gone, if they were made from that
    folder with these crop settings (the stamp's sample count is not checked: there is nothing left
    to count); otherwise a one-line error."""
    stamp = path.with_suffix(".json")
    made = json.loads(stamp.read_text()) if path.exists() and stamp.exists() else {}
    if {k: made.get(k) for k in key} != key:
        raise ValueError(f"{key['a3d']} not found (make it with hmrkit synth a3d), and {path.parent} holds no samples prepared from it")
    log(f"{key['a3d']} not found: using the {made.get('samples', '?')} samples prepared from it in {path}")
    return Samples.load(path)


def load_data(cfg: BpacTrainConfig, config: BpacConfig, run: Path, log=print) -> dict[str, Samples]:
    """train / val_synth / val_real samples, cut once and cached in the run folder."""
    crop = {"crop_size": config.crop_size, "crop_padding": config.crop_padding, "room": ROOM}
    parts, indices = [], []
    for n, a3d_root in enumerate(a3d_roots(cfg)):
        name = "prepared_a3d" if n == 0 else f"prepared_a3d_{n}"  # the first set keeps the one-set run's cache
        index_path = run / f"{name}_index.npy"

        def build_a3d(root: Path = a3d_root, index_path: Path = index_path) -> Samples:
            samples, index = prepare_a3d(root, config, cfg.max_a3d, log)
            np.save(index_path, index)
            return samples

        made_from = {"a3d": str(a3d_root.resolve()), "max_a3d": cfg.max_a3d}
        if not a3d_root.is_dir():  # the set was removed after a run prepared it: its prepared samples stand in
            parts.append(prepared_without_set(run / f"{name}.npz", {**made_from, **crop}, log))
        else:
            parts.append(cached(run / f"{name}.npz", {**made_from, **crop,
                                                     "samples": sum(1 for i in completed(a3d_root) if not cfg.max_a3d or i < cfg.max_a3d)},
                                build_a3d))
        indices.append(np.load(index_path))
    a3d, index = Samples.concat(parts), np.concatenate(indices)
    data = Path(cfg.data)
    people = detect_people(lspet_photos(data, "even") + demo_photos(data), run / "detections_real.npz", log)
    real = cached(run / "prepared_real.npz", {"people": len(people.photo), **crop}, lambda: prepare_real(people, config))
    held_real = np.array([is_calibration_photo(p) for p in people.photo], bool)
    held_synth = index % 10 == 9
    edits = []
    if cfg.erased:  # from the training photos only: the calibration photos stay unedited
        training_people = Detections(*(getattr(people, f.name)[~held_real] for f in fields(Detections) if f.name != "photos"),
                                     people.photos)
        edits.append(cached(run / "prepared_erased.npz", {"people": int((~held_real).sum()), "seed": cfg.seed, **crop},
                            lambda: prepare_erased(training_people, config, cfg.seed, log)))
    return {"train": Samples.concat([a3d.take(~held_synth), real.take(~held_real), *edits]),
            "val_synth": a3d.take(held_synth), "val_real": real.take(held_real)}


def a3d_roots(cfg: BpacTrainConfig) -> list[Path]:
    """The training sets named by ``--a3d`` (comma-separated)."""
    roots = [Path(r) for r in cfg.a3d.split(",") if r.strip()]
    if not roots:
        raise ValueError("give the A3D training set: --a3d DIR (made by hmrkit synth a3d)")
    if cfg.grow_every and len(roots) > 1:
        raise ValueError("--grow-every reads one set still being made: give one --a3d folder")
    return roots


def grow(cfg: BpacTrainConfig, config: BpacConfig, data: dict[str, Samples], seen: int, log=print) -> int:
    """Add the set's samples completed after index ``seen`` (except the newest, which may still be
    being written) to the training and held-out slices; returns the highest index now read."""
    done = [i for i in completed(Path(cfg.a3d)) if i > seen and (not cfg.max_a3d or i < cfg.max_a3d)]
    if len(done) < 2:
        return seen
    new, index = prepare_a3d(Path(cfg.a3d), config, done[-1], log, start=seen + 1)
    held = index % 10 == 9
    data["train"] = Samples.concat([data["train"], new.take(~held)])
    data["val_synth"] = Samples.concat([data["val_synth"], new.take(held)])
    log(f"added {len(new)} synthetic people (samples {seen + 1}-{done[-1] - 1})")
    return done[-1] - 1


def train(cfg: BpacTrainConfig, log=print) -> dict:
    from hmrkit.train.hkmr import load_checkpoint, save_checkpoint

    a3d_roots(cfg)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    run = cfg.run()
    run.mkdir(parents=True, exist_ok=True)
    config = BpacConfig(crop_size=cfg.crop_size, imagenet_trunk=cfg.imagenet_trunk)
    data = load_data(cfg, config, run, log)
    seen = int(np.load(run / "prepared_a3d_index.npy").max(initial=-1))
    train_set = data["train"]
    real_index, synth_index = np.flatnonzero(train_set.real), np.flatnonzero(~train_set.real)
    log(f"training people: {len(synth_index)} synthetic, {len(real_index)} real; held out: "
        f"{len(data['val_synth'])} synthetic, {len(data['val_real'])} real")
    counts = np.stack([np.bincount(train_set.labels[:, k], minlength=NUM_CLASSES) for k in range(len(LIMBS))]) + 1.0
    class_weights = torch.tensor((counts / counts.sum(1, keepdims=True)) ** -cfg.class_balance, dtype=torch.float32)
    class_weights /= (class_weights * torch.tensor(counts / counts.sum(1, keepdims=True), dtype=torch.float32)).sum(1, keepdim=True)

    net = build_bpac_net(config)
    if isinstance(net, BpacLiteNet) and not cfg.init:
        net.start_from_imagenet()
    if cfg.init:
        from hmrkit.models.bpac_net import load_bpac

        start_net, _, _ = load_bpac(cfg.init)
        if start_net.config != config:
            raise ValueError(f"--init {cfg.init}: its net ({start_net.config}) is not this run's ({config})")
        net.load_state_dict(start_net.state_dict())
        log(f"starting from {cfg.init}")
    trunk = list(net.trunk.parameters()) if isinstance(net, BpacLiteNet) else []
    in_trunk = {id(p) for p in trunk}
    new = [p for p in net.parameters() if id(p) not in in_trunk]
    groups = [{"params": trunk, "factor": 1.0}] if trunk else []
    groups.append({"params": new, "factor": cfg.head_lr_factor if trunk else 1.0})
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, elapsed, history = 0, 0.0, []
    if cfg.resume and (run / "checkpoint.safetensors").exists():
        meta = load_checkpoint(run, {"model": net}, {"model": optimizer})
        step, elapsed, history = meta["step"], meta["seconds"], meta["history"]
        log(f"resumed {run} at step {step}")
    log(f"BPAC-Net: {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters; run folder {run}")
    start = time.perf_counter() - elapsed
    window, window_steps = 0.0, 0
    n_real = int(round(cfg.batch_size * cfg.real_fraction)) if len(real_index) else 0
    while step < cfg.steps:
        if cfg.grow_every and step % cfg.grow_every == 0 and step:
            seen = grow(cfg, config, data, seen, log)
            train_set = data["train"]
            synth_index = np.flatnonzero(~train_set.real)
            real_index = np.flatnonzero(train_set.real)
        net.train()
        rng = np.random.default_rng(cfg.seed * 1_000_003 + step)
        pick = np.concatenate([rng.choice(real_index, n_real), rng.choice(synth_index, cfg.batch_size - n_real)])
        x, labels = augment(train_set.take(pick), config, torch.Generator().manual_seed(cfg.seed * 1_000_003 + step))
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step) * group["factor"]
        logits = net(x).logits
        loss = sum(F.cross_entropy(logits[:, k], labels[:, k], weight=class_weights[k]) for k in range(len(LIMBS)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        window, window_steps = window + float(loss.detach()), window_steps + 1
        last = step == cfg.steps
        if step % cfg.val_every == 0 or last:
            synth = scores(predict(net, data["val_synth"], flip_average=False), data["val_synth"].labels, None)
            real = scores(predict(net, data["val_real"], flip_average=False), data["val_real"].labels, None)
            row = {"step": step, "seconds": round(time.perf_counter() - start, 1), "lr": learning_rate(cfg, step - 1),
                   "loss": round(window / window_steps, 4), "val_accuracy": [round(a, 4) for a in synth["accuracy"]],
                   "val_absent_recall": round(synth["absent_recall"], 4),
                   "val_real_false_amputation": round(real["intact_people_false_amputation"], 4)}
            history.append(row)
            window, window_steps = 0.0, 0
            log(json.dumps(row))
        if step % cfg.checkpoint_every == 0 or last:
            meta = {"step": step, "seconds": time.perf_counter() - start, "history": history, "config": asdict(cfg)}
            save_checkpoint(run, {"model": net}, {"model": optimizer}, meta)
            plot_curves(history, run / "curves.png")
    seconds = time.perf_counter() - start

    probs_synth, probs_real = predict(net, data["val_synth"]), predict(net, data["val_real"])
    intact_synth = ~(data["val_synth"].labels > 0).any(1)
    threshold = calibrate(probs_real[..., 0], probs_synth[intact_synth][..., 0], cfg.false_rate, cfg.synth_false_rate)
    thresholds = np.full(len(LIMBS), threshold)
    if cfg.per_limb:
        absent_synth = np.where(data["val_synth"].labels > 0, probs_synth[..., 0], np.nan)
        thresholds = calibrate_per_limb(probs_real[..., 0], probs_synth[intact_synth][..., 0], absent_synth,
                                        cfg.false_rate, cfg.synth_false_rate)
    summary = {
        "steps": step, "batch_size": cfg.batch_size, "seconds": round(seconds, 1), "config": asdict(cfg),
        "net": asdict(config), "parameters": sum(p.numel() for p in net.parameters()),
        "people": {"train_synthetic": len(synth_index), "train_real": len(real_index),
                   "held_out_synthetic": len(data["val_synth"]), "held_out_real": len(data["val_real"])},
        "threshold": threshold, "thresholds": thresholds.tolist(), "a3d_last_index": seen,
        "held_out_synthetic": scores(probs_synth, data["val_synth"].labels, thresholds),
        "held_out_real": scores(probs_real, data["val_real"].labels, thresholds),
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, {cfg.threads} thread(s), "
                   f"load average {os.getloadavg()[0]:.1f} at the end",
    }
    notes = {"steps": str(step), "seconds": f"{seconds:.0f}", "threshold": ", ".join(f"{t:.4f}" for t in thresholds)}
    save_bpac(net, thresholds, cfg.out, notes)
    (run / "summary.json").write_text(json.dumps(summary, indent=1))
    if cfg.record:
        write_record(Path(cfg.record), summary, history)
    log(f"wrote {cfg.out} ({seconds:.0f} s); thresholds {np.round(thresholds, 4).tolist()}; "
        f"held-out synthetic {summary['held_out_synthetic']}; held-out real {summary['held_out_real']}")
    return summary


def write_record(stem: Path, summary: dict, history: list[dict]) -> None:
    """The training record: ``stem.json`` (summary and curve points) and ``stem.md`` (a short table)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps({**summary, "history": history}, indent=1))
    rows = []
    for name in ("held_out_synthetic", "held_out_real"):
        r = summary[name]
        acc = ", ".join(f"{limb} {a:.3f}" for limb, a in zip(LIMBS, r["accuracy"]))
        rows.append(f"| {name.replace('_', ' ')} | {summary['people'][name]} | {acc} | {r['absent_recall']:.3f} | "
                    f"{r['absent_level_accuracy']:.3f} | {100 * r['intact_people_false_amputation']:.2f} % |")
    cfg = summary["config"]
    stem.with_suffix(".md").write_text("\n".join([
        "# BPAC-Net training run (hmrkit.train.bpac)", "",
        f"Machine: {summary['machine']}. {summary['steps']} steps of batch {summary['batch_size']} in {summary['seconds']:.0f} s; "
        f"{summary['parameters']} parameters; A3D set `{cfg['a3d']}`.", "",
        f"Training people: {summary['people']['train_synthetic']} synthetic, {summary['people']['train_real']} real"
        f"{' (intact people, and the same with a limb erased or a decoy fill: --erased)' if cfg.get('erased') else ' intact'}. "
        f"Calibrated thresholds on P(present) ({', '.join(LIMBS)}): "
        f"{', '.join(f'{t:.4f}' for t in summary.get('thresholds', [summary['threshold']] * len(LIMBS)))} (held-out real intact people at most "
        f"{100 * cfg['false_rate']:.1f} %, held-out synthetic intact people at most {100 * cfg['synth_false_rate']:.1f} %).", "",
        "Held-out slices of the training data (used for the calibration itself, so not an independent test: "
        "`benchmarks/results/bpac.md` is):", "",
        "| slice | people | accuracy per head | absent recall | absent level accuracy | intact people with a limb called absent |",
        "|---|---|---|---|---|---|", *rows, ""]))


def parse_args(argv: list[str] | None = None) -> BpacTrainConfig:
    parser = config_parser(BpacTrainConfig, "python -m hmrkit.train.bpac", __doc__.splitlines()[0])
    return BpacTrainConfig(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        train(cfg)
    except (ValueError, HmrkitError) as error:  # bad data, options or --init weights: one line
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
