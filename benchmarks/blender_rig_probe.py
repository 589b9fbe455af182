"""Run by a Python that has Blender's ``bpy`` (not hmrkit's environment): import rigged files with
Blender's own importers and dump every bone's head, per frame, in hmrkit's rig frame (y up).

    BPY_PYTHON benchmarks/blender_rig_probe.py JOBS.json OUT.json

``JOBS.json``: ``[{"kind": "glb"|"bvh"|"fbx", "path": ..., "fps": 30.0, "frames": [video frame numbers]}]``;
``fbx`` jobs first convert the glb at ``path`` with ``hmrkit/render/fbx.py`` (loaded by file path:
hmrkit's other modules need packages this Python lacks). Called by ``bench_rigged_export.py``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import bpy

REPO = Path(__file__).resolve().parents[1]


def blender_to_rig(v) -> list[float]:
    """Blender's z-up world (the importers' default Y-up -> Z-up turn) back to the rig's y-up frame."""
    return [v[0], v[2], -v[1]]


def armature():
    found = [o for o in bpy.context.scene.objects if o.type == "ARMATURE"]
    if len(found) != 1:
        raise RuntimeError(f"expected one armature, Blender made {len(found)}")
    return found[0]


def heads(obj) -> dict[str, list[float]]:
    return {b.name: blender_to_rig(obj.matrix_world @ b.head) for b in obj.pose.bones}


def fresh_scene(fps: float) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = max(1, round(fps))
    scene.render.fps_base = scene.render.fps / fps


def probe(job: dict) -> dict:
    fps, frames, path = job["fps"], job["frames"], job["path"]
    if job["kind"] == "fbx":
        spec = importlib.util.spec_from_file_location("hmrkit_fbx", REPO / "hmrkit" / "render" / "fbx.py")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(REPO))
        spec.loader.exec_module(module)
        fbx_path = Path(job["out"])
        module.glb_to_fbx(Path(path).read_bytes(), fbx_path, fps)
        fresh_scene(fps)
        bpy.ops.import_scene.fbx(filepath=str(fbx_path))
    else:
        fresh_scene(fps)
        if job["kind"] == "glb":
            bpy.ops.import_scene.gltf(filepath=path)
        else:
            bpy.ops.import_anim.bvh(filepath=path, global_scale=0.01, frame_start=0, use_fps_scale=False,
                                    rotate_mode="NATIVE", axis_forward="-Z", axis_up="Y")
    obj = armature()
    scene = bpy.context.scene
    action = obj.animation_data.action if obj.animation_data else None
    keyed = sorted({round(k.co[0], 4) for fc in _fcurves(action) for k in fc.keyframe_points}) if action else []
    if job["kind"] == "glb":  # one key per track frame: where Blender put each of them
        at_frames = keyed if len(keyed) == len(frames) else None
        if not keyed and len(frames) == 1:  # a photo: no animation, the nodes hold the pose
            at_frames = [float(scene.frame_current)]
        GLB_FRAMES[path] = at_frames
    elif job["kind"] == "bvh":  # one key per BVH frame, and BVH frame k is video frame k
        at_frames = [keyed[f] for f in frames] if len(keyed) > max(frames) else None
    else:  # the FBX was baked from the glb's scene at every frame between its first and last key, and
        # Blender's FBX importer starts it at its own first frame: shift the glb's frames onto it
        at_frames = GLB_FRAMES.get(path)
        if at_frames is not None and keyed:
            at_frames = [a - at_frames[0] + keyed[0] for a in at_frames]
    if at_frames is None:
        raise RuntimeError(f"{job['kind']} {path}: {len(keyed)} keyed frames in Blender do not map onto the {len(frames)} video frames")
    out = []
    for at in at_frames:
        scene.frame_set(int(at), subframe=at - int(at))
        out.append(heads(obj))
    return {"kind": job["kind"], "path": path, "keyed_frames": len(keyed), "blender_frames": at_frames, "heads": out}


GLB_FRAMES: dict[str, list[float] | None] = {}  # Blender frames of each glb's keys, for its FBX


def _fcurves(action):
    """An action's F-curves (Blender 5 keeps them in layered channel bags)."""
    if hasattr(action, "fcurves") and action.fcurves:
        return list(action.fcurves)
    curves = []
    for layer in getattr(action, "layers", []):
        for strip in layer.strips:
            for bag in strip.channelbags:
                curves.extend(bag.fcurves)
    return curves


def main() -> int:
    jobs = json.loads(Path(sys.argv[1]).read_text())
    results = [probe(job) for job in jobs]
    Path(sys.argv[2]).write_text(json.dumps({"blender": bpy.app.version_string, "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
