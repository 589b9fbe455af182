"""``hmrkit export OUT_DIR``: rigged files made after the fact from the results ``hmrkit run`` wrote.

Reads every ``*.json`` result under ``OUT_DIR`` (docs/output.md) and writes, beside it, one rig
per person of a photo (``<stem>_person<k>``) and per track of a video
(``<video stem>_track<id>``, next to ``<video stem>_overlay.mp4``), in the formats asked:
``glb`` (skinned, animated glTF: :mod:`hmrkit.render.rigged`), ``bvh``
(:mod:`hmrkit.render.bvh_export`), ``fbx`` (the glTF converted by Blender's Python module,
:mod:`hmrkit.render.fbx`). A video's frame rate comes from its file (the results' ``source``)
or ``--fps``. Only Anny results have this rig; SMPL/SMPL-X results are skipped with a note.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmrkit.errors import HmrkitError
from hmrkit.render.rigged import PersonMotion

FORMATS = ("glb", "bvh", "fbx")
SUFFIXES = {"glb": "_rigged.glb", "bvh": ".bvh", "fbx": ".fbx"}


@dataclass(frozen=True)
class FoundMotion:
    """A person or track found in the results, and where its files go (``base`` + a format's suffix)."""

    base: Path
    motion: PersonMotion


def _person_arrays(person: dict, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from hmrkit.body.limbs import LimbStatus
    from hmrkit.results import model_scales

    if person["pose"]["joint_names"] != names:
        raise HmrkitError("results of another skeleton than this hmrkit's Anny body")
    scales = model_scales(names, person.get("bone_scales", {}), LimbStatus.from_json(person["limbs"]))
    return (np.asarray(person["pose"]["matrices"], np.float64), np.asarray(list(person["shape"].values()), np.float64),
            np.asarray(person["translation"], np.float64), scales)


def video_fps(source: str, out_dir: Path) -> float | None:
    """The frame rate of the video ``source`` (as the results name it: from the working folder or OUT_DIR)."""
    import cv2

    for path in (Path(source), out_dir / source):
        if path.is_file():
            capture = cv2.VideoCapture(str(path))
            try:
                fps = capture.get(cv2.CAP_PROP_FPS)
            finally:
                capture.release()
            if fps and fps > 0:
                return float(fps)
    return None


def collect_motions(out_dir: Path, names: list[str], fps: float | None = None) -> tuple[list[FoundMotion], list[str]]:
    """Every person (photos) and track (videos) of the results under ``out_dir``, and notes on what was skipped."""
    notes: list[str] = []
    found: list[FoundMotion] = []
    tracks: dict[tuple[Path, object], list[tuple[int, dict]]] = defaultdict(list)
    sources: dict[Path, str] = {}
    for path in sorted(out_dir.rglob("*.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # not a result (hmrkit writes its JSON atomically)
        if not isinstance(result, dict) or result.get("schema") != "hmrkit.result":
            continue
        if result.get("body_model") != "anny":
            notes.append(f"{path}: {result.get('body_model')} results have no Anny rig: skipped")
            continue
        frame = result.get("frame_index")
        for k, person in enumerate(result.get("people", [])):
            if frame is None:
                rotations, shape, translation, scales = _person_arrays(person, names)
                found.append(FoundMotion(path.with_name(f"{path.stem}_person{k}"), PersonMotion(
                    f"{path.stem}_person{k}", rotations[None], shape[None], translation[None], scales[None], np.array([0]))))
            else:
                track = person.get("track_id")
                tracks[(path.parent, track if track is not None else f"p{k}")].append((int(frame), person))
                sources[path.parent] = str(result.get("source", ""))
    rates: dict[Path, float | None] = {}
    for (folder, track), frames in sorted(tracks.items(), key=lambda item: (str(item[0][0]), str(item[0][1]))):
        if folder not in rates:
            rates[folder] = fps or video_fps(sources[folder], out_dir)
        if rates[folder] is None:
            notes.append(f"{folder}: cannot read the frame rate of {sources[folder]!r}: pass --fps")
            continue
        frames.sort(key=lambda item: item[0])
        arrays = [_person_arrays(person, names) for _, person in frames]
        name = f"{folder.name}_track{track}"
        found.append(FoundMotion(folder.parent / name, PersonMotion(
            name, np.stack([a[0] for a in arrays]), np.stack([a[1] for a in arrays]), np.stack([a[2] for a in arrays]),
            np.stack([a[3] for a in arrays]), np.array([f for f, _ in frames]), rates[folder])))
    return found, notes


def _write_atomic(path: Path, payload: bytes) -> None:
    """Temporary file + rename (an interrupted export leaves no half file), with the usual permissions."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export_motion(found: FoundMotion, body, formats: tuple[str, ...], overwrite: bool = False, color=None) -> list[Path]:
    """Write ``found``'s rig in ``formats``; existing files are kept unless ``overwrite``. Returns the files written."""
    from hmrkit.render.bvh_export import rig_bvh
    from hmrkit.render.mesh_ops import PALETTE
    from hmrkit.render.rigged import build_rig, rig_glb

    rig = build_rig(found.motion, body)
    written = []
    targets = {fmt: found.base.with_name(found.base.name + SUFFIXES[fmt]) for fmt in formats}
    glb = None
    for fmt, path in targets.items():
        if path.exists() and not overwrite:
            continue
        if fmt in ("glb", "fbx") and glb is None:
            glb = rig_glb(rig, color or PALETTE[0])
        if fmt == "glb":
            _write_atomic(path, glb)
        elif fmt == "bvh":
            _write_atomic(path, rig_bvh(rig, found.motion.frame_indices, found.motion.fps).encode("ascii"))
        else:
            from hmrkit.render.fbx import glb_to_fbx

            glb_to_fbx(glb, path, found.motion.fps)
        written.append(path)
    return written


def run_export(out_dir: Path, formats: tuple[str, ...], fps: float | None = None, overwrite: bool = False, log=print) -> int:
    """The ``hmrkit export`` command: 0 if every rig was written (or was there), 1 otherwise, 2 for bad input."""
    import sys

    if not out_dir.is_dir():
        raise HmrkitError(f"{out_dir}: no such results folder (the --out folder of hmrkit run)")
    if fps is not None and not fps > 0:
        raise HmrkitError("--fps must be positive")
    if "fbx" in formats:
        from hmrkit.render.fbx import require_bpy

        require_bpy()  # before any work: the one line saying how to get it
    from hmrkit.body.anny_model import load_anny_body

    body = load_anny_body()
    found, notes = collect_motions(out_dir, list(body.skeleton.names), fps)
    for note in notes:
        print(f"hmrkit: {note}", file=sys.stderr)
    if not found:
        raise HmrkitError(f"{out_dir}: no Anny results of people to export (run hmrkit run --out {out_dir} first)")
    failed = 0
    for item in found:
        try:
            written = export_motion(item, body, formats, overwrite)
        except (HmrkitError, OSError, ValueError) as error:
            print(f"hmrkit: {item.base.name}: {error}", file=sys.stderr)
            failed += 1
            continue
        what = f"{len(item.motion.frame_indices)} frame(s)" if item.motion.fps else "photo"
        log(f"{item.base.name} ({what}): " + (", ".join(str(p) for p in written) or "already there (--overwrite replaces)"))
    return 1 if failed or any("frame rate" in n for n in notes) else 0
