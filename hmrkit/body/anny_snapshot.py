"""A float32 snapshot of the Anny body model, built once per machine and loaded in milliseconds.

``anny.Anny()`` builds its model data from MakeHuman assets the first time (minutes, and a
~790 MB float64 cache). hmrkit needs only a few tensors of it, so the first use builds Anny in
a temporary cache, keeps what the forward needs as float32 in one ``safetensors`` file in
hmrkit's cache directory (see :func:`hmrkit.paths.cache_dir`), and deletes the rest.

The snapshot is written atomically (temporary file + ``os.replace``), so concurrent processes
never see a partial file. It carries a SHA-256 of its content (:mod:`hmrkit.io.integrity`):
a file that is truncated, damaged anywhere (also inside a tensor), without a digest, or from
another format or Anny version is detected on load and rebuilt (announced on stderr).

Frames: Anny is z-up with the body facing -y. The snapshot is stored in hmrkit's canonical
body frame, SMPL's: x to the body's left, y up, z forward (``CANONICAL_FROM_ANNY``).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from hmrkit.errors import ModelAssetError
from hmrkit.io.integrity import load_verified, save_file
from hmrkit.paths import cache_dir

FORMAT_VERSION = "1"
ANNY_VERSION = "0.6.2"
SNAPSHOT_NAME = f"anny-{ANNY_VERSION}-f32-v{FORMAT_VERSION}.safetensors"

# p_canonical = CANONICAL_FROM_ANNY @ p_anny: (x, y, z) -> (x, z, -y).
CANONICAL_FROM_ANNY = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]], dtype=torch.float64)

TENSOR_KEYS = (
    "template_vertices",  # (V, 3)
    "blendshapes",  # (K, V, 3)
    "template_bone_heads",  # (N, 3)
    "bone_heads_blendshapes",  # (K, N, 3)
    "vertex_bone_weights",  # (V, I)
    "vertex_bone_indices",  # (V, I) int64
    "faces",  # (F, 3) int64
    "phenotype_mask",  # (P, A): which phenotype variations make each blendshape
    "phenotype_projection",  # (P, K): compaction of the phenotype blendshapes
    "coco_weights",  # (23, V): Anny's COCO(+feet) keypoint regressor
)


@dataclass
class AnnyData:
    """The tensors of the Anny body (canonical frame, float32) and the names that go with them."""

    tensors: dict[str, torch.Tensor]
    bone_labels: list[str]
    bone_parents: list[int]
    phenotype_labels: list[str]
    coco_labels: list[str]

    def __getattr__(self, name: str) -> torch.Tensor:
        tensors = self.__dict__.get("tensors", {})
        if name in tensors:
            return tensors[name]
        raise AttributeError(name)

    def bone(self, label: str) -> int:
        return self.bone_labels.index(label)


def snapshot_path() -> Path:
    return cache_dir() / SNAPSHOT_NAME


def build_anny_data() -> AnnyData:
    """Build Anny from its package assets (slow: minutes) and convert what we need."""
    import anny
    import anny.paths

    work = Path(tempfile.mkdtemp(prefix="hmrkit-anny-build-"))
    previous = anny.paths.get_anny_cache_path()
    anny.paths.set_anny_cache_path(work)
    try:
        model = anny.Anny()
        coco = anny.KeypointsRegressor.coco(model)
    finally:
        anny.paths.set_anny_cache_path(previous)
        shutil.rmtree(work, ignore_errors=True)
    rot = CANONICAL_FROM_ANNY.to(model.template_vertices.dtype)

    def canonical(points: torch.Tensor) -> torch.Tensor:
        return points @ rot.T

    data = model.to_model_data()
    tensors = {
        "template_vertices": canonical(data.template_vertices),
        "blendshapes": canonical(data.blendshapes),
        "template_bone_heads": canonical(data.template_bone_heads),
        "bone_heads_blendshapes": canonical(data.bone_heads_blendshapes),
        "vertex_bone_weights": data.vertex_bone_weights,
        "vertex_bone_indices": data.vertex_bone_indices,
        "faces": data.faces,
        "phenotype_mask": data.stacked_phenotype_blend_shapes_mask,
        "phenotype_projection": data.phenotype_blendshape_projection,
        "coco_weights": coco.regression_weights,
    }
    tensors = {k: (v.to(torch.float32) if v.is_floating_point() else v.to(torch.int64)).contiguous() for k, v in tensors.items()}
    return AnnyData(
        tensors=tensors,
        bone_labels=list(model.bone_labels),
        bone_parents=[int(p) for p in model.bone_parents],
        phenotype_labels=list(model.phenotype_labels),
        coco_labels=list(coco.labels),
    )


def save_snapshot(data: AnnyData, path: Path) -> None:
    """Write atomically, with the content digest: a reader sees either no file or a whole one.

    Values are checked here, once: after that the digest vouches for every byte, so loads do not
    scan the tensors again (benchmarks/results/integrity.md)."""
    for key, value in data.tensors.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ModelAssetError(f"the Anny build gave non-finite values in {key!r}; not saved as a snapshot")
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": FORMAT_VERSION,
        "anny_version": ANNY_VERSION,
        "names": json.dumps(
            {
                "bone_labels": data.bone_labels,
                "bone_parents": data.bone_parents,
                "phenotype_labels": data.phenotype_labels,
                "coco_labels": data.coco_labels,
            }
        ),
        "shapes": json.dumps({k: list(v.shape) for k, v in data.tensors.items()}),
    }
    save_file(data.tensors, path, metadata=metadata)


def read_snapshot(path: Path) -> AnnyData:
    """Load and validate a snapshot; raise :class:`ModelAssetError` if it is not a whole, current one."""
    try:  # the content digest first: damage inside a tensor passes every structural check below
        tensors, metadata = load_verified(path, require=True)
    except ModelAssetError as error:
        raise ModelAssetError(f"Anny snapshot unreadable: {error}") from None
    if metadata.get("format") != FORMAT_VERSION or metadata.get("anny_version") != ANNY_VERSION:
        raise ModelAssetError(f"Anny snapshot {path} is from another hmrkit or Anny version")
    try:
        names = json.loads(metadata["names"])
        shapes = json.loads(metadata["shapes"])
    except (KeyError, json.JSONDecodeError):
        raise ModelAssetError(f"Anny snapshot {path} has no valid metadata") from None
    for key in TENSOR_KEYS:
        if key not in tensors or list(tensors[key].shape) != shapes.get(key):
            raise ModelAssetError(f"Anny snapshot {path} lacks tensor {key!r} or has a wrong shape")
    return AnnyData(tensors=tensors, **names)


def load_anny_data(path: Path | None = None, verbose: bool = True) -> AnnyData:
    """The snapshot from the cache; built (and announced) on first use, rebuilt if damaged."""
    path = path or snapshot_path()
    if path.exists():
        try:
            return read_snapshot(path)
        except ModelAssetError as error:
            if verbose:
                print(f"hmrkit: {error}; rebuilding it", file=sys.stderr)
    if verbose:
        print(
            f"hmrkit: building the Anny body model once for this machine (2-4 minutes) into {path}",
            file=sys.stderr,
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ModelAssetError(f"cannot create the cache directory {path.parent}: {error}") from None
    data = build_anny_data()
    save_snapshot(data, path)
    return read_snapshot(path)
