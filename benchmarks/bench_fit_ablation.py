"""What each choice of the body fit is worth on real photos: LSPET PCK per fit setting, every
setting on the same MediaPipe landmarks (perception runs once per photo), on the optimization-only
path (`PipelineConfig(estimator=None)`; the HKMR path refines with the same fit).

    python benchmarks/bench_fit_ablation.py [--limit N]

Settings (``PipelineConfig.fit``, a ``BodyFitConfig``): the default, then the default with one
choice undone, then all of them undone (the fit as it was before 2026-12-04):
- ``iterations_2d=10``: 10 instead of 20 Levenberg-Marquardt steps in the 2D stage;
- ``bone_scale_joints=()``: no per-limb bone scales;
- ``weigh_unseen=False``: landmarks MediaPipe calls unseen (visibility < 0.2) weigh nothing
  instead of their visibility;
- ``pose_hand_point_weight=1``: the pose's knuckle points at full weight (the earlier rule kept
  a fifth only when a hand was found; on LSPET photos hands are rarely found).
Per setting: PCK@0.1 / @0.2 of the 12 limb joints (people matched and missed as in
``bench_pipeline.py pck``) for the mesh's fitted points (its MediaPipe-convention keypoints) and
for its lsp14 joints; the median distance of the fitted limb points to MediaPipe's own
landmarks (torso units: how closely the fit follows what it aims at); the mean forearm length
ratio mesh / MediaPipe in 2D where both ends are seen; fit time per person.
Results: benchmarks/results/fit_ablation.{json,md} (with --limit N: fit_ablation_firstN).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from bench_common import machine, write  # the script's own folder
from bench_pipeline import LIMBS, load_image, load_lsp, match_labels

from hmrkit.body.anny_keypoints import anny_keypoint_map
from hmrkit.body.conventions import LSP14, MEDIAPIPE33
from hmrkit.fitting.body_fit import BodyFitConfig
from hmrkit.fitting.targets import FIT_KEYPOINTS
from hmrkit.pipeline import Pipeline, PipelineConfig

DEFAULT = BodyFitConfig()
UNDONE = {"iterations_2d": 10, "bone_scale_joints": (), "weigh_unseen": False, "pose_hand_point_weight": 1.0}
SETTINGS = {"default": DEFAULT, **{f"{k}={v!r}": replace(DEFAULT, **{k: v}) for k, v in UNDONE.items()},
            "all four undone (the earlier fit)": replace(DEFAULT, **UNDONE)}
FOREARMS = [(MEDIAPIPE33.index(f"{s}_elbow"), MEDIAPIPE33.index(f"{s}_wrist")) for s in ("left", "right")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.time()
    _, items = load_lsp(args.limit)
    pipelines = {name: Pipeline(PipelineConfig(with_vertices=False, fit=fit, estimator=None)) for name, fit in SETTINGS.items()}
    first = next(iter(pipelines.values()))
    lsp_map = anny_keypoint_map(first.model, LSP14)
    limbs = [LSP14.index(n) for n in LIMBS]
    fitted_index = [FIT_KEYPOINTS.index(n) for n in LIMBS]
    mp_limbs = [MEDIAPIPE33.index(n) for n in LIMBS]
    stats = {name: {"fitted": np.zeros((2, 12)), "lsp14": np.zeros((2, 12)), "to_mediapipe": [], "forearm": [], "fit_ms": 0.0}
             for name in SETTINGS}
    mediapipe, counted, people, found = np.zeros((2, 12)), np.zeros(12), 0, 0
    for n_img, (path, labels) in enumerate(items):
        loaded = load_image(path)
        perception = first.backend.detect(loaded.rgb)
        camera = first.camera(loaded.rgb.shape[1], loaded.rgb.shape[0])
        for name, pipeline in pipelines.items():
            result, fit = pipeline.run_with_fit(loaded, str(path), perception=perception)
            s = stats[name]
            s["fit_ms"] += result.timings_ms.get("fit", 0.0) + result.timings_ms.get("hands", 0.0)
            for person in match_labels(n_img, labels, LSP14, result, fit, camera, loaded.scale):
                if name == "default":
                    people += 1
                    counted += person.labelled[limbs]
                if person.fit is None:
                    continue
                gt, ok, torso = person.gt[limbs], person.labelled[limbs], person.torso
                fitted = person.keypoints2d(pipeline.model, pipeline.fit_keypoints)
                lsp = person.keypoints2d(pipeline.model, lsp_map)
                raw = (result.detections[person.index].body.xy + 0.5) / loaded.scale - 0.5
                for a, alpha in enumerate((0.1, 0.2)):
                    s["fitted"][a] += ok & (np.linalg.norm(fitted[fitted_index] - gt, axis=1) <= alpha * torso)
                    s["lsp14"][a] += ok & (np.linalg.norm(lsp[limbs] - gt, axis=1) <= alpha * torso)
                    if name == "default":
                        mediapipe[a] += ok & (np.linalg.norm(raw[mp_limbs] - gt, axis=1) <= alpha * torso)
                if name == "default":
                    found += 1
                s["to_mediapipe"] += list(np.linalg.norm(fitted[fitted_index] - raw[mp_limbs], axis=1) / torso)
                vis = result.detections[person.index].body.visibility
                for e, w in FOREARMS:
                    if min(vis[e], vis[w]) >= 0.8 and np.linalg.norm(raw[w] - raw[e]) > 3:
                        s["forearm"].append(np.linalg.norm(fitted[w] - fitted[e]) / np.linalg.norm(raw[w] - raw[e]))
        if (n_img + 1) % 50 == 0:
            print(f"{n_img + 1}/{len(items)} images, {time.time() - start:.0f} s", flush=True)
    total = counted.sum()
    rows = {"MediaPipe raw landmarks": {"pck@0.1": mediapipe[0].sum() / total, "pck@0.2": mediapipe[1].sum() / total}}
    for name, s in stats.items():
        rows[name] = {"fitted pck@0.1": s["fitted"][0].sum() / total, "fitted pck@0.2": s["fitted"][1].sum() / total,
                      "lsp14 pck@0.1": s["lsp14"][0].sum() / total, "lsp14 pck@0.2": s["lsp14"][1].sum() / total,
                      "median distance to MediaPipe (torso)": float(np.median(s["to_mediapipe"])),
                      "forearm length mesh / MediaPipe (median)": float(np.median(s["forearm"])),
                      "fit + hand IK ms per person": s["fit_ms"] / max(found, 1)}
    rows = {k: {m: round(float(v), 4) for m, v in r.items()} for k, r in rows.items()}
    command = "python benchmarks/bench_fit_ablation.py" + (f" --limit {args.limit}" if args.limit else "")
    payload = {"machine": machine(with_load=True), "command": command, "images": len(items), "people_labelled": people,
               "people_found": found, "seconds": round(time.time() - start), "rows": rows}
    lines = [f"# Body fit settings on LSPET, optimization-only path ({len(items)} photos, {people} labelled people, {found} found)", "",
             f"Machine: {payload['machine']}. 12 limb joints, torso-normalized PCK; every setting fits the same "
             "MediaPipe landmarks. 'fitted': the mesh's points aimed at MediaPipe's landmarks; 'lsp14': the mesh's LSP joints "
             "(calibrated hips). Distance and forearm ratio: the fitted limb points against MediaPipe's own.", "",
             "| setting | fitted PCK@0.1 | @0.2 | lsp14 PCK@0.1 | @0.2 | median distance to MediaPipe | forearm mesh / MediaPipe | fit + hand IK ms / person |",
             "|---|---|---|---|---|---|---|---|",
             f"| MediaPipe raw landmarks | {rows['MediaPipe raw landmarks']['pck@0.1']:.3f} | {rows['MediaPipe raw landmarks']['pck@0.2']:.3f} | | | | | |"]
    for name in SETTINGS:
        r = rows[name]
        lines.append(f"| {name} | {r['fitted pck@0.1']:.3f} | {r['fitted pck@0.2']:.3f} | {r['lsp14 pck@0.1']:.3f} | {r['lsp14 pck@0.2']:.3f} | "
                     f"{r['median distance to MediaPipe (torso)']:.4f} | {r['forearm length mesh / MediaPipe (median)']:.3f} | "
                     f"{r['fit + hand IK ms per person']:.0f} |")
    lines += ["", f"Command: `{command}` ({payload['seconds']} s).", ""]
    write("fit_ablation" + (f"_first{args.limit}" if args.limit else ""), payload, "\n".join(lines))  # a subset keeps the whole-set results


if __name__ == "__main__":
    main()
