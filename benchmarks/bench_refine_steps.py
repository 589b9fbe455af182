"""How many Levenberg-Marquardt steps the refinement after HKMR needs: accuracy against fit time.

    python benchmarks/bench_refine_steps.py [--images 500]

The first ``--images`` LSPET photos go through MediaPipe once; every setting then fits the same
detections (``Pipeline.run_with_fit(perception=...)``): HKMR alone, HKMR + (3D stage, 2D stage)
refinement steps, and the optimization alone (the fitter's cold step counts). PCK of the mesh's 12 LSP limb joints as in
``bench_pipeline.py pck`` (torso-normalized; missed people count as wrong); fit time per person =
the pipeline's 'fit' timing summed over photos / people found (one torch thread).
Results: benchmarks/results/refine_steps.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from bench_common import ROOT, machine, write  # the script's own folder
from bench_pipeline import LIMBS, load_lsp, match_labels

sys.path.insert(0, str(ROOT))

from hmrkit.body.anny_keypoints import anny_keypoint_map  # noqa: E402
from hmrkit.fitting.body_fit import BodyFitConfig  # noqa: E402
from hmrkit.io.images import load_image  # noqa: E402
from hmrkit.pipeline import Pipeline, PipelineConfig  # noqa: E402

# (label, refine steps or None for HKMR alone, optimization alone)
COLD = BodyFitConfig()
SETTINGS = [("HKMR alone", None, False)] + [(f"HKMR + ({a}, {b})", (a, b), False)
                                            for a, b in ((0, 5), (1, 5), (2, 5), (1, 8), (2, 10), (2, 15))] + [
    (f"optimization alone ({COLD.iterations_3d}, {COLD.iterations_2d})", None, True)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    conv, items = load_lsp(args.images)
    pipeline = Pipeline(PipelineConfig(with_vertices=False))
    hkmr = pipeline.config.estimator
    lsp = anny_keypoint_map(pipeline.model, conv)
    limbs = [conv.index(n) for n in LIMBS]
    photos = []
    for path, labels in items:
        loaded = load_image(path)
        photos.append((loaded, labels, pipeline.backend.detect(loaded.rgb)))
    rows = []
    raw = {0.1: 0, 0.2: 0}  # MediaPipe's own landmarks (the same in every setting: counted in the first)
    for label, steps, optimization in SETTINGS:
        pipeline.config.estimator = None if optimization else hkmr
        pipeline.config.refine = steps is not None
        if steps is not None:
            pipeline.config.refine_iterations = steps
        hits = {0.1: 0, 0.2: 0}
        counted = people = 0
        fit_ms = 0.0
        start = time.time()
        for n, (loaded, labels, perception) in enumerate(photos):
            result, fit = pipeline.run_with_fit(loaded, perception=perception)
            fit_ms += result.timings_ms.get("fit", 0.0)
            people += len(result.people)
            camera = pipeline.camera(loaded.rgb.shape[1], loaded.rgb.shape[0])
            for person in match_labels(n, labels, conv, result, fit, camera, loaded.scale):
                counted += int(person.labelled[limbs].sum())
                if person.fit is None:
                    continue
                error = np.linalg.norm(person.keypoints2d(pipeline.model, lsp) - person.gt, axis=1)[limbs]
                error_raw = np.linalg.norm(person.mediapipe - person.gt, axis=1)[limbs]
                for a in hits:
                    hits[a] += int((person.labelled[limbs] & (error <= a * person.torso)).sum())
                    if not rows:
                        raw[a] += int((person.labelled[limbs] & (error_raw <= a * person.torso)).sum())
        if not rows:
            rows.append({"method": "MediaPipe raw landmarks", "steps": None, "pck@0.1": raw[0.1] / counted,
                         "pck@0.2": raw[0.2] / counted, "fit_ms_per_person": None, "people": people})
        row = {"method": label, "steps": steps, "pck@0.1": hits[0.1] / counted, "pck@0.2": hits[0.2] / counted,
               "fit_ms_per_person": fit_ms / max(people, 1), "people": people, "seconds": round(time.time() - start)}
        rows.append(row)
        print(row, flush=True)
    payload = {"machine": machine(with_load=True), "command": f"python benchmarks/bench_refine_steps.py --images {args.images}",
               "images": len(photos), "rows": rows}
    lines = [f"# Refinement steps after HKMR: LSPET limb PCK against fit time ({len(photos)} photos)", "",
             f"Machine: {machine(with_load=True)}. Command: `{payload['command']}`. The same MediaPipe detections for every "
             "row; PCK of the mesh's 12 LSP limb joints (torso-normalized, missed people wrong); fit ms per person = the "
             "pipeline's fit timing (regressor + refinement) summed / people, one torch thread.", "",
             "| method | PCK@0.1 | PCK@0.2 | fit ms per person |", "|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['pck@0.1']:.3f} | {r['pck@0.2']:.3f} | "
              + ("" if r["fit_ms_per_person"] is None else f"{r['fit_ms_per_person']:.0f}") + " |" for r in rows]
    write("refine_steps", payload, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
