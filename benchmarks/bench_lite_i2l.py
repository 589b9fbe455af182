"""Lite I2L MeshNet benchmark (Fan & Wang 2023, Tab. 4's pipeline on hmrkit's data).

    python benchmarks/bench_lite_i2l.py [--weights PATH] [--synthetic DIR] [--count N]

(a) Real hands: the 100 crops of ../shared/data/hands_ge2019_dev (Ge et al. 2019's real test set;
    ground truth: 21 joints, no mesh -- so no PA-MPVPE there). Every crop is a left hand by the
    ground truth's chirality (checked below, as bench_hands.py decides sides), so the network gets
    each crop as it is, resized to its input. Rows: Lite I2L alone (PoseNet joints; the MeshNet's
    regressed joints), + the IK net, + IK + post-optimization (20 iterations), and MediaPipe Hands
    (+ IK) on the crops it finds -- with Lite I2L on that same subset beside it. PA-MPJPE (mm) and
    F@5 / F@15 mm on the 21 joints after Procrustes alignment (FreiHAND's F-score on joints).
(b) Held-out synthetic hands (``--synthetic``, default /work/hands_synth/test: a seed never
    trained on; skipped when absent): the same rows with the mesh -- PA-MPVPE and F@5 / F@15 on
    the 1596 Anny hand vertices.
(c) Milliseconds per crop on this CPU (batch of one, median, 1 torch thread).

Writes benchmarks/results/lite_i2l.json and lite_i2l.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DATA, machine, write  # noqa: E402
from bench_hands import chirality, run_mediapipe, real_hands  # noqa: E402

from hmrkit.eval.metrics import f_score, pa_mpjpe, pa_pve  # noqa: E402
from hmrkit.geometry.procrustes import procrustes_align  # noqa: E402
from hmrkit.hands.hand_model import HandFit  # noqa: E402
from hmrkit.hands.ik_net import HandIK  # noqa: E402
from hmrkit.hands.lite_i2l_estimator import lixels_to_side  # noqa: E402
from hmrkit.hands.post_opt import fit_hand  # noqa: E402
from hmrkit.models.lite_i2l import LiteI2L, LixelOutput, load_lite_i2l  # noqa: E402
from hmrkit.train.lite_i2l import load_real_crops, make_batch, predict_lixels  # noqa: E402

SYNTHETIC = Path("/work/hands_synth/test")


def joint_row(pred: torch.Tensor, gt: torch.Tensor) -> dict:
    aligned, _ = procrustes_align(pred.double(), gt.double())
    f = f_score(aligned, gt.double()).f.mean(0)
    return {"pa_mpjpe_mm": round(float(pa_mpjpe(pred, gt).mean()) * 1000, 2),
            "f_at_5mm": round(float(f[0]), 3), "f_at_15mm": round(float(f[1]), 3), "hands": len(gt)}


def mesh_row(joints: torch.Tensor, vertices: torch.Tensor | None, gt_joints: torch.Tensor, gt_vertices: torch.Tensor) -> dict:
    row = joint_row(joints, gt_joints)
    if vertices is not None:
        aligned, _ = procrustes_align(vertices.double(), gt_vertices.double())
        f = f_score(aligned, gt_vertices.double()).f.mean(0)
        row.update({"pa_mpvpe_mm": round(float(pa_pve(vertices, gt_vertices).mean()) * 1000, 2),
                    "mesh_f_at_5mm": round(float(f[0]), 3), "mesh_f_at_15mm": round(float(f[1]), 3)})
    return row


def lite_variants(out: LixelOutput, net: LiteI2L, sides: list[str], iks: dict[str, HandIK],
                  post_opt: bool = True) -> dict[str, tuple]:
    """(joints, vertices) in metres per row: the network alone, + IK, + IK + post-opt."""
    both = lixels_to_side(torch.cat([out.joints, out.vertices], 1), net.config, sides)
    joints, vertices = both[:, :21], both[:, 21:]
    mesh_joints = lixels_to_side(torch.cat([out.mesh_joints, out.vertices], 1), net.config, sides)[:, :21]
    rows = {"Lite I2L (PoseNet joints, MeshNet vertices)": (joints, vertices),
            "Lite I2L (MeshNet joints = regressor @ vertices)": (mesh_joints, vertices)}
    ik_rows = ik_variants(joints, sides, iks, post_opt)
    rows.update({f"Lite I2L + {k}": v for k, v in ik_rows.items()})
    return rows


def ik_variants(joints: torch.Tensor, sides: list[str], iks: dict[str, HandIK], post_opt: bool = True) -> dict[str, tuple]:
    """IK net, and IK net + 20 post-optimization steps, per side; (joints, vertices)."""
    names = ("IK", "IK + post-opt") if post_opt else ("IK",)
    out = {name: (torch.zeros_like(joints), torch.zeros(len(joints), 1596, 3)) for name in names}
    for side, ik in iks.items():
        idx = [i for i, s in enumerate(sides) if s == side]
        if not idx:
            continue
        with torch.no_grad():
            fit: HandFit = ik.predict(joints[idx], with_vertices=True)
        fits = {"IK": fit}
        if post_opt:
            fits["IK + post-opt"] = fit_hand(joints[idx], side, init=fit, with_vertices=True, hand=ik.hand)
        for name, f in fits.items():
            out[name][0][idx] = f.joints.detach()
            out[name][1][idx] = f.vertices.detach()
    return out


def rest_hand(iks: dict[str, HandIK], sides: list[str]) -> torch.Tensor:
    """(N, 21, 3) the neutral Anny hand of each side, all angles 0: the floor of having no estimate."""
    with torch.no_grad():
        rest = {side: ik.hand(torch.zeros(1, 23)).joints[0] for side, ik in iks.items()}
    return torch.stack([rest[s] for s in sides])


def real_crops(net: LiteI2L, iks: dict[str, HandIK]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The real crops as network input, their joints (m) and sides (all left: checked here)."""
    root = DATA / "hands_ge2019_dev"
    crops = load_real_crops(root, net.config.input_size)
    if crops is None:
        raise SystemExit(f"{root} not found: the real hands come from ../shared/data")
    images, gt = crops
    left_sign = chirality(iks["left"].hand(torch.zeros(1, 23)).joints)[0]
    gt_left = chirality(gt) == left_sign
    sides = ["left" if bool(s) else "right" for s in gt_left]
    if not all(s == "left" for s in sides):
        raise SystemExit("hands_ge2019_dev holds right hands: load_real_crops must flip them")
    return images, gt, sides


def bench_real(net: LiteI2L, iks: dict[str, HandIK]) -> dict:
    images, gt, sides = real_crops(net, iks)
    out = predict_lixels(net, images)
    rows = {k: joint_row(j, gt) for k, (j, _) in lite_variants(out, net, sides, iks).items()}
    # MediaPipe Hands (+ the IK net) on the crops it finds, and Lite I2L on that same subset
    _, full = real_hands()
    world, labels, mp_ms = run_mediapipe(full)
    found = ~np.isnan(world[:, 0, 0])
    mp_sides = ["left" if lab == "Right" else "right" for lab, f in zip(labels, found) if f]
    mp = torch.tensor(world[found])
    sub = torch.tensor(found)
    rows["no estimate: the Anny rest hand (what a hand without landmarks gets)"] = joint_row(rest_hand(iks, sides), gt)
    rows["MediaPipe world landmarks (found crops)"] = joint_row(mp, gt[sub])
    for name, (j, _) in ik_variants(mp, mp_sides, iks).items():
        rows[f"MediaPipe + {name} (found crops)"] = joint_row(j, gt[sub])
    lite_sub = LixelOutput(out.joints[sub], out.vertices[sub], out.mesh_joints[sub])
    for name, (j, _) in lite_variants(lite_sub, net, [s for s, f in zip(sides, found) if f], iks).items():
        if "MeshNet joints" in name:
            continue
        rows[f"{name} (MediaPipe's found crops)"] = joint_row(j, gt[sub])
    return {"crops": len(gt), "all_left_by_gt_chirality": True, "mediapipe_found": int(found.sum()),
            "mediapipe_side_left_share": round(float(np.mean([s == "left" for s in mp_sides])), 3),
            "mediapipe_ms_per_crop_median": round(statistics.median(mp_ms), 1), "rows": rows}


def synthetic_samples(net: LiteI2L, root: Path, count: int) -> tuple[list[int], LixelOutput, list[str], torch.Tensor, torch.Tensor]:
    """The first ``count`` samples of a synthetic set: indices, the network's output, sides, joints and vertices (m)."""
    from hmrkit.synth.hand_dataset import completed, load_hand
    from hmrkit.synth.dataset import label_path

    indices = sorted(completed(root))[:count]
    labels = [load_hand(label_path(root, i)) for i in indices]
    batch = make_batch(root, indices, net.config, None)
    out = predict_lixels(net, batch.images)
    sides = [lab.side for lab in labels]
    gt_j = torch.tensor(np.stack([lab.joints3d for lab in labels]))
    gt_v = torch.tensor(np.stack([lab.vertices for lab in labels]))
    return indices, out, sides, gt_j, gt_v


def crop_errors(net: LiteI2L, root: Path, indices: list[int], out: LixelOutput) -> dict:
    """Mean 2D distance (px of the network's input crop) of the PoseNet joints to the labels: all
    joints, and the visible ones (the labels' visibility code 2)."""
    from hmrkit.models.lite_i2l import lixels_to_crop
    from hmrkit.synth.dataset import label_path
    from hmrkit.synth.hand_dataset import VISIBLE, load_hand

    target = lixels_to_crop(make_batch(root, indices, net.config, None).joints, net.config)[..., :2]
    error = (lixels_to_crop(out.joints, net.config)[..., :2] - target).norm(dim=-1)
    visible = torch.tensor(np.stack([load_hand(label_path(root, i)).visibility for i in indices]) == VISIBLE)
    return {"joint_2d_px": round(float(error.mean()), 2), "visible_joint_2d_px": round(float(error[visible].mean()), 2),
            "crop_px": net.config.input_size}


def bench_synthetic(net: LiteI2L, iks: dict[str, HandIK], root: Path, count: int) -> dict | None:
    if not root.is_dir():
        return None
    indices, out, sides, gt_j, gt_v = synthetic_samples(net, root, count)
    crop = crop_errors(net, root, indices, out)
    variants = lite_variants(out, net, sides, iks)
    rows = {k: mesh_row(j, v, gt_j, gt_v) for k, (j, v) in variants.items()}
    # the fallback's case: crops where MediaPipe Hands finds no hand (synthetic: the network's own kind of image)
    from hmrkit.synth.hand_dataset import load_image

    world, _, _ = run_mediapipe([load_image(root, i) for i in indices])
    found = torch.tensor(~np.isnan(world[:, 0, 0]))
    joints = variants["Lite I2L (PoseNet joints, MeshNet vertices)"][0]
    with_ik = variants["Lite I2L + IK"][0]
    fallback = {"mediapipe_found": int(found.sum()),
                "lite_i2l_on_crops_mediapipe_found": joint_row(joints[found], gt_j[found]) if bool(found.any()) else None,
                "lite_i2l_on_crops_mediapipe_missed": joint_row(joints[~found], gt_j[~found]) if bool((~found).any()) else None,
                "lite_i2l_ik_on_crops_mediapipe_missed": joint_row(with_ik[~found], gt_j[~found]) if bool((~found).any()) else None,
                "rest_hand_on_crops_mediapipe_missed": joint_row(rest_hand(iks, sides)[~found], gt_j[~found]) if bool((~found).any()) else None,
                "mediapipe_on_crops_it_found": joint_row(torch.tensor(world[found.numpy()]), gt_j[found]) if bool(found.any()) else None}
    return {"set": str(root), "samples": len(indices), "sides": {s: sides.count(s) for s in ("left", "right")}, "rows": rows,
            "crop_2d": crop, "mediapipe_split": fallback}


def bench_speed(net: LiteI2L, repeats: int = 15) -> dict:
    """Median ms of one crop's forward pass, one torch thread (on these shared cores a second thread
    mostly waits for the other jobs)."""
    x = torch.rand(1, 3, net.config.input_size, net.config.input_size)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.no_grad():
        net(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            net(x)
            times.append((time.perf_counter() - t) * 1000)
    torch.set_num_threads(old)
    return {"1_thread_ms_median": round(statistics.median(times), 1)}


def table(result: dict) -> str:
    r = result["real"]
    lines = ["# Lite I2L MeshNet (hmrkit.models.lite_i2l)", "",
             f"`python benchmarks/bench_lite_i2l.py` -- weights `{result['weights']}` ({result['weights_steps']} training steps, "
             f"{result['input_size']} px input, trained on synthetic hands only). Machine: {result['machine']}.", "",
             f"## Real hands: hands_ge2019_dev ({r['crops']} crops, all left hands by the ground truth's chirality)", "",
             "Joints only (the set has no mesh: no PA-MPVPE). F-scores on the 21 joints after Procrustes alignment. "
             f"MediaPipe Hands found a hand in {r['mediapipe_found']} of {r['crops']} crops; its rows and the rows marked "
             "\"found crops\" are on that subset.", "",
             "| method | hands | PA-MPJPE (mm) | F@5 mm | F@15 mm |", "|---|---|---|---|---|"]
    for name, row in r["rows"].items():
        lines.append(f"| {name} | {row['hands']} | {row['pa_mpjpe_mm']:.1f} | {row['f_at_5mm']:.3f} | {row['f_at_15mm']:.3f} |")
    s = result.get("synthetic")
    if s:
        lines += ["", f"## Held-out synthetic hands ({s['samples']} samples of `{s['set']}`, a seed never trained on; "
                      f"{s['sides']['left']} left, {s['sides']['right']} right)", "",
                  "| method | PA-MPJPE (mm) | F@5 / F@15 joints | PA-MPVPE (mm) | F@5 / F@15 mesh |", "|---|---|---|---|---|"]
        for name, row in s["rows"].items():
            lines.append(f"| {name} | {row['pa_mpjpe_mm']:.1f} | {row['f_at_5mm']:.3f} / {row['f_at_15mm']:.3f} | "
                         f"{row['pa_mpvpe_mm']:.1f} | {row['mesh_f_at_5mm']:.3f} / {row['mesh_f_at_15mm']:.3f} |")
        c = s.get("crop_2d")
        if c:
            lines += ["", f"2D joint error of the PoseNet joints in the network's {c['crop_px']} px input crop: "
                          f"{c['joint_2d_px']:.2f} px over all joints, {c['visible_joint_2d_px']:.2f} px over the visible ones."]
        f = s["mediapipe_split"]
        lines += ["", f"The fallback's case on these crops: MediaPipe Hands found a hand in {f['mediapipe_found']} of {s['samples']}.", "",
                  "| joints | hands | PA-MPJPE (mm) | F@5 / F@15 |", "|---|---|---|---|"]
        for name, key in (("MediaPipe, crops it found", "mediapipe_on_crops_it_found"),
                          ("Lite I2L, crops MediaPipe found", "lite_i2l_on_crops_mediapipe_found"),
                          ("Lite I2L, crops MediaPipe missed", "lite_i2l_on_crops_mediapipe_missed"),
                          ("Lite I2L + IK, crops MediaPipe missed", "lite_i2l_ik_on_crops_mediapipe_missed"),
                          ("no estimate: the Anny rest hand, crops MediaPipe missed", "rest_hand_on_crops_mediapipe_missed")):
            row = f[key]
            if row:
                lines.append(f"| {name} | {row['hands']} | {row['pa_mpjpe_mm']:.1f} | {row['f_at_5mm']:.3f} / {row['f_at_15mm']:.3f} |")
    sp = result["speed"]
    lines += ["", f"## Speed per crop (batch of one, median of 15, {result['input_size']} px)", "",
              f"Lite I2L forward: {sp['1_thread_ms_median']:.1f} ms with 1 torch thread; "
              f"MediaPipe Hands on a 256 px crop: {r['mediapipe_ms_per_crop_median']:.1f} ms (its own threads). "
              f"GMACs: benchmarks/results/lite_i2l_macs.md.", ""]
    return "\n".join(lines)


# ------------------------------------------------------------- Tab. 3 analogue: data-variety ablation
ABLATION_ROWS = {"Lite I2L": "Lite I2L (PoseNet joints, MeshNet vertices)", "Lite I2L + IK": "Lite I2L + IK"}


def arm_commands(cfg: dict) -> dict:
    """The commands that made an arm's data and weights, rebuilt from its run's summary and set manifest."""
    from hmrkit.synth.hand_dataset import read_hand_manifest

    manifest = read_hand_manifest(Path(cfg["data"]))
    opts = manifest.options
    synth = (f"hmrkit synth hands --out {cfg['data']} --size {manifest.image_size[1]} --count {manifest.count} "
             f"--seed {manifest.seed}" + ("" if opts.get("pose_variety", True) else " --no-pose-variety")
             + ("" if opts.get("view_variety", True) else " --no-view-variety"))
    train = (f"nice -n 5 hmrkit train lite-i2l --data {cfg['data']} --max-samples {cfg.get('max_samples', 0)} "
             f"--input-size {cfg['input_size']} --batch-size {cfg['batch_size']} --steps {cfg['steps']} --warmup {cfg['warmup']} "
             f"--lr {cfg['lr']} --seed {cfg['seed']} --threads {cfg['threads']} --max-minutes {cfg['max_minutes']} "
             f"--val-every {cfg['val_every']} --checkpoint-every {cfg['checkpoint_every']} --grow-every {cfg['grow_every']} "
             f"--run-dir {cfg['run_dir']} --out {cfg['out']} --record {cfg['record']}")
    return {"synth": synth, "train": train, "pose_variety": bool(opts.get("pose_variety", True)),
            "view_variety": bool(opts.get("view_variety", True))}


def score_arm(net: LiteI2L, iks: dict[str, HandIK], synthetic: Path, count: int) -> tuple[dict, dict]:
    """Rows (Lite I2L alone, + IK) on the real crops and held-out synthetic set, and the per-hand
    PA-MPJPE (mm) behind them, for paired comparisons between arms."""
    images, gt, sides = real_crops(net, iks)
    _, s_out, s_sides, s_j, s_v = synthetic_samples(net, synthetic, count)
    rows, per_hand = {}, {}
    for set_name, out, set_sides, gt_j, gt_v in (("real", predict_lixels(net, images), sides, gt, None),
                                                 ("synthetic", s_out, s_sides, s_j, s_v)):
        variants = lite_variants(out, net, set_sides, iks, post_opt=False)
        for label, key in ABLATION_ROWS.items():
            joints, vertices = variants[key]
            rows[f"{set_name}: {label}"] = joint_row(joints, gt_j) if gt_v is None else mesh_row(joints, vertices, gt_j, gt_v)
            per_hand[f"{set_name}: {label}"] = (pa_mpjpe(joints, gt_j) * 1000).numpy()
    return rows, per_hand


def bench_ablation(specs: list[str], synthetic: Path, count: int) -> dict:
    """Each ``NAME=RUN_DIR`` (a ``hmrkit train lite-i2l`` run folder with its summary.json; a NAME
    given again: another training seed of that arm) scored alike. Differences to the first arm
    (per-hand errors averaged over an arm's seeds) and between the seeds of an arm (the training's
    own spread), with paired bootstrap 95% intervals over the hands."""
    import json

    from hmrkit.eval.bootstrap import paired_difference

    if not synthetic.is_dir():
        raise SystemExit(f"{synthetic} not found: the held-out synthetic set (hmrkit synth hands) is needed")
    iks = {side: HandIK.load(side) for side in ("left", "right")}
    arms, per_hand = {}, {}
    for spec in specs:
        name, sep, run_dir = spec.partition("=")
        summary_path = Path(run_dir) / "summary.json"
        if not sep or not name or not summary_path.is_file():
            raise SystemExit(f"--ablation {spec!r}: give NAME=RUN_DIR, a finished training run folder (summary.json)")
        summary = json.loads(summary_path.read_text())
        cfg = summary["config"]
        net, _ = load_lite_i2l(cfg["out"])
        rows, hands = score_arm(net, iks, synthetic, count)
        per_hand.setdefault(name, []).append(hands)
        commands = arm_commands(cfg)
        arm = arms.setdefault(name, {"pose_variety": commands["pose_variety"], "view_variety": commands["view_variety"],
                                     "synth_command": commands["synth"], "max_samples": cfg.get("max_samples", 0), "runs": []})
        arm["runs"].append({"seed": cfg["seed"], "run_dir": run_dir, "weights": cfg["out"], "steps": summary["steps"],
                            "batch_size": summary["batch_size"], "input_size": summary["net"]["input_size"],
                            "train_seconds": summary["seconds"], "training_samples": summary["samples"],
                            "train_machine": summary["machine"], "train_command": commands["train"], "rows": rows})

    # the floor of no estimate (the Anny rest hand), on the same hands
    _, gt, sides = real_crops(net, iks)
    _, _, s_sides, s_j, _ = synthetic_samples(net, synthetic, count)
    rest = {"real": joint_row(rest_hand(iks, sides), gt), "synthetic": joint_row(rest_hand(iks, s_sides), s_j)}

    def entry(d) -> dict:
        return {"mean_mm": round(d.mean, 2), "low_mm": round(d.low, 2), "high_mm": round(d.high, 2), "excludes_zero": d.excludes_zero()}

    reference = next(iter(arms))
    mean_over_seeds = {name: {k: np.mean([h[k] for h in runs], 0) for k in runs[0]} for name, runs in per_hand.items()}
    differences = {}
    for name in list(arms)[1:]:
        for key in mean_over_seeds[name]:
            differences[f"{name} - {reference} | {key}"] = entry(paired_difference(mean_over_seeds[name][key], mean_over_seeds[reference][key]))
    for name, runs in per_hand.items():
        seeds = [r["seed"] for r in arms[name]["runs"]]
        for i in range(1, len(runs)):
            for key in runs[i]:
                differences[f"{name}: seed {seeds[i]} - seed {seeds[0]} (training noise) | {key}"] = entry(
                    paired_difference(runs[i][key], runs[0][key]))
    return {"reference": reference, "synthetic_set": str(synthetic), "synthetic_count": count, "arms": arms,
            "rest_hand": rest, "differences_pa_mpjpe": differences}


def ablation_table(result: dict) -> str:
    arms = result["arms"]
    first = next(iter(arms.values()))["runs"][0]
    seeds = sorted({r["seed"] for a in arms.values() for r in a["runs"]})
    lines = ["# Lite I2L MeshNet: effect of the synthetic data's pose and view variety (Fan & Wang 2023, Tab. 3 analogue)", "",
             "`python benchmarks/bench_lite_i2l.py --ablation " + " ".join(f"{k}=RUN_DIR" for k, a in arms.items() for _ in a["runs"])
             + f"` (run folders: {', '.join(r['run_dir'] for a in arms.values() for r in a['runs'])}). Machine: {result['machine']}.", "",
             f"**Small-budget models, not the shipped one**: every run is {first['steps']} steps of batch {first['batch_size']} at "
             f"{first['input_size']} px from ImageNet initialisation on the first {next(iter(arms.values()))['max_samples']:,} samples "
             "of a synthetic set (the shipped `lite_i2l.safetensors` had 4400 steps on 20,000), the same options for every run, "
             f"training seeds {', '.join(map(str, seeds))}; only the training data differ between arms. Their absolute errors are far "
             "from a trained network's; only the differences between arms mean something, and only where they exceed both the "
             "test-set noise (bootstrap interval) and the spread between training seeds of one arm.", "",
             "Commands (data, then training; `hmrkit` = `.venv/bin/hmrkit`):", ""]
    for name, arm in arms.items():
        lines.append(f"- {name} data: `{arm['synth_command']}` (first {arm['max_samples']:,} samples used)")
        for run in arm["runs"]:
            lines.append(f"  - seed {run['seed']}: `{run['train_command']}` ({run['steps']} steps in {run['train_seconds']:.0f} s; "
                         f"{run['training_samples']['train']} training samples)")
    lines += ["", f"Scored on the real `hands_ge2019_dev` crops (100, joints only) and the first {result['synthetic_count']} "
              f"samples of the held-out synthetic set `{result['synthetic_set']}` (seed 2, full pose and view variety). "
              "PA-MPJPE / PA-MPVPE in mm, F@5 / F@15 mm after Procrustes alignment; + IK: the IK net's fit to the network's joints.", "",
              "| arm | seed | pose variety | view variety | real: Lite I2L PA-MPJPE | F@5 / F@15 | real: + IK PA-MPJPE | F@5 / F@15 | "
              "synthetic: Lite I2L PA-MPJPE | F@5 / F@15 | PA-MPVPE | synthetic: + IK PA-MPJPE | PA-MPVPE |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    yes = lambda b: "yes" if b else "no"  # noqa: E731
    for name, arm in arms.items():
        for run in arm["runs"]:
            r = run["rows"]
            cells = [name, str(run["seed"]), yes(arm["pose_variety"]), yes(arm["view_variety"])]
            for key in ("real: Lite I2L", "real: Lite I2L + IK"):
                cells += [f"{r[key]['pa_mpjpe_mm']:.1f}", f"{r[key]['f_at_5mm']:.3f} / {r[key]['f_at_15mm']:.3f}"]
            s, si = r["synthetic: Lite I2L"], r["synthetic: Lite I2L + IK"]
            cells += [f"{s['pa_mpjpe_mm']:.1f}", f"{s['f_at_5mm']:.3f} / {s['f_at_15mm']:.3f}", f"{s['pa_mpvpe_mm']:.1f}",
                      f"{si['pa_mpjpe_mm']:.1f}", f"{si['pa_mpvpe_mm']:.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
    rr, rs = result["rest_hand"]["real"], result["rest_hand"]["synthetic"]
    lines.append(f"| no estimate: the Anny rest hand | - | - | - | {rr['pa_mpjpe_mm']:.1f} | {rr['f_at_5mm']:.3f} / {rr['f_at_15mm']:.3f} "
                 f"| - | - | {rs['pa_mpjpe_mm']:.1f} | {rs['f_at_5mm']:.3f} / {rs['f_at_15mm']:.3f} | - | - | - |")
    lines += ["", f"Differences in PA-MPJPE (positive: the first named is worse): each arm against `{result['reference']}` "
              "(per-hand errors averaged over the arm's seeds), and between the seeds of one arm (the training's own spread), "
              "with paired bootstrap 95% intervals over the hands (2000 resamples):", "",
              "| comparison | set: method | mean difference (mm) | 95% interval (mm) | interval excludes 0 |", "|---|---|---|---|---|"]
    for key, d in result["differences_pa_mpjpe"].items():
        comparison, row = key.split(" | ")
        lines.append(f"| {comparison} | {row} | {d['mean_mm']:+.1f} | [{d['low_mm']:+.1f}, {d['high_mm']:+.1f}] | "
                     f"{'yes' if d['excludes_zero'] else 'no'} |")
    return "\n".join(lines + [""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="default: the shipped hmrkit/weights/lite_i2l.safetensors")
    parser.add_argument("--synthetic", default=str(SYNTHETIC))
    parser.add_argument("--count", type=int, default=300, help="held-out synthetic samples")
    parser.add_argument("--name", default="lite_i2l", help="results file name")
    parser.add_argument("--ablation", nargs="+", metavar="NAME=RUN_DIR", default=None,
                        help="Tab. 3 analogue: score these training runs alike (the first is the reference); "
                             "writes lite_i2l_ablation")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the cores are shared; the speed row uses one thread either way
    if args.ablation:
        result = bench_ablation(args.ablation, Path(args.synthetic), args.count)
        result["machine"] = machine(with_load=True)
        write("lite_i2l_ablation", result, ablation_table(result))
        return
    net, meta = load_lite_i2l(args.weights)
    iks = {side: HandIK.load(side) for side in ("left", "right")}
    result = {"weights": args.weights or "hmrkit/weights/lite_i2l.safetensors", "weights_steps": meta.get("steps"),
              "input_size": net.config.input_size}
    result["real"] = bench_real(net, iks)
    result["synthetic"] = bench_synthetic(net, iks, Path(args.synthetic), args.count)
    result["speed"] = bench_speed(net)
    result["machine"] = machine(with_load=True)
    write(args.name, result, table(result))


if __name__ == "__main__":
    main()
