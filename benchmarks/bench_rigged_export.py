"""Rigged exports checked by other programs: the Khronos glTF validator and Blender's importers.

    python benchmarks/bench_rigged_export.py \\
        --validator-node-path /tmp/gltfval/node_modules \\
        --blender-python /tmp/bpyenv/bin/python
    # writes benchmarks/results/rigged_export.{json,md}

1. ``hmrkit run`` on the first ``--frames`` frames of ``../shared/data/demo_images/sample_video.mp4``
   and on the photo ``3dpw_sit_on_street.jpg`` (results kept in ~/.cache/hmrkit/bench/rigged_export_*,
   reused when there), then ``hmrkit export`` (glb, bvh) of every track and person;
2. every rigged .glb through the Khronos validator (``benchmarks/gltf_validate.cjs``; setup:
   ``npm install gltf-validator@2.0.0-dev.3.10`` in a folder outside the repo);
3. Blender (``bpy``, headless, in its own Python: ``pip install bpy`` in a separate venv) imports
   each track's .glb, .bvh and the FBX made from the .glb by ``hmrkit/render/fbx.py``
   (``benchmarks/blender_rig_probe.py``); its bones' heads at every frame of the track are
   compared with hmrkit's joints: the Anny model posed with the JSON's pose, shape, translation
   and bone scales (docs/output.md), turned into the rig's y-up frame.

Missing tools are recorded as not run, never as passed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VIDEO = REPO.parent / "shared" / "data" / "demo_images" / "sample_video.mp4"
PHOTO = REPO.parent / "shared" / "data" / "demo_images" / "3dpw_sit_on_street.jpg"


def hmrkit_joints(motion, body) -> np.ndarray:
    """(T, J, 3) hmrkit's joints of each frame of ``motion``, in the rig's y-up frame."""
    import torch

    from hmrkit.render.rigged import SCENE_FROM_CAMERA

    with torch.no_grad():
        out = body(torch.tensor(motion.rotations).float(), torch.tensor(motion.shapes).float(),
                   torch.tensor(motion.translations).float(), with_vertices=False, scales=torch.tensor(motion.scales).float())
    return out.joints.double().numpy() @ SCENE_FROM_CAMERA.T


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--validator-node-path", type=Path, default=None, help="node_modules holding gltf-validator")
    parser.add_argument("--blender-python", type=Path, default=None, help="a Python with bpy")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "rigged_export")
    args = parser.parse_args()

    import torch

    from hmrkit.body.anny_model import load_anny_body
    from hmrkit.paths import cache_dir
    from hmrkit.render.motion_export import collect_motions, run_export
    from hmrkit.render.rigged import PersonMotion

    torch.set_num_threads(1)
    if not VIDEO.is_file():
        print(f"no sample video at {VIDEO}: nothing measured", file=sys.stderr)
        return 1
    results = cache_dir() / "bench" / f"rigged_export_{args.frames}"
    command = [sys.executable, "-m", "hmrkit.cli", "run", str(VIDEO), "--max-frames", str(args.frames), "--out", str(results)]
    if not (results / "sample_video_overlay.mp4").is_file():
        subprocess.run(command, check=True, cwd=REPO)
    photo_results = cache_dir() / "bench" / "rigged_export_photo"
    photo_command = [sys.executable, "-m", "hmrkit.cli", "run", str(PHOTO), "--out", str(photo_results)]
    if not (photo_results / f"{PHOTO.stem}.json").is_file():
        subprocess.run(photo_command, check=True, cwd=REPO)
    start = time.perf_counter()
    run_export(results, ("glb", "bvh"), overwrite=True, log=lambda line: print(line, file=sys.stderr))
    export_s = time.perf_counter() - start
    run_export(photo_results, ("glb", "bvh"), overwrite=True, log=lambda line: print(line, file=sys.stderr))
    body = load_anny_body()
    tracks = collect_motions(results, list(body.skeleton.names))[0] + collect_motions(photo_results, list(body.skeleton.names))[0]
    report: dict = {
        "command": "python benchmarks/bench_rigged_export.py " + " ".join(sys.argv[1:]),
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}",
        "load_average_1min": os.getloadavg()[0],
        "input": f"{VIDEO.name}, first {args.frames} frames: {' '.join(command[2:])}; {PHOTO.name}: {' '.join(photo_command[2:])}",
        "export_seconds_all_tracks": round(export_s, 2),
        "tracks_and_people": [{"name": t.base.name, "frames": len(t.motion.frame_indices), "fps": t.motion.fps} for t in tracks],
    }

    glbs = [str(t.base.with_name(t.base.name + "_rigged.glb")) for t in tracks]
    if args.validator_node_path:
        lines = subprocess.run(["node", str(REPO / "benchmarks" / "gltf_validate.cjs"), *glbs], check=True, capture_output=True,
                               text=True, env={**os.environ, "NODE_PATH": str(args.validator_node_path)}).stdout.splitlines()
        checked = [json.loads(line) for line in lines]
        report["validator"] = {"version": checked[0]["validatorVersion"],
                               "files": [{k: c[k] for k in ("path", "errors", "warnings", "infos", "hints")} for c in checked],
                               "messages": sorted({m["code"] for c in checked for m in c["messages"]})}
    else:
        report["validator"] = "not run (no --validator-node-path)"

    if args.blender_python:
        with tempfile.TemporaryDirectory(prefix="hmrkit-blender-") as work:
            jobs = []
            for t, glb in zip(tracks, glbs):
                frames, fps = [int(f) for f in t.motion.frame_indices], t.motion.fps or 30.0  # a photo: one frame
                jobs += [{"kind": "glb", "path": glb, "fps": fps, "frames": frames},
                         {"kind": "bvh", "path": str(t.base.with_name(t.base.name + ".bvh")), "fps": fps, "frames": frames},
                         {"kind": "fbx", "path": glb, "out": str(Path(work) / f"{t.base.name}.fbx"), "fps": fps, "frames": frames}]
            (Path(work) / "jobs.json").write_text(json.dumps(jobs))
            subprocess.run([str(args.blender_python), str(REPO / "benchmarks" / "blender_rig_probe.py"), str(Path(work) / "jobs.json"),
                            str(Path(work) / "heads.json")], check=True, cwd=REPO)
            probed = json.loads((Path(work) / "heads.json").read_text())
        names = list(body.skeleton.names)
        rows = []
        for k, t in enumerate(tracks):
            ours = hmrkit_joints(t.motion, body)
            frames = len(t.motion.frame_indices)
            # BVH has one skeleton: hmrkit's joints again with the track's mean build (phenotypes and bone
            # scales), the pelvis kept where each frame has it (as the BVH's root channels keep it)
            mean_shape = np.tile(t.motion.shapes.mean(0), (frames, 1))
            with torch.no_grad():
                pelvis = [body.rest_joints(body.blend_coefficients(torch.tensor(s).float()))[:, 0].double().numpy()
                          for s in (t.motion.shapes, mean_shape)]
            fixed = hmrkit_joints(PersonMotion(t.motion.name, t.motion.rotations, mean_shape, t.motion.translations + pelvis[0] - pelvis[1],
                                               np.tile(t.motion.scales.mean(0), (frames, 1)), t.motion.frame_indices, t.motion.fps), body)
            for item in probed["results"][3 * k : 3 * k + 3]:
                theirs = np.array([[frame[n] for n in names] for frame in item["heads"]])
                error = np.linalg.norm(theirs - ours, axis=-1) * 1000
                error_fixed = np.linalg.norm(theirs - fixed, axis=-1) * 1000
                rows.append({"track": t.base.name, "format": item["kind"], "frames": len(item["heads"]),
                             "keyed_frames_in_blender": item["keyed_frames"],
                             "max_mm": round(float(error.max()), 3), "mean_mm": round(float(error.mean()), 3),
                             "mean_build_max_mm": round(float(error_fixed.max()), 3),
                             "mean_build_mean_mm": round(float(error_fixed.mean()), 3)})
        report["blender"] = {"version": probed["blender"], "comparison": "bone heads vs hmrkit's 52 joints, every frame of each track",
                             "rows": rows}
    else:
        report["blender"] = "not run (no --blender-python)"

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    md = ["# Rigged exports (glTF, BVH, FBX) checked by the Khronos validator and Blender", "",
          f"`{report['command']}` on {report['machine']}; 1-minute load average {report['load_average_1min']:.1f}.",
          f"Input: {report['input']}; `hmrkit export` (glb + bvh) of the video's tracks took {report['export_seconds_all_tracks']} s.", ""]
    if isinstance(report["validator"], dict):
        v = report["validator"]
        md += [f"Khronos glTF validator {v['version']}:", ""]
        md += [f"- {Path(f['path']).name}: {f['errors']} errors, {f['warnings']} warnings, {f['infos']} infos, {f['hints']} hints"
               for f in v["files"]] + [""]
    else:
        md += [f"Khronos glTF validator: {report['validator']}", ""]
    if isinstance(report["blender"], dict):
        md += [f"Blender {report['blender']['version']} (bpy): {report['blender']['comparison']}, millimetres: against the "
               "joints of the JSON's own per-frame parameters, and against the same poses on the track's mean build (mean "
               "phenotypes and bone scales, the pelvis where each frame has it: the one skeleton a BVH can hold).", "",
               "| track | format | frames | max mm | mean mm | max mm, mean build | mean mm, mean build |", "|---|---|---|---|---|---|---|"]
        md += [f"| {r['track']} | {r['format']} | {r['frames']} | {r['max_mm']} | {r['mean_mm']} | {r['mean_build_max_mm']} | "
               f"{r['mean_build_mean_mm']} |" for r in report["blender"]["rows"]]
    else:
        md += [f"Blender: {report['blender']}"]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
