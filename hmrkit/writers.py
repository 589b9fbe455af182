"""Files written for each input: ``<stem>.json``, ``<stem>.npz``, a mesh, an overlay (and a side view).

Nothing existing is replaced unless ``overwrite`` is set; every file is written to a
temporary name first and renamed, so an interrupted run leaves no half-written result.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hmrkit.results import ImageResult, PersonResult, image_to_json


@dataclass(frozen=True)
class OutputOptions:
    json: bool = True
    npz: bool = True
    mesh_format: str | None = "glb"  # "glb", "obj", "ply" or None
    overlay: bool = True
    side_view: bool = False
    overwrite: bool = False


def output_paths(out_dir: Path, stem: str, options: OutputOptions) -> dict[str, Path]:
    paths = {}
    if options.json:
        paths["json"] = out_dir / f"{stem}.json"
    if options.npz:
        paths["npz"] = out_dir / f"{stem}.npz"
    if options.mesh_format:
        paths["mesh"] = out_dir / f"{stem}.{options.mesh_format}"
    if options.overlay:
        paths["overlay"] = out_dir / f"{stem}_overlay.png"
    if options.side_view:
        paths["side"] = out_dir / f"{stem}_side.png"
    return paths


def _atomic_write(path: Path, write, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists (use --overwrite to replace it)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def result_arrays(result: ImageResult) -> dict[str, np.ndarray]:
    """The NPZ content: per-person arrays stacked over people (P), plus names."""
    people = result.people
    arrays: dict[str, np.ndarray] = {
        "camera": np.array([result.camera[k] for k in ("fx", "fy", "cx", "cy")], np.float32),
        "image_size": np.array([result.width, result.height], np.int32),
    }
    for k, hand in enumerate(result.hands_only):
        arrays[f"hand_only_{k}_{hand.side}_joints2d"] = hand.joints2d.astype(np.float32)
        arrays[f"hand_only_{k}_{hand.side}_joints3d"] = hand.joints3d.astype(np.float32)
        if hand.vertices is not None:
            arrays[f"hand_only_{k}_{hand.side}_vertices"] = hand.vertices.astype(np.float32)
            arrays[f"hand_only_{k}_{hand.side}_faces"] = hand.faces.astype(np.int32)
    if not people:
        return arrays
    first = people[0]
    arrays.update(
        joint_names=np.array(first.joint_names),
        pose_names=np.array(first.pose_names),
        shape_names=np.array(first.shape_names),
        boxes=np.array([p.box for p in people], np.float32),
        confidence=np.array([p.confidence for p in people], np.float32),
        joints2d=np.stack([p.joints2d for p in people]).astype(np.float32),
        joints3d=np.stack([p.joints3d for p in people]).astype(np.float32),
        pose_matrices=np.stack([p.pose for p in people]).astype(np.float32),
        shape=np.stack([p.shape for p in people]).astype(np.float32),
        translation=np.stack([p.translation for p in people]).astype(np.float32),
        # (P, 4) per limb (left_arm, right_arm, left_leg, right_leg): 0 present, 1-3 absent from the
        # distal to the proximal level (hmrkit.body.limbs)
        limb_classes=np.stack([p.limbs.classes for p in people]),
    )
    for side in ("left", "right"):
        present = np.array([side in p.hands for p in people])
        arrays[f"{side}_hand_present"] = present
        arrays[f"{side}_hand_joints2d"] = np.stack([p.hands[side].joints2d if side in p.hands else np.full((21, 2), np.nan) for p in people]).astype(np.float32)
        arrays[f"{side}_hand_joints3d"] = np.stack([p.hands[side].joints3d if side in p.hands else np.full((21, 3), np.nan) for p in people]).astype(np.float32)
        arrays[f"{side}_hand_angles"] = np.array([list(p.hands[side].angles.values()) if side in p.hands and p.hands[side].angles
                                                  else [np.nan] * 23 for p in people], np.float32)
    if all(p.vertices is not None for p in people):
        arrays["vertices"] = np.stack([p.vertices for p in people]).astype(np.float32)
        arrays["faces"] = result.faces.astype(np.int32)
    return arrays


def result_meshes(result: ImageResult) -> list[tuple[np.ndarray, np.ndarray, None]]:
    """Everyone's body mesh, then the meshes of hands seen without a body. A person with absent
    limbs loses the collapsed parts' faces (zero area: they would only confuse other tools)."""
    meshes = [(p.vertices, _faces_of(p, result.faces), None) for p in result.people if p.vertices is not None]
    return meshes + [(h.vertices, h.faces, None) for h in result.hands_only if h.vertices is not None]


def _faces_of(person: PersonResult, faces: np.ndarray) -> np.ndarray:
    if not person.limbs.any_absent:
        return faces
    from hmrkit.render.mesh_ops import degenerate_faces  # numba: loaded only when needed

    return faces[~degenerate_faces(person.vertices, faces)]


def overlay_intrinsics(result: ImageResult, rgb: np.ndarray) -> tuple[float, float, float, float]:
    """The result's camera (original pixels) for the possibly downscaled ``rgb``."""
    scale = rgb.shape[1] / result.width
    cam = result.camera
    return cam["fx"] * scale, cam["fy"] * scale, (cam["cx"] + 0.5) * scale - 0.5, (cam["cy"] + 0.5) * scale - 0.5


def render_result_overlay(result: ImageResult, rgb: np.ndarray) -> np.ndarray:
    """Everyone's mesh shaded over the photo (the photo itself when there is no mesh)."""
    from hmrkit.render.overlay import render_overlay

    meshes = result_meshes(result)
    return render_overlay(rgb, meshes, overlay_intrinsics(result, rgb)) if meshes else rgb


def _save_npz(arrays: dict[str, np.ndarray], path: Path) -> None:
    """What ``np.savez_compressed`` writes (``np.load`` reads it the same), at zlib's fastest level:
    a video frame's arrays (three people) took 44 ms at numpy's level 6 against 20 ms at level 1,
    and the file came out no larger (553 vs 549 KB; float32 vertices barely compress; development
    timing)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def _save_png(picture: np.ndarray, path: Path) -> None:
    """Lossless, with zlib's fastest level: PIL's default (6) took 425 ms for a 1920 x 1080 overlay,
    more than finding and fitting its people, against 161 ms at level 1 for a 17 % larger file
    (development timing)."""
    Image.fromarray(picture).save(path, format="PNG", compress_level=1)


def write_result(result: ImageResult, rgb: np.ndarray, out_dir: Path, stem: str, options: OutputOptions) -> dict[str, Path]:
    """Write the requested files; return them by kind. ``rgb`` is the image the fit saw."""
    paths = output_paths(out_dir, stem, options)
    meshes = result_meshes(result)
    if "json" in paths:
        text = json.dumps(image_to_json(result), indent=1)
        _atomic_write(paths["json"], lambda t: t.write_text(text), options.overwrite)
    if "npz" in paths:
        arrays = result_arrays(result)
        _atomic_write(paths["npz"], lambda t: _save_npz(arrays, t), options.overwrite)
    if "mesh" in paths and meshes:
        from hmrkit.render.export import export_meshes

        _atomic_write(paths["mesh"], lambda t: export_meshes(t, meshes, overwrite=True), options.overwrite)
    if "overlay" in paths and meshes:
        picture = render_result_overlay(result, rgb)
        _atomic_write(paths["overlay"], lambda t: _save_png(picture, t), options.overwrite)
    if "side" in paths and meshes:
        from hmrkit.render.overlay import render_side_view

        picture = render_side_view(meshes, overlay_intrinsics(result, rgb), rgb.shape[:2])
        _atomic_write(paths["side"], lambda t: _save_png(picture, t), options.overwrite)
    return {kind: path for kind, path in paths.items() if path.exists()}
