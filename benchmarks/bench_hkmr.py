"""HKMR benchmarks: held-out synthetic landmarks (Tables 1-3 analogue), limb occlusion, speed,
and occluders drawn on real photos run through the whole pipeline.

    python benchmarks/bench_hkmr.py train [--steps 500] [--only NAME ...] [--shipped-data]   # equal-budget ablation models (cache)
    python benchmarks/bench_hkmr.py synthetic [--count 2000] [--fit-count 300]
    python benchmarks/bench_hkmr.py synthetic --only "optimization only"   # re-measure some rows, merged
    python benchmarks/bench_hkmr.py speed
    python benchmarks/bench_hkmr.py refine [--images 30]    # regressor alone / + refinement on real photos
    python benchmarks/bench_hkmr.py occlusion [--images 40]
    python benchmarks/bench_hkmr.py image [--steps 600] [--batch-size 32]   # the image path, trained briefly

*synthetic*: the CMU ``test`` split (held out: other sequences, and washing windows, an action
absent from training), posed on random Anny bodies and seen through random cameras with the
training noise model (:mod:`hmrkit.data.synth_keypoints`), a fixed draw. MPJPE and PA-MPJPE over
the 22 core joints and PVE over the 13,718 mesh vertices, pelvis-centred, in mm. "Limb occluded":
the same samples with every landmark of one limb (arm: elbow to fingers; leg: knee to toes)
dropped, a different limb per sample; "occluded-limb MPJPE" counts only that limb's 4 joints.
The shipped models trained longer than the equal-budget ablation models, which are compared
among themselves.

*occlusion*: LSP photos (``../shared/data/lspet_dev``) with a grey bar, circle or rectangle of
degree 1-5 (the paper's sizes: bar width and circle radius 10-50 px, rectangle area 3,000-15,000
px, scaled by the image's size / 300 px) centred on one labelled joint (joints taken in turn);
PCK of the 14 LSP joints (torso-normalized) for MediaPipe's raw landmarks and the pipeline's
mesh with HKMR + refinement, flat + refinement, and the optimization-only fit; MediaPipe runs
once per occluded image and all methods share its output.
*image*: the paper's image setting as far as this machine allows: HKMR heads on EfficientNet-Lite0
(ImageNet weights) fed crops of the posed Anny mesh rendered on the fly, trained for a short
budget next to the keypoint encoder with the same steps and batch, both validated on the same
held-out CMU poses and cameras (renders vs noisy landmarks); the render cost per crop and the
ResNet-50 step time are measured too.
Results: benchmarks/results/hkmr_{synthetic,speed,occlusion,image}.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from bench_common import DATA, DEMO_PHOTOS, RESULTS, ROOT, machine, write  # the script's own folder

sys.path.insert(0, str(ROOT))

from hmrkit.body.anny_model import load_anny_body  # noqa: E402
from hmrkit.body.anny_rig import KINEMATIC_CHAINS, NUM_BODY_CORE  # noqa: E402
from hmrkit.data.retarget import CORE_NAMES  # noqa: E402
from hmrkit.data.synth_keypoints import LIMBS, V1_NOISE, SynthBatch, SynthKeypoints, fit_targets  # noqa: E402
from hmrkit.estimators import load_regressor  # noqa: E402
from hmrkit.geometry.cameras import PerspectiveCamera  # noqa: E402
from hmrkit.eval.metrics import mpjpe, pa_mpjpe, pve  # noqa: E402
from hmrkit.models.encoders import BodyKeypoints  # noqa: E402
from hmrkit.models.hkmr import BodyRegressor  # noqa: E402
from hmrkit.paths import cache_dir, weights_dir  # noqa: E402
from hmrkit.pipeline import PipelineConfig  # noqa: E402

REFINE = PipelineConfig.refine_iterations  # the pipeline's refinement after a regressor: LM steps (3D stage, 2D stage)

ABLATION_DIR = cache_dir() / "hkmr_ablations"  # equal-budget models on CMU motion and V1_NOISE (the first tables)
SHIPPED_DATA_DIR = ABLATION_DIR / "shipped_data"  # the same on the shipped model's data (TrainConfig's defaults)
# equal-budget models: name -> (train variant, inner, outer)
ABLATIONS: dict[str, tuple[str, int, int]] = {
    "hkmr": ("hkmr", 4, 3),
    "flat": ("flat", 4, 3),
    "no_hierarchy": ("no_hierarchy", 4, 3),
    "forward_only": ("forward_only", 4, 3),
    "discriminator": ("discriminator", 4, 3),
    "outer1": ("hkmr", 4, 1),
    "outer2": ("hkmr", 4, 2),
    "outer4": ("hkmr", 4, 4),
    "inner2": ("hkmr", 2, 3),
    "inner6": ("hkmr", 6, 3),
}
LIMB_JOINTS = {f"{side}_{part}": [CORE_NAMES.index(j) for j in KINEMATIC_CHAINS[f"{side}_{part}"]]
               for side in ("left", "right") for part in ("arm", "leg")}


def git_commit() -> str:
    """The checkout's commit (short), with '+dirty' when tracked files differ from it."""
    import subprocess

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return (git("rev-parse", "--short", "HEAD") or "unknown") + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


# -- training the equal-budget models ------------------------------------------------------------


def train_ablations(args) -> None:
    from hmrkit.train.hkmr import TrainConfig, train

    folder = SHIPPED_DATA_DIR if args.shipped_data else ABLATION_DIR
    data = {} if args.shipped_data else {"v1_noise": True, "motion": "cmu"}
    for name, (variant, inner, outer) in ABLATIONS.items():
        if args.only and name not in args.only:
            continue
        tag = f"{name}_s{args.steps}" + (f"_seed{args.seed}" if args.seed else "")
        out = folder / f"{tag}.safetensors"
        if out.exists() and not args.force:
            print(f"{name}: {out} exists, skipped")
            continue
        cfg = TrainConfig(model=variant, inner=inner, outer=outer, steps=args.steps, val_every=args.steps // 4, seed=args.seed, **data,
                          checkpoint_every=args.steps // 4, run_dir=str(folder / f"run_{tag}"), out=str(out))
        train(cfg)


# -- evaluation on synthetic landmarks -------------------------------------------------------------


def budget_of(path: Path) -> tuple[int, int]:
    """(steps, seed) of an ablation file ``<name>_s<steps>[_seed<seed>].safetensors``."""
    tail = path.stem.rsplit("_s", 1)[1] if "_seed" not in path.stem else path.stem.rsplit("_seed", 1)[0].rsplit("_s", 1)[1]
    seed = int(path.stem.rsplit("_seed", 1)[1]) if "_seed" in path.stem else 0
    return int(tail), seed


def drop_limbs(batch: SynthBatch) -> tuple[SynthBatch, list[str]]:
    """The batch with every landmark of one limb unseen (limbs taken in turn)."""
    names = list(LIMBS)
    chosen = [names[i % len(names)] for i in range(batch.batch)]
    visible = batch.observed.visible.clone()
    for i, name in enumerate(chosen):
        visible[i, LIMBS[name]] = False
    observed = BodyKeypoints(batch.observed.xy, visible, batch.observed.world)
    return replace(batch, observed=observed), chosen


@torch.no_grad()
def predict(regressor: BodyRegressor, observed: BodyKeypoints, chunk: int = 512):
    outs = [regressor(BodyKeypoints(observed.xy[s:s + chunk], observed.visible[s:s + chunk], observed.world[s:s + chunk]))
            for s in range(0, observed.batch, chunk)]
    return torch.cat([o.rotations[-1] for o in outs]), torch.cat([o.shape[-1] for o in outs])


@torch.no_grad()
def errors(body, rotations: torch.Tensor, shape: torch.Tensor, batch: SynthBatch, chunk: int = 128) -> dict[str, torch.Tensor]:
    """Per-sample MPJPE, PA-MPJPE (22 core joints) and PVE (all vertices), pelvis-centred, mm."""
    eye = torch.eye(3)
    res = {"mpjpe": [], "pa_mpjpe": [], "pve": [], "joint_error": []}
    for s in range(0, batch.batch, chunk):
        part = slice(s, s + chunk)
        n = rotations[part].shape[0]
        full = eye.expand(n, body.num_joints, 3, 3).clone()
        full[:, :NUM_BODY_CORE] = rotations[part]
        pred = body(full, shape[part])
        full_gt = eye.expand(n, body.num_joints, 3, 3).clone()
        full_gt[:, :NUM_BODY_CORE] = batch.rotations[part]
        gt = body(full_gt, batch.shape[part])
        pj, gj = pred.joints[:, :NUM_BODY_CORE], gt.joints[:, :NUM_BODY_CORE]
        pj, gj = pj - pj[:, :1], gj - gj[:, :1]
        res["mpjpe"].append(mpjpe(pj, gj) * 1000)
        res["pa_mpjpe"].append(pa_mpjpe(pj, gj) * 1000)
        res["pve"].append(pve(pred.vertices, gt.vertices, pred_root=pred.joints[:, 0], target_root=gt.joints[:, 0]) * 1000)
        res["joint_error"].append((pj - gj).norm(dim=-1) * 1000)
    return {k: torch.cat(v) for k, v in res.items()}


def summarize(e: dict[str, torch.Tensor], limbs: list[str] | None = None) -> dict[str, float]:
    out = {k: round(float(e[k].mean()), 1) for k in ("mpjpe", "pa_mpjpe", "pve")}
    if limbs is not None:
        limb_err = torch.stack([e["joint_error"][i, LIMB_JOINTS[name]].mean() for i, name in enumerate(limbs)])
        out["occluded_limb_mpjpe"] = round(float(limb_err.mean()), 1)
    return out


def synthetic(args) -> None:
    """Every row, or with ``--only`` the rows whose name contains one of its patterns, merged
    into the existing results (same draw: same ``--count``, and ``--fit-count`` for fitted rows)."""
    torch.manual_seed(0)
    previous = None
    if args.only:
        path = RESULTS / "hkmr_synthetic.json"
        if not path.exists():
            raise SystemExit(f"--only merges into {path}, which does not exist: run without --only first")
        previous = json.loads(path.read_text())
        if previous["samples"] != args.count:
            raise SystemExit(f"{path} holds {previous['samples']} samples, not --count {args.count}: rows would not be comparable")

    def wanted(name: str) -> bool:
        return not args.only or any(pattern in name for pattern in args.only)

    body = load_anny_body()
    data = SynthKeypoints(body, "test", stride=1, config=V1_NOISE)  # the held-out noise model of the committed table
    batch = data.sample(args.count, torch.Generator().manual_seed(2024))
    occluded, limbs = drop_limbs(batch)
    rows: dict[str, dict] = {}

    def evaluate(name: str, path: Path, overrides: dict | None = None) -> None:
        if not wanted(name):
            return
        if not path.exists():
            print(f"{name}: {path} missing, skipped")
            return
        regressor, spec, meta = load_regressor(path)
        if overrides:  # test-time iteration counts of a trained HKMR
            regressor.head.config = replace(regressor.head.config, **overrides)
        start = time.perf_counter()
        std = summarize(errors(body, *predict(regressor, batch.observed), batch))
        occ = summarize(errors(body, *predict(regressor, occluded.observed), occluded), limbs)
        rows[name] = {"weights": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name),
                      "train_steps": meta.get("steps"), "params_M": round(sum(p.numel() for p in regressor.parameters()) / 1e6, 2),
                      "standard": std, "limb_occluded": occ, **({"test_time": overrides} if overrides else {})}
        print(name, rows[name], f"{time.perf_counter() - start:.0f} s", flush=True)

    neutral = torch.full_like(batch.shape, 0.5)  # the cost of not knowing the body: true pose, neutral shape
    if wanted("oracle: true pose, neutral shape"):
        rows["oracle: true pose, neutral shape"] = {"standard": summarize(errors(body, batch.rotations, neutral, batch)),
                                                    "limb_occluded": summarize(errors(body, batch.rotations, neutral, batch), limbs)}
    evaluate("shipped HKMR", weights_dir() / "hkmr.safetensors")
    evaluate("shipped flat (HMR IEF)", weights_dir() / "hmr_flat.safetensors")
    for folder, data in ((ABLATION_DIR, ""), (SHIPPED_DATA_DIR, ", shipped data")):
        for steps, seed in sorted({budget_of(p) for p in folder.glob("*_s*.safetensors")}):
            for name in ABLATIONS:
                tag = f"{name}_s{steps}" + (f"_seed{seed}" if seed else "")
                evaluate(f"{steps} steps{data}{f', seed {seed}' if seed else ''}: {name}", folder / f"{tag}.safetensors")
    for outer in (1, 2, 4):
        evaluate(f"shipped HKMR, test-time outer {outer}", weights_dir() / "hkmr.safetensors", {"outer_iterations": outer})
    for inner in (2, 6):
        evaluate(f"shipped HKMR, test-time inner {inner}", weights_dir() / "hkmr.safetensors", {"inner_iterations": inner})
    if args.fit_count:
        rows.update(fitted(body, batch, occluded, limbs, args.fit_count, wanted))

    command = f"python benchmarks/bench_hkmr.py synthetic --count {args.count}" + (f" --fit-count {args.fit_count}" if args.fit_count else "")
    if args.only:
        command += " --only " + " ".join(f'"{p}"' for p in args.only)
        if not rows:
            raise SystemExit(f"no row matched --only {args.only}")
    provenance = {"command": command, "commit": git_commit(), "machine": machine()}
    for row in rows.values():
        row["measured"] = provenance
    if previous is None:
        payload = {"machine": machine(), "command": command, "samples": args.count, "split": "CMU test (held out)", "rows": rows}
    else:  # replace the re-measured rows in place, append new ones
        payload = previous
        payload["rows"] = {**previous["rows"], **rows}
    write("hkmr_synthetic", payload, synthetic_table(payload))


COMMON_CAMERA = PerspectiveCamera(1000.0, 1000.0, 500.0, 500.0)


def common_camera_targets(batch: SynthBatch):
    """Fit targets with the 2D landmarks re-expressed in :data:`COMMON_CAMERA` (exact: a pinhole
    image is linear in the focal length and principal point), so one batch shares one camera
    as the fitter expects; what is seen stays what the sample's own image showed."""
    targets = fit_targets(batch)
    n = batch.batch
    f = torch.as_tensor(batch.camera.fx).expand(n)
    centre = torch.stack([torch.as_tensor(batch.camera.cx).expand(n), torch.as_tensor(batch.camera.cy).expand(n)], -1)
    scale = COMMON_CAMERA.fx / f
    seen = (targets.xy_weight > 0)[..., None]
    common_centre = torch.tensor([COMMON_CAMERA.cx, COMMON_CAMERA.cy])
    targets.xy = torch.where(seen, (targets.xy - centre[:, None]) * scale[:, None, None] + common_centre, targets.xy)
    targets.box_size = targets.box_size * scale
    return targets


def fitted(body, batch: SynthBatch, occluded: SynthBatch, limbs: list[str], count: int, wanted=lambda name: True) -> dict[str, dict]:
    """The regressor + optimizer (HKMR 'MF'), the optimization-only fit and the regressors alone
    on the first ``count`` samples: the pipeline's BodyFitter against the synthetic 2D and 3D
    landmarks. ``wanted(row name)`` picks which run."""
    from hmrkit.body.anny_keypoints import anny_keypoint_library
    from hmrkit.body.keypoints import build_keypoint_map
    from hmrkit.estimators import FlatEstimator, HkmrEstimator
    from hmrkit.fitting.body_fit import BodyFitter
    from hmrkit.fitting.targets import FIT_KEYPOINTS

    fitter = BodyFitter(body, body.compile_keypoints(build_keypoint_map(anny_keypoint_library(), body.skeleton, FIT_KEYPOINTS)))
    rows = {}
    std, occ = batch.take(slice(0, count)), occluded.take(slice(0, count))
    hkmr, flat = HkmrEstimator.load(body=body), FlatEstimator.load(body=body)
    # (row name, estimator, refine): "alone" = the regressor's guess on the same samples, for comparison
    methods = (("optimization only (pipeline fit)", None, True), ("shipped HKMR + refinement (MF)", hkmr, True),
               ("shipped flat + refinement", flat, True), ("shipped HKMR alone", hkmr, False), ("shipped flat alone", flat, False))
    for name, estimator, refine in methods:
        if not wanted(f"{name} (first {count})"):
            continue
        start = time.perf_counter()
        row = {}
        for label, b in (("standard", std), ("limb_occluded", occ)):
            rotations, shape = [], []
            for s in range(0, count, 100):
                part = b.take(slice(s, s + 100))
                targets = common_camera_targets(part)
                if estimator is None:
                    fit = fitter.fit(targets, COMMON_CAMERA)
                elif refine:
                    fit = fitter.fit(targets, COMMON_CAMERA, estimator(targets, COMMON_CAMERA), iterations=REFINE)
                else:
                    fit = estimator(targets, COMMON_CAMERA)
                rotations.append(fit.rotations[:, :NUM_BODY_CORE])
                shape.append(fit.shape)
            e = errors(body, torch.cat(rotations), torch.cat(shape), b)
            row[label] = summarize(e, limbs[:count] if label == "limb_occluded" else None)
        rows[f"{name} (first {count})"] = {"standard": row["standard"], "limb_occluded": row["limb_occluded"]}
        print(name, row, f"{time.perf_counter() - start:.0f} s", flush=True)
    return rows


def synthetic_table(payload: dict) -> str:
    lines = [f"# HKMR on held-out synthetic landmarks ({payload['samples']} samples, {payload['split']})", "",
             f"Machine: {payload['machine']}. Command: `{payload['command']}`.", "",
             "Pelvis-centred errors in mm: MPJPE / PA-MPJPE over the 22 core joints, PVE over all vertices. "
             "'Limb occluded': every landmark of one limb dropped (limbs in turn); 'occl. limb' = MPJPE of that limb's 4 joints.", "",
             "| model | params (M) | train steps | MPJPE | PA-MPJPE | PVE | MPJPE limb occl. | PA-MPJPE limb occl. | occl. limb MPJPE |",
             "|---|---|---|---|---|---|---|---|---|"]
    later: dict[tuple[str, str], list[str]] = {}  # rows re-measured with --only: (command, commit) -> names
    for name, r in payload["rows"].items():
        s, o = r["standard"], r["limb_occluded"]
        measured = r.get("measured", {})
        mark = ""
        if measured.get("command", payload["command"]) != payload["command"]:
            key = (measured["command"], measured["commit"])
            later.setdefault(key, []).append(name)
            mark = f" [{list(later).index(key) + 1}]"
        lines.append(f"| {name}{mark} | {r.get('params_M', '')} | {r.get('train_steps', '')} | {s['mpjpe']} | {s['pa_mpjpe']} | {s['pve']} | "
                     f"{o['mpjpe']} | {o['pa_mpjpe']} | {o.get('occluded_limb_mpjpe', '')} |")
    if later:
        lines.append("")
        lines += [f"[{i + 1}] re-measured or added later on the same draw: `{command}` at commit {commit}."
                  for i, (command, commit) in enumerate(later)]
    return "\n".join(lines) + "\n"


# -- speed ---------------------------------------------------------------------------------------


def speed(args) -> None:
    from hmrkit.body.anny_keypoints import anny_keypoint_library
    from hmrkit.body.keypoints import build_keypoint_map
    from hmrkit.estimators import FlatEstimator, HkmrEstimator
    from hmrkit.fitting.body_fit import BodyFitter
    from hmrkit.fitting.targets import FIT_KEYPOINTS
    from hmrkit.io.images import load_image
    from hmrkit.pipeline import Pipeline

    torch.set_num_threads(1)
    body = load_anny_body()
    batch = SynthKeypoints(body, "test", stride=4).sample(args.repeats, torch.Generator().manual_seed(3))
    fitter = BodyFitter(body, body.compile_keypoints(build_keypoint_map(anny_keypoint_library(), body.skeleton, FIT_KEYPOINTS)))
    rows = {}
    for name, cls in (("HKMR", HkmrEstimator), ("flat", FlatEstimator)):
        est = cls.load(body=body)
        regressor_ms, refined_ms = [], []
        for i in range(args.repeats):
            one = batch.take(slice(i, i + 1))
            targets = fit_targets(one)
            start = time.perf_counter()
            est.predict(one.observed)
            regressor_ms.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            fitter.fit(targets, one.camera, est(targets, one.camera), iterations=REFINE)
            refined_ms.append((time.perf_counter() - start) * 1000)
        rows[name] = {"regressor_ms": float(np.median(regressor_ms[2:])), "regressor_plus_refine_ms": float(np.median(refined_ms[2:]))}
        print(name, rows[name], flush=True)

    images = DEMO_PHOTOS
    variants = (("pipeline HKMR + refine", HkmrEstimator.load(body=body), True, REFINE),
                ("pipeline HKMR + refine (1, 8) (`--refine-steps 1,8`)", HkmrEstimator.load(body=body), True, (1, 8)),
                ("pipeline HKMR, no refine", HkmrEstimator.load(body=body), False, REFINE),
                ("pipeline optimization only", None, True, REFINE))
    for name, estimator, refine, steps in variants:
        pipeline = Pipeline(PipelineConfig(estimator=estimator, refine=refine, refine_iterations=steps, with_vertices=True))
        pipeline.run(load_image(images[0]))
        per_person, hands, people = [], 0, 0
        for path in images:
            loaded = load_image(path)
            start = time.perf_counter()
            result = pipeline.run(loaded, str(path))
            total = (time.perf_counter() - start) * 1000
            if result.people:
                per_person.append(total / len(result.people))
                people += len(result.people)
                hands += sum(len(p.hands) for p in result.people)
        pipeline.close()
        rows[name] = {"per_person_ms_mean": float(np.mean(per_person)), "per_person_ms_median": float(np.median(per_person)),
                      "images": len(images), "people": people, "hands": hands}
        print(name, rows[name], flush=True)
    rows["video mode"] = video_speed(args.video_frames)
    print("video mode", rows["video mode"], flush=True)
    command = "python benchmarks/bench_hkmr.py speed" + (f" --name {args.name}" if args.name != "hkmr_speed" else "")
    payload = {"machine": machine(with_load=True), "command": command, "rows": rows,
               "notes": f"regressor: batch 1, no_grad, 1 torch thread, median over samples; refinement: the pipeline's {REFINE} "
                        "Levenberg-Marquardt steps (3D stage, 2D stage); pipeline: photos in ../shared/data/demo_images, whole run() "
                        "(MediaPipe pose + hands on wrist crops, fit, mesh) / people found; video mode: the frames of "
                        "../shared/data/demo_images/sample_video.mp4 (1280x720) as `hmrkit run` reads a video (MediaPipe tracking, "
                        "the fit warm-started from the previous frame, One-Euro smoothing, mesh; frame decoding included), without "
                        "writing files or rendering; the first frame (detection, HKMR) left out"}
    lines = ["# HKMR speed", "", f"Machine: {payload['machine']}. Command: `{payload['command']}`. {payload['notes']}.", "",
             "| what | ms per person |", "|---|---|"]
    for name, r in rows.items():
        if "regressor_ms" in r:
            lines.append(f"| {name} regressor alone | {r['regressor_ms']:.1f} |")
            lines.append(f"| {name} regressor + refinement {REFINE} | {r['regressor_plus_refine_ms']:.1f} |")
        elif name == "video mode":
            lines.append(f"| pipeline, video mode (mean / median over {r['frames']} frames, {r['people']} person-frames, "
                         f"{r['hands']} hands) | {r['per_person_ms_mean']:.0f} / {r['per_person_ms_median']:.0f} |")
        else:
            lines.append(f"| {name} (mean / median over {r['images']} photos, {r['people']} people, {r['hands']} hands) | "
                         f"{r['per_person_ms_mean']:.0f} / {r['per_person_ms_median']:.0f} |")
    write(args.name, payload, "\n".join(lines) + "\n")


def video_speed(frames: int) -> dict:
    """Per-person time of the video path (``hmrkit.video.video_results``: what ``run_video`` does
    before writing files), frame decoding included."""
    from hmrkit.io.images import VideoReader
    from hmrkit.pipeline import Pipeline
    from hmrkit.video import video_results

    per_person, people, hands, timed = [], 0, 0, 0
    with VideoReader(DATA / "demo_images" / "sample_video.mp4") as reader, Pipeline(PipelineConfig(), video=True) as pipeline:
        start = time.perf_counter()
        for frame, result in video_results(reader, pipeline, "sample_video.mp4", max_frames=frames):
            total = (time.perf_counter() - start) * 1000
            timed += frame.index > 0  # the first frame (detection, HKMR) left out
            if result.people and frame.index > 0:
                per_person.append(total / len(result.people))
                people += len(result.people)
                hands += sum(len(p.hands) for p in result.people)
            start = time.perf_counter()
    return {"per_person_ms_mean": float(np.mean(per_person)), "per_person_ms_median": float(np.median(per_person)),
            "frames": timed, "people": people, "hands": hands}


# -- occluders on real photos ----------------------------------------------------------------------

SHAPES = ("bar", "circle", "rectangle")
DEGREES = (1, 2, 3, 4, 5)
REFERENCE_SIZE = 300.0  # px: the paper's occluder sizes are for a person of about this size


def draw_occluder(rgb: np.ndarray, shape: str, degree: int, centre: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A solid occluder of the paper's size for ``degree``, scaled by ``scale``, centred on ``centre``."""
    import cv2

    out = rgb.copy()
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    cx, cy = float(centre[0]), float(centre[1])
    if shape == "bar":  # width 10..50 px, long and at a random angle
        width, length = 10 * degree * scale, 0.5 * REFERENCE_SIZE * scale
        angle = rng.uniform(0, 180)
        box = cv2.boxPoints(((cx, cy), (length, width), angle))
        cv2.fillConvexPoly(out, np.round(box).astype(np.int32), colour)
    elif shape == "circle":  # radius 10..50 px
        cv2.circle(out, (round(cx), round(cy)), max(1, round(10 * degree * scale)), colour, -1)
    else:  # area 3,000..15,000 px, aspect 1:2..2:1
        area = 3000 * degree * scale**2
        aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        w, h = np.sqrt(area * aspect), np.sqrt(area / aspect)
        cv2.rectangle(out, (round(cx - w / 2), round(cy - h / 2)), (round(cx + w / 2), round(cy + h / 2)), colour, -1)
    return out


class SharedPerception:
    """Runs MediaPipe once per image; every method's pipeline reads the same result."""

    def __init__(self, backend):
        self.backend = backend
        self.result = None

    def prepare(self, rgb: np.ndarray) -> None:
        self.result = self.backend.detect(rgb)

    def detect(self, rgb: np.ndarray):
        return self.result

    def close(self) -> None:
        self.backend.close()


def lsp_items(count: int, start: int = 0) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """The first ``count`` LSP photos from index ``start`` whose torso and at least 10 joints are labelled."""
    from hmrkit.body.conventions import LSP14

    d = np.load(DATA / "lspet_dev" / "joints.npz")
    assert tuple(str(n) for n in d["joint_names"]) == LSP14.names
    a, b = LSP14.index("left_shoulder"), LSP14.index("right_hip")
    items = []
    for i in range(start, len(d["image_names"])):
        joints = d["joints"][i]
        labelled = (joints[:, 2] > 0) & (joints[:, 0] > 0) & (joints[:, 1] > 0)
        if labelled[a] and labelled[b] and labelled.sum() >= 10:
            items.append((DATA / "lspet_dev" / "images" / str(d["image_names"][i]), joints[:, :2], labelled))
        if len(items) == count:
            break
    return items


def refine_study(args) -> None:
    """Unoccluded LSP photos: PCK of the regressor alone and with 20/60 refinement steps, with
    the weak-camera or the closed-form translation, against the optimization-only fit."""
    from hmrkit.body.anny_keypoints import anny_keypoint_map
    from hmrkit.body.conventions import LSP14, MEDIAPIPE33
    from hmrkit.estimators import FlatEstimator, HkmrEstimator
    from hmrkit.geometry.cameras import perspective_project
    from hmrkit.io.images import load_image
    from hmrkit.pipeline import Pipeline, PipelineConfig

    items = lsp_items(args.images, args.start)
    pipeline = Pipeline(PipelineConfig(with_vertices=False, hands=False, estimator=None))  # each method sets its own
    shared = SharedPerception(pipeline.backend)
    pipeline.backend = shared
    body = pipeline.model
    fit_config = pipeline.fitter.config
    methods = {f"optimization only ({fit_config.iterations_3d} + {fit_config.iterations_2d} steps)": (None, True, 0)}
    for label, cls in (("HKMR", HkmrEstimator), ("flat", FlatEstimator)):
        for weak in (True, False):
            est = cls.load(body=body, weak_translation=weak)
            t = "weak-camera T" if weak else "closed-form T"
            methods[f"{label} alone, {t}"] = (est, False, 0)
            methods[f"{label} + 20 refinement steps, {t}"] = (est, True, 20)
        methods[f"{label} + 60 refinement steps, closed-form T"] = (cls.load(body=body), True, 60)
    lsp_map = anny_keypoint_map(body, LSP14)
    limbs = [LSP14.index(f"{s}_{j}") for s in ("left", "right") for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")]
    mp_index = np.array([MEDIAPIPE33.index(LSP14.names[j]) for j in limbs])
    a, b = LSP14.index("left_shoulder"), LSP14.index("right_hip")
    tally = {m: [0, 0, 0.0] for m in ["MediaPipe raw"] + list(methods)}
    for path, gt, labelled in items:
        loaded = load_image(path)
        gt_px = (gt + 0.5) * loaded.scale - 0.5
        torso = float(np.linalg.norm(gt_px[a] - gt_px[b]))
        ok = labelled[limbs]
        shared.prepare(loaded.rgb)
        camera = pipeline.camera(loaded.rgb.shape[1], loaded.rgb.shape[0])
        preds = {}
        for m, (est, refine, iterations) in methods.items():
            pipeline.config.estimator, pipeline.config.refine, pipeline.config.refine_iterations = est, refine, (0, iterations)
            start = time.perf_counter()
            result, fit = pipeline.run_with_fit(loaded.rgb)
            tally[m][2] += (time.perf_counter() - start) * 1000
            if fit is None:
                break
            with torch.no_grad():
                kp = body(fit.rotations, fit.shape, fit.translation, with_vertices=False, keypoints=lsp_map).keypoints
            preds[m] = perspective_project(kp, camera).numpy()[:, limbs]
            preds["MediaPipe raw"] = np.stack([p.body.xy[mp_index] for p in result.detections])
        best = None
        if preds:
            dist = [np.mean(np.linalg.norm(preds["MediaPipe raw"][i][ok] - gt_px[limbs][ok], axis=1)) / torso
                    for i in range(len(preds["MediaPipe raw"]))]
            best = int(np.argmin(dist)) if min(dist) < 1.0 else None
        for m, t in tally.items():
            t[1] += ok.sum()
            if best is not None:
                t[0] += ((np.linalg.norm(preds[m][best] - gt_px[limbs], axis=1) <= 0.2 * torso) & ok).sum()
    shared.close()
    rows = {m: {"pck@0.2_limbs": round(c / max(n, 1), 3), "ms_per_image": round(ms / len(items))} for m, (c, n, ms) in tally.items()}
    payload = {"machine": machine(), "command": f"python benchmarks/bench_hkmr.py refine --images {args.images} --start {args.start}",
               "images": len(items), "rows": rows}
    lines = [f"# Regressor, refinement and translation on real photos ({len(items)} LSP photos from index {args.start}, no occluder)", "",
             f"Machine: {machine()}. Command: `{payload['command']}`. PCK@0.2 (torso) of the 12 labelled limb joints; "
             "ms per image = the pipeline's run (pose landmarks shared, no hands) for that method, under the machine's other load.", "",
             "| method | PCK@0.2 | ms per image |", "|---|---|---|"]
    lines += [f"| {m} | {r['pck@0.2_limbs']:.3f} | {r['ms_per_image'] if m != 'MediaPipe raw' else ''} |" for m, r in rows.items()]
    write("hkmr_refine_lsp", payload, "\n".join(lines) + "\n")


def occlusion(args) -> None:
    from hmrkit.body.anny_keypoints import anny_keypoint_map
    from hmrkit.body.conventions import LSP14, MEDIAPIPE33
    from hmrkit.estimators import FlatEstimator, HkmrEstimator
    from hmrkit.geometry.cameras import perspective_project
    from hmrkit.io.images import load_image
    from hmrkit.pipeline import Pipeline, PipelineConfig

    items = lsp_items(args.images)
    a, b = LSP14.index("left_shoulder"), LSP14.index("right_hip")
    pipeline = Pipeline(PipelineConfig(with_vertices=False, hands=False, estimator=None))  # body PCK only; each method sets its estimator
    shared = SharedPerception(pipeline.backend)
    pipeline.backend = shared
    hkmr, flat = HkmrEstimator.load(body=pipeline.model), FlatEstimator.load(body=pipeline.model)
    # method -> (estimator, refine): the pipeline's default, the baseline, the optimization alone, the regressors alone
    methods = {"HKMR + refinement": (hkmr, True), "flat + refinement": (flat, True), "optimization only": (None, True),
               "HKMR alone": (hkmr, False), "flat alone": (flat, False)}
    lsp_map = anny_keypoint_map(pipeline.model, LSP14)
    limbs = [LSP14.index(f"{s}_{j}") for s in ("left", "right") for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")]
    mp_index = np.array([MEDIAPIPE33.index(LSP14.names[j]) for j in limbs])
    settings = [("none", 0)] + [(shape, degree) for shape in SHAPES for degree in DEGREES]
    # correct[method][setting] = [limb joints correct, limb joints counted, occluded joint correct, occluded joints counted]
    names = ["MediaPipe raw"] + list(methods)
    tally = {m: {f"{s}:{dg}": np.zeros(4) for s, dg in settings} for m in names}
    start = time.time()
    for n_img, (path, gt, labelled) in enumerate(items):
        loaded = load_image(path)
        gt_px = (gt + 0.5) * loaded.scale - 0.5  # labels are in the original image; the pipeline sees the loaded one
        torso = float(np.linalg.norm(gt_px[a] - gt_px[b]))
        person = float((gt_px[labelled].max(0) - gt_px[labelled].min(0)).max() * 1.2)
        visible_joints = [j for j in limbs if labelled[j]]
        for k, (shape, degree) in enumerate(settings):
            rng = np.random.default_rng(1000 * n_img + k)
            target = visible_joints[(n_img * len(settings) + k) % len(visible_joints)]
            rgb = loaded.rgb if shape == "none" else draw_occluder(loaded.rgb, shape, degree, gt_px[target], person / REFERENCE_SIZE, rng)
            shared.prepare(rgb)
            h, w = rgb.shape[:2]
            camera = pipeline.camera(w, h)
            predictions = {}
            for method, (estimator, refine) in methods.items():
                pipeline.config.estimator, pipeline.config.refine = estimator, refine
                result, fit = pipeline.run_with_fit(rgb)
                if fit is None:
                    break
                with torch.no_grad():
                    kp = pipeline.model(fit.rotations, fit.shape, fit.translation, with_vertices=False, keypoints=lsp_map).keypoints
                predictions[method] = perspective_project(kp, camera).numpy()[:, limbs]
                predictions["MediaPipe raw"] = np.stack([p.body.xy[mp_index] for p in result.detections])
            key = f"{shape}:{degree}"
            ok = labelled[limbs]
            best = None
            if predictions:  # the detection nearest to the labels (same person for every method)
                mp = predictions["MediaPipe raw"]
                dist = [np.mean(np.linalg.norm(mp[i][ok] - gt_px[limbs][ok], axis=1)) / torso for i in range(len(mp))]
                best = int(np.argmin(dist)) if min(dist) < 1.0 else None
            occluded_slot = limbs.index(target)
            for method in names:
                t = tally[method][key]
                t[1] += ok.sum()
                t[3] += 1
                if best is None:
                    continue
                correct = np.linalg.norm(predictions[method][best] - gt_px[limbs], axis=1) <= args.alpha * torso
                t[0] += (correct & ok).sum()
                t[2] += correct[occluded_slot]
        print(f"{n_img + 1}/{len(items)} images, {time.time() - start:.0f} s", flush=True)
    shared.close()
    results = {m: {k: {"pck_limbs": float(v[0] / max(v[1], 1)), "pck_occluded_joint": float(v[2] / max(v[3], 1))}
                   for k, v in per.items()} for m, per in tally.items()}
    payload = {"machine": machine(), "command": f"python benchmarks/bench_hkmr.py occlusion --images {args.images}",
               "images": len(items), "alpha": args.alpha, "seconds": round(time.time() - start), "results": results}
    lines = [f"# Occluders on real photos: PCK@{args.alpha} (torso) vs degree of occlusion ({len(items)} LSP photos)", "",
             f"Machine: {machine()}. Command: `{payload['command']}` ({payload['seconds']} s). "
             "Each photo: no occluder, then bar / circle / rectangle at degrees 1-5, each centred on one labelled limb joint "
             "(joints in turn); the paper's sizes scaled by the labelled person's size / 300 px. MediaPipe runs once per "
             "image; every method uses its landmarks. 'limbs': the 12 labelled limb joints; 'occl.': the joint under the occluder.", ""]
    for metric, label in (("pck_limbs", "12 limb joints"), ("pck_occluded_joint", "the occluded joint")):
        lines += [f"## PCK, {label}", "", "| method | none | " + " | ".join(f"{s} {dg}" for s in SHAPES for dg in DEGREES)
                  + " | mean (all occluded) | drop (none - mean) |", "|---|---|" + "---|" * (len(SHAPES) * len(DEGREES) + 2)]
        for m in names:
            vals = [results[m][f"{s}:{dg}"][metric] for s in SHAPES for dg in DEGREES]
            none = results[m]["none:0"][metric]
            lines.append(f"| {m} | {none:.3f} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {np.mean(vals):.3f} | {none - np.mean(vals):.3f} |")
        lines.append("")
    write("hkmr_occlusion", payload, "\n".join(lines))




def image_path(args) -> None:
    """The image encoders' training path, briefly trained and measured (see the module notes)."""
    import shutil

    from hmrkit.data.synth_keypoints import render_person_crops
    from hmrkit.train.hkmr import TrainConfig, train

    body = load_anny_body()
    batch = SynthKeypoints(body, "test", 1).sample(64, torch.Generator().manual_seed(7))
    render_person_crops(batch, body, 128, torch.Generator().manual_seed(8))  # warm-up: the rasterizer compiles
    start = time.perf_counter()
    render_person_crops(batch, body, 128, torch.Generator().manual_seed(9))
    render_ms = (time.perf_counter() - start) * 1000 / batch.batch
    print(f"render: {render_ms:.1f} ms per 128 px crop", flush=True)
    folder = cache_dir() / "hkmr_image"
    runs = [  # (name, run folder and weights file name, steps, TrainConfig options)
        ("image, EfficientNet-Lite0 (ImageNet)", "image_efficientnet_lite0", args.steps, {"encoder": "image", "backbone": "efficientnet_lite0"}),
        ("keypoints (the pipeline's encoder)", "keypoints_mlp", args.steps, {"encoder": "keypoints"}),
        ("image, ResNet-50 (random init; step time only)", "image_resnet50", 5, {"encoder": "image", "backbone": "resnet50"}),
    ]
    rows = []
    for name, tag, steps, options in runs:
        run = folder / tag
        cfg = TrainConfig(steps=steps, batch_size=args.batch_size, val_size=args.val_size, val_every=steps // 4 if steps >= 20 else steps,
                          checkpoint_every=steps, threads=2, run_dir=str(run), out=str(folder / f"{tag}.safetensors"), **options)
        done = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else None
        if args.force or done is None or (done["steps"], done["batch_size"], done["val_size"]) != (steps, args.batch_size, args.val_size):
            shutil.rmtree(run, ignore_errors=True)  # a fresh run (no resume)
            done = train(cfg)
        else:
            print(f"{name}: {run} done before, reused (--force trains again)")
        # training time: the last logged row's clock, taken before its validation pass
        trained = json.loads((run / "state.json").read_text())["history"][-1]["seconds"]
        rows.append({"name": name, "steps": steps, "batch_size": args.batch_size, "seconds": done["seconds"],
                     "seconds_per_step": trained / steps, "val": done["val"]})
        if steps == args.steps:
            shutil.copy(run / "curves.png", RESULTS / f"hkmr_image_{tag}_curves.png")
        print(rows[-1], flush=True)
    payload = {"machine": machine(with_load=True), "command": f"python benchmarks/bench_hkmr.py image --steps {args.steps} --batch-size {args.batch_size} --val-size {args.val_size}",
               "render_ms_per_crop": render_ms, "rows": rows}
    lines = ["# The image path of HKMR, trained briefly", "",
             f"Machine: {payload['machine']}. Command: `{payload['command']}`. Training from scratch on crops of the posed "
             "Anny mesh rendered on the fly (flat random background and body colour, pixel noise; 128 px) or on the "
             "noisy synthetic landmarks, the same training motion, steps and batch; validation on the same "
             f"{args.val_size} held-out CMU poses and cameras (pelvis-centred, 22 core joints, mm). "
             f"Rendering: {render_ms:.1f} ms per crop.", "",
             "| encoder | steps x batch | seconds in all (with validation) | s per training step | val MPJPE | val PA-MPJPE |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['steps']} x {r['batch_size']} | {r['seconds']:.0f} | {r['seconds_per_step']:.2f} | "
              f"{r['val']['mpjpe_mm']:.1f} | {r['val']['pa_mpjpe_mm']:.1f} |" for r in rows]
    lines += ["", "Curves: `hkmr_image_image_efficientnet_lite0_curves.png`, `hkmr_image_keypoints_mlp_curves.png`."]
    write("hkmr_image", payload, "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("train")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--force", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shipped-data", action="store_true", help="train on the shipped model's motion and noise instead of CMU + V1_NOISE")
    p = sub.add_parser("synthetic")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--fit-count", type=int, default=300)
    p.add_argument("--only", nargs="+", default=None, metavar="PATTERN",
                   help="re-measure only the rows whose name contains one of these, merged into the existing results")
    p = sub.add_parser("speed")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--video-frames", type=int, default=120)
    p.add_argument("--name", default="hkmr_speed", help="results file name: repeated runs kept side by side (this machine's speed swings)")
    p = sub.add_parser("refine")
    p.add_argument("--images", type=int, default=30)
    p.add_argument("--start", type=int, default=100)
    p = sub.add_parser("image")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--val-size", type=int, default=512)
    p.add_argument("--force", action="store_true", help="train again even where a run of this budget is in the cache")
    p = sub.add_parser("occlusion")
    p.add_argument("--images", type=int, default=40)
    p.add_argument("--alpha", type=float, default=0.2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    {"train": train_ablations, "synthetic": synthetic, "speed": speed, "refine": refine_study, "occlusion": occlusion,
     "image": image_path}[args.what](args)


if __name__ == "__main__":
    main()
