"""Where Leeds Sports Pose annotators put the hips, measured on the fitted Anny body.

    python benchmarks/calib_lsp_hips.py [--limit N]

Why: the fit aims the mesh's MediaPipe-convention hips at MediaPipe's hip landmarks, but LSP's
labels put the hips elsewhere (MediaPipe's raw hips reach about half the PCK of its shoulders
on LSPET). A mesh can carry a data set's own joint definition, as body models carry joint
regressors per data set; hmrkit's ``lsp14`` hips are the hip joint plus an offset that turns with
the pelvis (``hmrkit/body/anny_keypoints.py``: ``LSP_HIP_COORDS`` in ``pelvis_frame``, mirrored
on the right). This script measures it:

1. the pipeline's optimization-only fit (``estimator=None``: the committed calibration was made
   on it, before HKMR became the default) on the LSPET development photos; each labelled person
   is matched to a found person as in ``bench_pipeline.py pck``;
2. on the EVEN photos only: the pelvis-frame offset whose projection lies nearest the hip labels
   (Cauchy loss, scale 0.1 torso; Adam from zero, the hip joint);
3. on the ODD photos (held out): hip PCK@0.1 / @0.2 of that point against the hip as the mesh
   fits it (Anny's COCO hip), the hip joint centre, and MediaPipe's raw hip.

Writes benchmarks/results/lsp_hip_calibration.{json,md}. The shipped ``LSP_HIP_COORDS`` are the
rounded result.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench_common import machine, write  # the script's own folder
from bench_pipeline import Pipeline, PipelineConfig, labelled_people, load_lsp

from hmrkit.body.anny_keypoints import anny_keypoint_map, lsp_hip_offset
from hmrkit.body.conventions import LSP14, MEDIAPIPE33

SIDES = ("left", "right")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.time()
    _, items = load_lsp(args.limit)
    pipeline = Pipeline(PipelineConfig(with_vertices=False, estimator=None))
    model = pipeline.model
    fitted_hips = anny_keypoint_map(model, MEDIAPIPE33)
    pelvis = model.skeleton.index("pelvis")
    rows = []  # per matched person and side: photo, hip joint, pelvis rotation, fitted hip, MediaPipe, label, torso, camera
    for person in labelled_people(pipeline, LSP14, items):
        if person.fit is None:
            continue
        fit, i = person.fit, person.index
        with torch.no_grad():
            out = model(fit.rotations[i : i + 1], fit.shape[i : i + 1], fit.translation[i : i + 1], with_vertices=False,
                        keypoints=fitted_hips, scales=None if fit.scales is None else fit.scales[i : i + 1])
        for side in SIDES:
            k = LSP14.index(f"{side}_hip")
            if not person.labelled[k]:
                continue
            hip = model.skeleton.index(f"{side}_hip")
            rows.append(dict(photo=person.image, side=side, hip=out.joints[0, hip], pelvis=out.transforms[0, pelvis, :3, :3], person=person,
                             fitted=person.project(out.keypoints[:, [MEDIAPIPE33.index(f"{side}_hip")]])[0, 0],
                             centre=person.project(out.joints[:, [hip]])[0, 0],
                             mediapipe=person.mediapipe[k], label=person.gt[k], torso=person.torso))
    print(f"{len(rows)} labelled hips on found people", flush=True)

    def project(rows_: list[dict], points: torch.Tensor) -> torch.Tensor:
        """Differentiable pinhole projection to original pixels, one point per row."""
        cams = [r["person"].camera for r in rows_]
        f = torch.tensor([[c.fx, c.fy] for c in cams], dtype=torch.float32)
        c = torch.tensor([[c.cx, c.cy] for c in cams], dtype=torch.float32)
        s = torch.tensor([r["person"].scale for r in rows_], dtype=torch.float32)[:, None]
        return ((f * points[:, :2] / points[:, 2:] + c) + 0.5) / s - 0.5

    def point_of(coords: torch.Tensor, rows_: list[dict]) -> torch.Tensor:
        """The lsp14 hip with ``coords``: the hip joint plus the pelvis-turned offset."""
        offsets = {side: lsp_hip_offset(model, side, coords.double()).float() for side in SIDES}
        return torch.stack([r["hip"] + r["pelvis"] @ offsets[r["side"]] for r in rows_])

    train = [r for r in rows if r["photo"] % 2 == 0]
    test = [r for r in rows if r["photo"] % 2 == 1]
    label = torch.tensor(np.stack([r["label"] for r in train]), dtype=torch.float32)
    torso = torch.tensor([r["torso"] for r in train], dtype=torch.float32)
    coords = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.Adam([coords], lr=0.01)
    for _ in range(args.steps):
        error = (project(train, point_of(coords, train)) - label).norm(dim=-1) / torso
        loss = torch.log1p((error / 0.1).square()).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    learned = [round(float(v), 3) for v in coords.detach()]

    def pck(points: np.ndarray, subset: list[dict], alpha: float) -> float:
        error = np.linalg.norm(points - np.stack([r["label"] for r in subset]), axis=1) / np.array([r["torso"] for r in subset])
        return float((error <= alpha).mean())

    with torch.no_grad():
        calibrated = {name: project(subset, point_of(torch.tensor(learned), subset)).numpy() for name, subset in (("even", train), ("odd", test))}
    table = {}
    for name, subset in (("even (calibration)", train), ("odd (held out)", test)):
        key = name.split()[0]
        table[name] = {
            "hips": len(subset),
            "calibrated lsp14 hip": [pck(calibrated[key], subset, a) for a in (0.1, 0.2)],
            "fitted hip (Anny's COCO hip, aimed at MediaPipe's)": [pck(np.stack([r["fitted"] for r in subset]), subset, a) for a in (0.1, 0.2)],
            "hip joint centre": [pck(np.stack([r["centre"] for r in subset]), subset, a) for a in (0.1, 0.2)],
            "MediaPipe raw hip": [pck(np.stack([r["mediapipe"] for r in subset]), subset, a) for a in (0.1, 0.2)],
        }
    payload = {"machine": machine(with_load=True), "command": "python benchmarks/calib_lsp_hips.py" + (f" --limit {args.limit}" if args.limit else ""),
               "seconds": round(time.time() - start), "steps": args.steps, "lsp_hip_coords": learned,
               "frame": "pelvis_frame: origin the hip joint; outwards, up, forwards; unit the hip-joint distance", "pck": table}
    lines = ["# LSP hips on the fitted Anny body", "", f"Machine: {machine(with_load=True)}.", "",
             f"Learned on the even LSPET photos: `LSP_HIP_COORDS = {tuple(learned)}` (outwards, up, forwards, in hip-joint "
             "distances from the hip joint).", "",
             "| hips of found people | n | " + " | ".join(f"{m} @0.1 | @0.2" for m in next(iter(table.values())) if m != "hips") + " |",
             "|---|---|" + "---|---|" * 4]
    for name, r in table.items():
        lines.append(f"| {name} | {r['hips']} | " + " | ".join(f"{v[0]:.3f} | {v[1]:.3f}" for m, v in r.items() if m != "hips") + " |")
    lines += ["", f"Command: `{payload['command']}` ({payload['seconds']} s).", ""]
    write("lsp_hip_calibration", payload, "\n".join(lines))


if __name__ == "__main__":
    main()
