"""The on-disk form of a synthetic set, shared by its generator, the trainers and the benchmarks.

    DIR/manifest.json         {"format": "hmrkit.synth", "kind": "a3d", "version": 1, "seed", "count", ...}
    DIR/images/000000.jpg     the composited RGB image
    DIR/labels/000000.npz     one :class:`SynthPerson` (plain numpy arrays, no pickled objects);
                              a hand set (kind "hands") holds :class:`hmrkit.synth.hand_dataset.SynthHand`

Labels are read with ``allow_pickle=False``: a set is data, never code. :func:`generate_set`
is every generator's loop: it refuses a folder holding something else, skips finished samples
and writes each sample atomically, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Protocol, TypeVar

import cv2
import numpy as np

FORMAT = "hmrkit.synth"
VERSION = 1
T = TypeVar("T")


@dataclass
class SynthPerson:
    """The labels of one rendered person. 2D in pixels of the image (centres at integers),
    3D in the camera frame (OpenCV, metres)."""

    limb_classes: np.ndarray  # (4,) int64, hmrkit.body.limbs.LIMBS order: 0 present, 1-3 absence level
    box: np.ndarray  # (4,) float32 x0, y0, x1, y1 of the rendered person's visible pixels
    camera: np.ndarray  # (4,) float32 fx, fy, cx, cy
    rotations: np.ndarray  # (J, 3, 3) float32 local joint rotations of the body model's skeleton
    shape: np.ndarray  # (S,) float32 the body model's shape parameters
    translation: np.ndarray  # (3,) float32
    keypoints2d: np.ndarray  # (K, 2) float32, hmrkit.body.conventions.BODY_OUTPUT order
    keypoints3d: np.ndarray  # (K, 3) float32
    keypoints_absent: np.ndarray  # (K,) bool: on a collapsed (absent) part
    landmarks: np.ndarray  # (33, 3) float32 MediaPipe pose landmarks found on the image: x, y px, visibility; NaN: none found
    background: str = ""  # where the background came from (file name), for tracing


@dataclass(frozen=True)
class SynthManifest:
    kind: str  # "a3d" or "hands"
    seed: int
    count: int
    image_size: tuple[int, int]  # height, width
    options: dict  # the generator's settings, as given

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, **asdict(self)}


def image_path(root: Path, index: int) -> Path:
    return Path(root) / "images" / f"{index:06d}.jpg"


def label_path(root: Path, index: int) -> Path:
    return Path(root) / "labels" / f"{index:06d}.npz"


def write_manifest(root: Path, manifest: SynthManifest) -> None:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps(manifest.to_json(), indent=1))


def read_manifest(root: Path) -> SynthManifest:
    path = Path(root) / "manifest.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{root}: not a synthetic set (unreadable manifest.json: {error})") from None
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ValueError(f"{root}: manifest.json is not an {FORMAT} v{VERSION} manifest")
    return SynthManifest(data["kind"], int(data["seed"]), int(data["count"]), tuple(data["image_size"]), dict(data["options"]))


def save_label(path: Path, label) -> None:
    """Write any label dataclass of plain arrays / strings as an ``.npz`` (no pickled objects)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f.name: np.asarray(getattr(label, f.name)) for f in fields(label)}
    np.savez(path, **arrays)


def load_label(path: Path, cls: type[T]) -> T:
    """Read a label dataclass written by :func:`save_label`; ``str`` fields come back as ``str``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            values = {f.name: data[f.name] for f in fields(cls)}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:  # a cut file is not a zip
        raise ValueError(f"{path}: damaged or foreign label file ({error})") from None
    for f in fields(cls):
        if f.type in (str, "str"):
            values[f.name] = str(values[f.name])
    return cls(**values)


def save_person(path: Path, person: SynthPerson) -> None:
    save_label(path, person)


def load_person(path: Path) -> SynthPerson:
    return load_label(path, SynthPerson)


def completed(root: Path) -> list[int]:
    """Indices whose image and label both exist (a generator resumes after these)."""
    labels = Path(root) / "labels"
    found = sorted(int(p.stem) for p in labels.glob("*.npz") if p.stem.isdigit()) if labels.is_dir() else []
    return [i for i in found if image_path(root, i).exists()]


def at_one_thread(make):
    """``make`` run with torch at one thread (the caller's count restored after,
    :func:`hmrkit.pipeline.compute_threads`): on some CPUs the last float digits of a sample depend
    on the thread count, and a seed must give the same sample in ``hmrkit synth`` as in a caller at
    any other count."""

    @functools.wraps(make)
    def run(*args, **kwargs):
        from hmrkit.pipeline import compute_threads  # the pipeline's modules load once, when sampling

        with compute_threads(1, limit_blas=False):
            return make(*args, **kwargs)

    return run


class SampleMaker(Protocol):
    def sample(self, seed: int, index: int) -> tuple[np.ndarray, object]: ...

    def close(self) -> None: ...


def check_output(out: Path, manifest: SynthManifest) -> None:
    """Refuse a folder holding anything but this same set (never overwrite the user's files)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    if not any(out.iterdir()):
        return
    if not (out / "manifest.json").exists():
        raise ValueError(f"{out} is not empty and holds no synthetic set: choose an empty or new folder")
    old = read_manifest(out)
    if (old.kind, old.seed, tuple(old.image_size), old.options) != (manifest.kind, manifest.seed, tuple(manifest.image_size), manifest.options):
        raise ValueError(f"{out} holds another synthetic set ({old.kind}, seed {old.seed}, size {old.image_size[1]}): "
                         "choose an empty or new folder")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_sample(out: Path, index: int, image: np.ndarray, label) -> None:
    """The image (RGB uint8) as JPEG, then its label; each appears complete or not at all."""
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    _write_atomic(image_path(out, index), jpeg.tobytes())
    label_file = label_path(out, index)
    tmp = label_file.with_name(label_file.stem + ".part.npz")
    save_label(tmp, label)
    os.replace(tmp, label_file)


def generate_set(out: Path, manifest: SynthManifest, make: Callable[[], SampleMaker], log=print,
                 maker: SampleMaker | None = None) -> int:
    """Write samples 0..count-1 of ``manifest``'s set into ``out`` (those already there are kept);
    returns how many were made now. ``make`` builds the sample maker only when there is work
    (``maker``: one already built, kept open)."""
    out = Path(out)
    check_output(out, manifest)
    done = set(completed(out))
    todo = [i for i in range(manifest.count) if i not in done]
    write_manifest(out, manifest)
    if not todo:
        log(f"{out}: all {manifest.count} samples already there")
        return 0
    log(f"{out}: {len(done)} samples there, making {len(todo)}")
    own = maker is None
    maker = maker or make()
    start = time.perf_counter()
    try:
        for n, index in enumerate(todo, 1):
            image, label = maker.sample(manifest.seed, index)
            write_sample(out, index, image, label)
            if n % 50 == 0 or n == len(todo):
                rate = n / (time.perf_counter() - start)
                log(f"{n}/{len(todo)} made ({rate:.2f} images/s, {(len(todo) - n) / rate / 60:.1f} min left)")
    finally:
        if own:
            maker.close()
    return len(todo)


def set_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The arguments every ``hmrkit synth`` command takes: --out, --count, --seed, --size."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--out", required=True, type=Path, help="output folder (new, empty, or this same set to resume)")
    parser.add_argument("--count", required=True, type=int, help="number of samples")
    parser.add_argument("--seed", required=True, type=int, help="random seed (same seed: same set)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    return parser


def parse_set_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser``'s arguments, the common ones checked (a bad value is argparse's one-line error)."""
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be >= 1, got {args.count}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if not 64 <= args.size <= 2048:
        parser.error(f"--size must lie in 64..2048, got {args.size}")
    return args


def run_command(prog: str, generate: Callable[..., int], args: argparse.Namespace, settings) -> int:
    """A synth command's body: ``generate(out, count, seed, settings, log)`` with progress on stderr,
    known failures as one line (exit 1) and Ctrl-C as a hint to resume (exit 130)."""
    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        generate(args.out, args.count, args.seed, settings, log)
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (run the same command again to resume)", file=sys.stderr)
        return 130
    return 0
