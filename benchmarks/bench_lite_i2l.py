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


def lite_variants(out: LixelOutput, net: LiteI2L, sides: list[str], iks: dict[str, HandIK]) -> dict[str, tuple]:
    """(joints, vertices) in metres per row: the network alone, + IK, + IK + post-opt."""
    both = lixels_to_side(torch.cat([out.joints, out.vertices], 1), net.config, sides)
    joints, vertices = both[:, :21], both[:, 21:]
    mesh_joints = lixels_to_side(torch.cat([out.mesh_joints, out.vertices], 1), net.config, sides)[:, :21]
    rows = {"Lite I2L (PoseNet joints, MeshNet vertices)": (joints, vertices),
            "Lite I2L (MeshNet joints = regressor @ vertices)": (mesh_joints, vertices)}
    ik_rows = ik_variants(joints, sides, iks)
    rows.update({f"Lite I2L + {k}": v for k, v in ik_rows.items()})
    return rows


def ik_variants(joints: torch.Tensor, sides: list[str], iks: dict[str, HandIK]) -> dict[str, tuple]:
    """IK net, and IK net + 20 post-optimization steps, per side; (joints, vertices)."""
    out = {name: (torch.zeros_like(joints), torch.zeros(len(joints), 1596, 3)) for name in ("IK", "IK + post-opt")}
    for side, ik in iks.items():
        idx = [i for i, s in enumerate(sides) if s == side]
        if not idx:
            continue
        with torch.no_grad():
            fit: HandFit = ik.predict(joints[idx], with_vertices=True)
        refined = fit_hand(joints[idx], side, init=fit, with_vertices=True, hand=ik.hand)
        for name, f in (("IK", fit), ("IK + post-opt", refined)):
            out[name][0][idx] = f.joints.detach()
            out[name][1][idx] = f.vertices.detach()
    return out


def rest_hand(iks: dict[str, HandIK], sides: list[str]) -> torch.Tensor:
    """(N, 21, 3) the neutral Anny hand of each side, all angles 0: the floor of having no estimate."""
    with torch.no_grad():
        rest = {side: ik.hand(torch.zeros(1, 23)).joints[0] for side, ik in iks.items()}
    return torch.stack([rest[s] for s in sides])


def bench_real(net: LiteI2L, iks: dict[str, HandIK]) -> dict:
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


def bench_synthetic(net: LiteI2L, iks: dict[str, HandIK], root: Path, count: int) -> dict | None:
    from hmrkit.synth.hand_dataset import completed, load_hand
    from hmrkit.synth.dataset import label_path

    if not root.is_dir():
        return None
    indices = sorted(completed(root))[:count]
    labels = [load_hand(label_path(root, i)) for i in indices]
    batch = make_batch(root, indices, net.config, None)
    out = predict_lixels(net, batch.images)
    sides = [lab.side for lab in labels]
    gt_j = torch.tensor(np.stack([lab.joints3d for lab in labels]))
    gt_v = torch.tensor(np.stack([lab.vertices for lab in labels]))
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
            "mediapipe_split": fallback}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="default: the shipped hmrkit/weights/lite_i2l.safetensors")
    parser.add_argument("--synthetic", default=str(SYNTHETIC))
    parser.add_argument("--count", type=int, default=300, help="held-out synthetic samples")
    parser.add_argument("--name", default="lite_i2l", help="results file name")
    args = parser.parse_args()
    torch.set_num_threads(2)
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
