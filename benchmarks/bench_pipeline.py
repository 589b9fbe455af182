"""Pipeline benchmarks: latency per stage on the demo photos, and 2D accuracy (PCK) on real photos.

    python benchmarks/bench_pipeline.py latency
    python benchmarks/bench_pipeline.py pck --dataset lsp  [--limit N]
    python benchmarks/bench_pipeline.py pck --dataset coco

PCK compares, on the same images and the same matched person, MediaPipe's raw landmarks and
the fitted mesh's projected joints against the labels. A labelled joint counts as correct
when it lies within alpha x torso (distance from the left shoulder to the right hip label,
the usual LSP convention); people whose torso labels are missing are left out; a labelled
person hmrkit did not find counts as wrong on every joint, for both columns.
Results: benchmarks/results/pipeline_latency.{json,md}, pipeline_pck_<dataset>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from bench_common import DATA, ROOT, machine, write  # the script's own folder

sys.path.insert(0, str(ROOT))

from hmrkit.body.anny_keypoints import anny_keypoint_map  # noqa: E402
from hmrkit.body.conventions import COCO17, LSP14, MEDIAPIPE33, Convention  # noqa: E402
from hmrkit.geometry.cameras import perspective_project  # noqa: E402
from hmrkit.io.images import load_image  # noqa: E402
from hmrkit.pipeline import Pipeline, PipelineConfig  # noqa: E402
from hmrkit.writers import render_result_overlay  # noqa: E402

LIMBS = tuple(f"{s}_{j}" for s in ("left", "right") for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"))


# -- latency -----------------------------------------------------------------------------------
def latency(args) -> None:
    images = sorted(p for p in (DATA / "demo_images").glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    pipeline = Pipeline(make_config(args))
    first = load_image(images[0])
    render_result_overlay(pipeline.run(first), first.rgb)  # warm-up: graphs, numba cache, renderer
    rows = []
    for path in images:
        loaded = load_image(path)
        start = time.perf_counter()
        result = pipeline.run(loaded, str(path))
        t_render = time.perf_counter()
        render_result_overlay(result, loaded.rgb)
        end = time.perf_counter()
        n = len(result.people)
        hands = sum(len(p.hands) for p in result.people)
        row = {"image": path.name, "size": list(loaded.rgb.shape[1::-1]), "people": n, "hand_count": hands,
               **{k: round(v, 1) for k, v in result.timings_ms.items()},
               "render": round((end - t_render) * 1000, 1), "total": round((end - start) * 1000, 1)}
        rows.append(row)
        print(row, flush=True)
    with_people = [r for r in rows if r["people"]]
    per_person = {k: float(np.sum([r.get(k, 0) for r in with_people]) / max(1, sum(r["people"] for r in with_people)))
                  for k in ("perception", "hands", "fit", "mesh", "render", "total")}
    payload = {"machine": machine(with_load=True), "command": f"python benchmarks/bench_pipeline.py{flags(args)} latency", "images": rows,
               "per_person_ms": per_person}
    lines = [f"# Pipeline latency ({describe(args)})", "", f"Machine: {machine(with_load=True)}. Demo photos in `../shared/data/demo_images`; "
             "one warm-up image first; times in ms; 'total' = perception + fit + mesh + overlay rendering.", "",
             "| image | px | people | hands found | perception | hand IK | fit | mesh | render | total |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['image']} | {r['size'][0]}x{r['size'][1]} | {r['people']} | {r['hand_count']} | {r.get('perception', 0)} | {r.get('hands', 0)} | "
                     f"{r.get('fit', 0)} | {r.get('mesh', 0)} | {r['render']} | {r['total']} |")
    lines += ["", "Per person (sum over images with people / number of people): " +
              ", ".join(f"{k} {v:.0f} ms" for k, v in per_person.items()), ""]
    write(f"pipeline_latency{suffix(args)}", payload, "\n".join(lines))


# -- PCK ---------------------------------------------------------------------------------------
def load_lsp(limit: int | None):
    d = np.load(DATA / "lspet_dev" / "joints.npz")
    names = [str(n) for n in d["joint_names"]]
    assert tuple(names) == LSP14.names, names
    items = []
    for i, name in enumerate(d["image_names"][:limit]):
        joints = d["joints"][i]
        labelled = (joints[:, 2] > 0) & (joints[:, 0] > 0) & (joints[:, 1] > 0)
        items.append((DATA / "lspet_dev" / "images" / str(name), [(joints[:, :2], labelled)]))
    return LSP14, items


def load_coco(limit: int | None):
    meta = json.loads((DATA / "coco_mini_dev" / "person_keypoints_train2017.json").read_text())
    by_image: dict[int, list] = {}
    for a in meta["annotations"]:
        if a["num_keypoints"] > 0 and not a.get("iscrowd"):
            k = np.array(a["keypoints"], np.float32).reshape(17, 3)
            by_image.setdefault(a["image_id"], []).append((k[:, :2], k[:, 2] > 0))
    files = {im["id"]: im["file_name"] for im in meta["images"]}
    items = [(DATA / "coco_mini_dev" / "images" / files[i], people) for i, people in sorted(by_image.items())]
    return COCO17, items[:limit]


def torso(points: np.ndarray, labelled: np.ndarray, conv: Convention) -> float:
    a, b = conv.index("left_shoulder"), conv.index("right_hip")
    return float(np.linalg.norm(points[a] - points[b])) if labelled[a] and labelled[b] else 0.0


def pck(args) -> None:
    conv, items = (load_lsp if args.dataset == "lsp" else load_coco)(args.limit)
    pipeline = Pipeline(make_config(args, with_vertices=False))
    mesh_map = anny_keypoint_map(pipeline.model, conv)
    mp_index = [MEDIAPIPE33.index(n) if n in MEDIAPIPE33.names else -1 for n in conv.names]
    alphas = (0.1, 0.2)
    correct = {m: {a: np.zeros(len(conv)) for a in alphas} for m in ("mediapipe", "mesh")}
    counted = np.zeros(len(conv))
    people_total = people_found = 0
    start = time.time()
    for n_img, (path, labels) in enumerate(items):
        loaded = load_image(path)
        result, fit = pipeline.run_with_fit(loaded, str(path))
        cam = pipeline.camera(loaded.rgb.shape[1], loaded.rgb.shape[0])
        mesh2d = mp2d = None
        if fit is not None:
            with torch.no_grad():
                kp = pipeline.model(fit.rotations, fit.shape, fit.translation, with_vertices=False, keypoints=mesh_map).keypoints
            mesh2d = ((perspective_project(kp, cam).numpy() + 0.5) / loaded.scale - 0.5)
            mp2d = (np.stack([d.body.xy for d in result.detections]) + 0.5) / loaded.scale - 0.5
        used: set[int] = set()
        for gt, labelled in labels:
            size = torso(gt, labelled, conv)
            if size <= 0:
                continue
            people_total += 1
            counted += labelled
            best = None
            if mp2d is not None:
                for i in range(len(mp2d)):
                    if i in used:
                        continue
                    mp_named = np.array([mp2d[i, j] if j >= 0 else [np.nan, np.nan] for j in mp_index])
                    ok = labelled & (np.array(mp_index) >= 0)
                    d = np.nanmean(np.linalg.norm(mp_named[ok] - gt[ok], axis=1)) / size
                    if d < 1.0 and (best is None or d < best[1]):
                        best = (i, d)
            if best is None:
                continue
            people_found += 1
            i = best[0]
            used.add(i)
            mp_named = np.array([mp2d[i, j] if j >= 0 else [np.inf, np.inf] for j in mp_index])
            for a in alphas:
                correct["mesh"][a] += labelled & (np.linalg.norm(mesh2d[i] - gt, axis=1) <= a * size)
                correct["mediapipe"][a] += labelled & (np.linalg.norm(mp_named - gt, axis=1) <= a * size)
        if (n_img + 1) % 50 == 0:
            print(f"{n_img + 1}/{len(items)} images, {time.time() - start:.0f} s", flush=True)
    limbs = [conv.index(n) for n in LIMBS]
    extra = [j for j, n in enumerate(conv.names) if MEDIAPIPE33.names.count(n) == 0]

    def rate(method: str, a: float, joints: list[int]) -> float:
        return float(correct[method][a][joints].sum() / max(counted[joints].sum(), 1))

    summary = {
        m: {f"pck@{a}": {"limbs12": rate(m, a, limbs), **({"others": rate(m, a, extra)} if m == "mesh" and extra else {}),
                         "per_joint": {n: float(correct[m][a][j] / max(counted[j], 1)) for j, n in enumerate(conv.names)}}
            for a in alphas}
        for m in ("mediapipe", "mesh")
    }
    payload = {"machine": machine(with_load=True), "dataset": args.dataset, "images": len(items), "people_labelled": people_total,
               "people_found": people_found, "command": f"python benchmarks/bench_pipeline.py{flags(args)} pck --dataset {args.dataset}"
               + (f" --limit {args.limit}" if args.limit else ""), "seconds": round(time.time() - start), "results": summary}
    other_names = ", ".join(conv.names[j] for j in extra)
    lines = [f"# PCK on {args.dataset}, {describe(args)} ({len(items)} images, {people_total} labelled people, {people_found} found)", "",
             f"Machine: {machine(with_load=True)}. Torso-normalized (left shoulder to right hip), labelled joints only; missed people count as wrong.", "",
             "| method | PCK@0.1 (12 limb joints) | PCK@0.2 (12 limb joints) |" + (f" PCK@0.1 ({other_names}) | PCK@0.2 |" if extra else ""),
             "|---|---|---|" + ("---|---|" if extra else "")]
    for m, label in (("mediapipe", "MediaPipe raw landmarks"), ("mesh", "hmrkit mesh (projected joints)")):
        row = f"| {label} | {summary[m]['pck@0.1']['limbs12']:.3f} | {summary[m]['pck@0.2']['limbs12']:.3f} |"
        if extra:
            row += (f" {summary[m]['pck@0.1']['others']:.3f} | {summary[m]['pck@0.2']['others']:.3f} |" if m == "mesh" else " n/a | n/a |")
        lines.append(row)
    lines += ["", f"Command: `{payload['command']}` ({payload['seconds']} s).", ""]
    write(f"pipeline_pck_{args.dataset}{suffix(args)}", payload, "\n".join(lines))


def make_config(args, with_vertices: bool = True) -> PipelineConfig:
    config = PipelineConfig(with_vertices=with_vertices, refine=not args.no_refine)
    if args.estimator == "hkmr":
        from hmrkit.estimators import HkmrEstimator

        config.estimator = HkmrEstimator.load()
    return config


def describe(args) -> str:
    if args.estimator == "hkmr":
        return "HKMR regressor" + (" alone" if args.no_refine else " + refinement")
    return "optimization-only body fit"


def flags(args) -> str:
    return (" --estimator hkmr" if args.estimator == "hkmr" else "") + (" --no-refine" if args.no_refine else "")


def suffix(args) -> str:
    limit = getattr(args, "limit", None)  # a subset gets its own file: the whole-set results stay
    return ("_hkmr" if args.estimator == "hkmr" else "") + ("_norefine" if args.no_refine else "") + (f"_first{limit}" if limit else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--estimator", choices=["optimization", "hkmr"], default="optimization")
    parser.add_argument("--no-refine", action="store_true", help="with --estimator hkmr: the regressor alone")
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("latency")
    p = sub.add_parser("pck")
    p.add_argument("--dataset", choices=["lsp", "coco"], required=True)
    p.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    {"latency": latency, "pck": pck}[args.what](args)


if __name__ == "__main__":
    main()
