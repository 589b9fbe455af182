"""Hands benchmark: 23-DoF IK net + post-optimization (Fan & Wang 2023, Table 4 analogue).

    python benchmarks/bench_hands.py

(a) Real hands: 100 crops of Ge et al. 2019's real test set (../shared/data/hands_ge2019_dev).
    MediaPipe Hands (0.10.21, static, one hand) gives metric world landmarks; the hand side is
    MediaPipe's handedness label flipped (it labels hands as if the photo were mirrored, see
    hmrkit.perception). Each variant's 21 joints are compared with the ground truth.
(b) Synthetic held-out hands (seed never used in training): 45-DoF hands (23-DoF poses plus
    random 4-degree twists at every joint, so they are not exactly representable), random
    phenotypes and orientations, left and right, with MediaPipe-like landmark noise; mesh
    metrics on the Anny hand mesh.
(c) Speed per hand (batch of one) per stage, median milliseconds.

Writes benchmarks/results/hands.json and hands.md. Machine: 2 CPU cores (shared), CPU only.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import roma
import torch

from hmrkit.eval.metrics import f_score, mpjpe, pa_mpjpe, pa_pve
from hmrkit.geometry.procrustes import procrustes_align
from hmrkit.hands.biomech import NUM_ANGLES, bounded_angles, unbounded_angles
from hmrkit.hands.hand_model import BiomechHand, HandFit
from hmrkit.hands.ik_net import HandIK
from hmrkit.hands.post_opt import bend_direction_penalty, fit_hand, project_pose
from hmrkit.hands.synth import SynthConfig, landmark_noise, random_angles, random_rotations, random_shapes

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "hands_ge2019_dev"
RESULTS = ROOT / "benchmarks" / "results"
GROUPS = {"wrist": [0], "thumb": [1, 2, 3, 4], "finger_mcp": [5, 9, 13, 17], "finger_pip_dip": [6, 7, 10, 11, 14, 15, 18, 19],
          "finger_tips": [8, 12, 16, 20]}


def mm(x) -> float:
    return round(float(torch.as_tensor(x).float().mean()) * 1000.0, 2)


# ---------------------------------------------------------------------------------- fitting helpers
def fit_free(hand: BiomechHand, target: torch.Tensor, init: HandFit, iterations: int = 20, lr: float = 0.02) -> torch.Tensor:
    """The 45-DoF baseline: free 3-DoF rotations at all 15 finger joints (from ``init``), Adam."""
    base = hand.rotations(init.angles)[:, 1:].detach()
    delta = torch.zeros(target.shape[0], 15, 3, requires_grad=True)
    shape_raw = torch.logit(init.shape.clamp(1e-3, 1 - 1e-3)).clone().requires_grad_(True)
    turn = torch.zeros(target.shape[0], 3, requires_grad=True)
    shift = torch.zeros(target.shape[0], 3, requires_grad=True)
    opt = torch.optim.Adam([{"params": [delta, turn], "lr": lr}, {"params": [shape_raw], "lr": 0.02}, {"params": [shift], "lr": 0.05}])

    def joints():
        root = (init.global_rotation @ roma.rotvec_to_rotmat(turn))[:, None]
        rot = torch.cat([root, base @ roma.rotvec_to_rotmat(delta)], 1)
        out = hand.posed(rot, torch.sigmoid(shape_raw))
        return out.joints + init.translation[:, None] + shift[:, None] / 100.0

    for _ in range(iterations):
        loss = ((joints() - target).norm(dim=-1).mean(-1) * 1000).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return joints()


def fit_shared_shape(hand: BiomechHand, ik: HandIK, target: torch.Tensor, iterations: int = 300) -> torch.Tensor:
    """One phenotype vector for all frames (the 'known shape'): joint Adam fit of a shared shape and
    per-frame 23-DoF poses to the ground-truth joints, started from the IK net on them."""
    init = ik.predict(target)
    raw = unbounded_angles(init.angles, hand.axes).requires_grad_(True)
    shape_raw = torch.logit(init.shape.mean(0, keepdim=True).clamp(1e-3, 1 - 1e-3)).requires_grad_(True)
    turn = torch.zeros(target.shape[0], 3, requires_grad=True)
    shift = torch.zeros(target.shape[0], 3, requires_grad=True)
    opt = torch.optim.Adam([{"params": [raw], "lr": 0.05}, {"params": [shape_raw], "lr": 0.02},
                            {"params": [turn], "lr": 0.01}, {"params": [shift], "lr": 0.05}])
    for _ in range(iterations):
        shape = torch.sigmoid(shape_raw).expand(target.shape[0], -1)
        out = hand(bounded_angles(raw, hand.axes), shape, init.global_rotation @ roma.rotvec_to_rotmat(turn),
                   init.translation + shift / 100.0)
        loss = ((out.joints - target).norm(dim=-1).mean(-1) * 1000).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.sigmoid(shape_raw).detach()[0]


def variants(ik: HandIK, observed: torch.Tensor, known: torch.Tensor, with_vertices: bool) -> dict[str, HandFit | torch.Tensor]:
    side = ik.side
    net = ik.predict(observed, with_vertices=with_vertices)
    out: dict[str, HandFit | torch.Tensor] = {
        "IK net": net,
        "IK net + post-opt (20 it)": fit_hand(observed, side, init=net, with_vertices=with_vertices, hand=ik.hand),
        "post-opt only, from rest (20 it)": fit_hand(observed, side, with_vertices=with_vertices, hand=ik.hand),
        "post-opt only, from rest (100 it)": fit_hand(observed, side, iterations=100, with_vertices=with_vertices, hand=ik.hand),
    }
    net_known = ik.predict(observed, known_shape=known, with_vertices=with_vertices)
    out["IK net, known shape"] = net_known
    out["IK net + post-opt, known shape"] = fit_hand(observed, side, init=net_known, known_shape=known,
                                                     with_vertices=with_vertices, hand=ik.hand)
    out["45-DoF post-opt from IK (20 it)"] = fit_free(ik.hand, observed, net)
    return out


def joints_of(v: HandFit | torch.Tensor) -> torch.Tensor:
    return v.joints if isinstance(v, HandFit) else v


# ---------------------------------------------------------------------------------- (a) real hands
def run_mediapipe(images: list[np.ndarray], model_complexity: int = 1) -> tuple[np.ndarray, list[str], list[float]]:
    """MediaPipe Hands' world landmarks (NaN where no hand), labels and ms per image."""
    import mediapipe as mp

    world = np.full((len(images), 21, 3), np.nan, np.float32)
    labels, times = [], []
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=1, model_complexity=model_complexity) as hands:
        hands.process(images[0])  # warm-up
        for i, image in enumerate(images):
            t = time.perf_counter()
            result = hands.process(image)
            times.append((time.perf_counter() - t) * 1000)
            if result.multi_hand_world_landmarks:
                world[i] = [(p.x, p.y, p.z) for p in result.multi_hand_world_landmarks[0].landmark]
                labels.append(result.multi_handedness[0].classification[0].label)
            else:
                labels.append("")
    return world, labels, times


def chirality(joints: torch.Tensor) -> torch.Tensor:
    """+1 / -1 per hand: which side of the palm plane the fingers curl to, relative to the thumb side.
    Anny's left rest hand gives the sign of LEFT_CHIRALITY."""
    n = torch.linalg.cross(joints[:, 5] - joints[:, 0], joints[:, 17] - joints[:, 0])
    curl = joints[:, [8, 12, 16, 20]].mean(1) - joints[:, [5, 9, 13, 17]].mean(1)
    return torch.sign((n * curl).sum(-1))


def crop_ray_rotation(cam: np.ndarray, box: np.ndarray) -> torch.Tensor:
    """Rotation taking the optical axis to the ray through each crop centre (MediaPipe's world
    landmarks are predicted as if the crop were seen head-on)."""
    fx, fy, cx, cy = cam.T
    x, y, w, h = box.T.astype(np.float64)
    ray = np.stack([(x + w / 2 - cx) / fx, (y + h / 2 - cy) / fy, np.ones_like(fx)], 1)
    ray = torch.tensor(ray / np.linalg.norm(ray, axis=1, keepdims=True), dtype=torch.float32)
    z = torch.tensor([0.0, 0.0, 1.0]).expand_as(ray)
    axis = torch.linalg.cross(z, ray)
    angle = torch.atan2(axis.norm(dim=-1), ray[:, 2])
    return roma.rotvec_to_rotmat(axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12) * angle[:, None])


def real_metrics(pred: torch.Tensor, gt: torch.Tensor, ray: torch.Tensor) -> dict:
    rel = pred - pred[:, :1]
    turned = rel @ ray.transpose(1, 2)
    g = gt - gt[:, :1]
    scale = (turned * g).sum((1, 2)) / (turned * turned).sum((1, 2))
    aligned, _ = procrustes_align(pred, gt)
    per_joint = (aligned - gt).norm(dim=-1)
    return {
        "pa_mpjpe": mm(pa_mpjpe(pred, gt)),
        "rr_mpjpe": mm(mpjpe(pred, gt, root=0)),
        "rr_mpjpe_aligned": mm(mpjpe(turned * scale[:, None, None], g, root=0)),
        "pa_by_group": {k: mm(per_joint[:, v]) for k, v in GROUPS.items()},
        "bend_violation": round(float(bend_direction_penalty(pred).mean()), 4),
    }


def real_hands() -> tuple[dict, list[np.ndarray]]:
    """The real test crops: their annotations and RGB images."""
    from PIL import Image

    ann = np.load(DATA / "annotations.npz")
    return ann, [np.asarray(Image.open(DATA / "images" / name).convert("RGB")) for name in ann["image_names"]]


def bench_real(ik_left: HandIK, ik_right: HandIK) -> dict:
    ann, images = real_hands()
    gt_all = torch.tensor(ann["joints_cam_mm"], dtype=torch.float32) / 1000.0
    world, labels, mp_times = run_mediapipe(images)
    found = ~np.isnan(world[:, 0, 0])
    det = torch.tensor(found)
    # MediaPipe labels hands as if mirrored: "Right" is the person's left hand
    sides = ["left" if lab == "Right" else "right" for lab in labels]
    left_sign = chirality(ik_left.hand(torch.zeros(1, NUM_ANGLES)).joints)[0]
    gt_sides = ["left" if s == left_sign else "right" for s in chirality(gt_all)]
    side_agree = float(np.mean([s == g for s, g, f in zip(sides, gt_sides, found) if f]))

    gt, mp_world = gt_all[det], torch.tensor(world[found])
    ray = crop_ray_rotation(ann["cam_fx_fy_cx_cy"][found], ann["bbox_xywh_in_frame"][found])
    det_sides = [s for s, f in zip(sides, found) if f]
    results: dict[str, dict] = {"MediaPipe world landmarks (raw)": real_metrics(mp_world, gt, ray)}
    # known shape: one phenotype vector fitted to all ground-truth frames
    known_shape = {}
    for side, ik in (("left", ik_left), ("right", ik_right)):
        idx = [i for i, s in enumerate(det_sides) if s == side]
        if idx:
            known_shape[side] = fit_shared_shape(ik.hand, ik, gt[idx])
    preds: dict[str, torch.Tensor] = {}
    for side, ik in (("left", ik_left), ("right", ik_right)):
        idx = [i for i, s in enumerate(det_sides) if s == side]
        if not idx:
            continue
        outs = variants(ik, mp_world[idx], known_shape[side].expand(len(idx), -1), with_vertices=False)
        for name, value in outs.items():
            preds.setdefault(name, torch.zeros_like(mp_world))[idx] = joints_of(value)
        # the convention floor: Anny fitted straight to the ground truth (oracle input)
        on_gt = ik.predict(gt[idx])
        floor23 = fit_hand(gt[idx], side, init=on_gt, iterations=200, hand=ik.hand)
        preds.setdefault("oracle: 23-DoF fit to GT joints (200 it)", torch.zeros_like(mp_world))[idx] = floor23.joints
        preds.setdefault("oracle: 45-DoF fit to GT joints (200 it)", torch.zeros_like(mp_world))[idx] = fit_free(
            ik.hand, gt[idx], floor23, iterations=200)
    for name, pred in preds.items():
        results[name] = real_metrics(pred, gt, ray)
    bone_ratio = float((mp_world[:, 1:] - mp_world[:, PARENTS]).norm(dim=-1).sum(1).div(
        (gt[:, 1:] - gt[:, PARENTS]).norm(dim=-1).sum(1)).mean())
    return {
        "images": len(images),
        "detected": int(found.sum()),
        "detection_rate": round(float(found.mean()), 3),
        "side_from_mediapipe_agrees_with_gt_chirality": round(side_agree, 3),
        "sides": {s: det_sides.count(s) for s in ("left", "right")},
        "mediapipe_bone_length_ratio_to_gt": round(bone_ratio, 3),
        "known_shape_phenotypes": {s: [round(float(x), 3) for x in v] for s, v in known_shape.items()},
        "mediapipe_ms_per_crop_median": round(statistics.median(mp_times), 1),
        "variants": results,
    }


PARENTS = [0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19]


# ---------------------------------------------------------------------------------- (b) synthetic
def synthetic_set(hand: BiomechHand, n: int, gen: torch.Generator, twist_deg: float = 4.0):
    cfg = SynthConfig()
    angles = random_angles(n, hand.axes, cfg, gen)
    shape = random_shapes(n, cfg, gen)
    rotation = random_rotations(n, gen)
    twist = roma.rotvec_to_rotmat(np.radians(twist_deg) * torch.randn(n, 15, 3, generator=gen))
    rot = hand.rotations(angles, rotation)
    rot = torch.cat([rot[:, :1], rot[:, 1:] @ twist], 1)
    with torch.no_grad():
        out = hand.posed(rot, shape, with_vertices=True)
    joints, vertices = out.joints, out.vertices
    observed = landmark_noise(joints, SynthConfig(clean_share=0.0), gen)
    return {"angles": angles, "shape": shape, "finger_rotations": rot[:, 1:], "rotation": rotation,
            "joints": joints, "vertices": vertices, "observed": observed}


def mesh_metrics(joints, vertices, gt) -> dict:
    row = {"pa_mpjpe": mm(pa_mpjpe(joints, gt["joints"]))}
    if vertices is not None:
        aligned, _ = procrustes_align(vertices, gt["vertices"])
        f = f_score(aligned, gt["vertices"]).f.mean(0)
        row.update({"pa_mpvpe": mm(pa_pve(vertices, gt["vertices"])), "f_at_5mm": round(float(f[0]), 3),
                    "f_at_15mm": round(float(f[1]), 3)})
    return row


def bench_synthetic(iks: dict[str, HandIK], n_per_side: int = 200) -> dict:
    gen = torch.Generator().manual_seed(2024)
    rows: dict[str, list] = {}
    representation: dict[str, list] = {}
    for side, ik in iks.items():
        gt = synthetic_set(ik.hand, n_per_side, gen)
        for inputs, observed in (("noisy", gt["observed"]), ("clean", gt["joints"])):
            outs = variants(ik, observed, gt["shape"], with_vertices=True)
            for name, value in outs.items():
                if isinstance(value, HandFit):
                    metrics = mesh_metrics(value.joints, value.vertices, gt)
                else:
                    metrics = mesh_metrics(value, None, gt)
                rows.setdefault(f"{inputs}: {name}", []).append(metrics)
        rows.setdefault("noisy: input landmarks themselves", []).append(mesh_metrics(gt["observed"], None, gt))
        # 45 -> 23 DoF: the cost of the restriction on the exact 45-DoF hands (known shape)
        for iters in (0, 30):
            angles = project_pose(gt["finger_rotations"], side, gt["shape"], iterations=iters, hand=ik.hand)
            out = ik.hand(angles, gt["shape"], gt["rotation"], with_vertices=True)
            representation.setdefault(f"45->23 projection, {'analytic' if iters == 0 else f'analytic + {iters} position steps'}", []).append(
                mesh_metrics(out.joints, out.vertices, gt))
    merge = lambda lst: {k: round(float(np.mean([r[k] for r in lst])), 3) for k in lst[0]}  # noqa: E731
    return {"hands": n_per_side * len(iks), "twist_deg": 4.0, "variants": {k: merge(v) for k, v in rows.items()},
            "representation": {k: merge(v) for k, v in representation.items()}}


# ---------------------------------------------------------------------------------- (c) speed
def bench_speed(ik: HandIK, n: int = 40, batch: int = 64) -> dict:
    """Median ms per hand, one torch thread (batch-of-one work is bound by per-op overhead, and a
    second thread only contends on a shared 2-core machine); plus the per-hand cost in a batch."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(99)
    gt = synthetic_set(ik.hand, max(n, batch), gen)
    times: dict[str, list[float]] = {}

    def clock(name, fn, per=1):
        t = time.perf_counter()
        value = fn()
        times.setdefault(name, []).append((time.perf_counter() - t) * 1000 / per)
        return value

    for i in range(n):
        obs = gt["observed"][i : i + 1]
        net = clock("IK net (features, net, palm placement, joints)", lambda: ik.predict(obs))
        clock("post-opt, 20 Adam steps", lambda: fit_hand(obs, ik.side, init=net, hand=ik.hand))
        clock("IK net + post-opt (HandIK.solve)", lambda: ik.solve(obs))
        clock("mesh vertices of a solved hand", lambda: ik.hand(net.angles, net.shape, net.global_rotation, net.translation, with_vertices=True))
    obs = gt["observed"][:batch]
    for _ in range(5):
        clock(f"IK net, per hand in a batch of {batch}", lambda: ik.predict(obs), batch)
        clock(f"IK net + post-opt, per hand in a batch of {batch}", lambda: ik.solve(obs), batch)
    torch.set_num_threads(threads)
    return {k: round(statistics.median(v[2:]), 2) for k, v in times.items()}


# ---------------------------------------------------------------------------------- report
def markdown(report: dict) -> str:
    lines = [
        "# Hands: 23-DoF IK net + post-optimization",
        "",
        f"Machine: {report['machine']}; load average {report['load_average_at_start']} at the start, "
        f"{report['load_average_at_end']} at the end (1, 5, 15 min). Command: `python benchmarks/bench_hands.py`. Units: mm.",
        "",
    ]
    real = report.get("real")
    if real:
        lines += [
            f"## (a) Real hands: Ge et al. 2019 real test set, first 100 crops (input: MediaPipe Hands world landmarks)",
            "",
            f"MediaPipe found a hand in {real['detected']}/{real['images']} crops (rate {real['detection_rate']}); "
            f"the side from its (flipped) handedness agrees with the ground truth's chirality in "
            f"{real['side_from_mediapipe_agrees_with_gt_chirality'] * 100:.0f} % ({real['sides']}). Metrics on detected hands. "
            "rr = root(wrist)-relative MPJPE; 'aligned' = MediaPipe frame turned onto the crop's viewing ray, then "
            "least-squares scaled about the wrist to the ground truth (an oracle scale: MediaPipe's metric scale is off by "
            f"{(real['mediapipe_bone_length_ratio_to_gt'] - 1) * 100:+.0f} % in summed bone length here). "
            "Known shape: one phenotype vector per side fitted once to all ground-truth frames (shared shape, per-frame "
            "poses, 300 Adam steps).",
            "",
            "| variant | PA-MPJPE | rr MPJPE (as is) | rr MPJPE (aligned) | PA wrist | PA thumb | PA finger MCPs | PA PIP/DIP | PA tips |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in real["variants"].items():
            g = r["pa_by_group"]
            lines.append(f"| {name} | {r['pa_mpjpe']} | {r['rr_mpjpe']} | {r['rr_mpjpe_aligned']} | {g['wrist']} | {g['thumb']} | "
                         f"{g['finger_mcp']} | {g['finger_pip_dip']} | {g['finger_tips']} |")
        lines.append("")
    syn = report["synthetic"]
    lines += [
        f"## (b) Synthetic held-out hands ({syn['hands']}, half left, half right; 23-DoF poses + {syn['twist_deg']} deg "
        "random twists at every joint; MediaPipe-like noise for 'noisy')",
        "",
        "Known shape = the true phenotypes. F-scores on the Procrustes-aligned mesh (1,596 vertices).",
        "",
        "| inputs: variant | PA-MPJPE | PA-MPVPE | F@5 mm | F@15 mm |",
        "|---|---|---|---|---|",
    ]
    for name, r in syn["variants"].items():
        lines.append(f"| {name} | {r['pa_mpjpe']} | {r.get('pa_mpvpe', '-')} | {r.get('f_at_5mm', '-')} | {r.get('f_at_15mm', '-')} |")
    lines += ["", "45-DoF -> 23-DoF (the exact 45-DoF hands, true shape and placement):", "",
              "| projection | PA-MPJPE | PA-MPVPE | F@5 mm | F@15 mm |", "|---|---|---|---|---|"]
    for name, r in syn["representation"].items():
        lines.append(f"| {name} | {r['pa_mpjpe']} | {r['pa_mpvpe']} | {r['f_at_5mm']} | {r['f_at_15mm']} |")
    lines += ["", "## (c) Speed per hand (median ms; one torch thread; machine load average at the end "
              f"{report['load_average_at_end']} on 2 cores, so absolute times are inflated)", "", "| stage | ms |", "|---|---|"]
    if real:
        lines.append(f"| MediaPipe Hands on a 256x256 crop | {real['mediapipe_ms_per_crop_median']} |")
    for name, v in report["speed_ms"].items():
        lines.append(f"| {name} | {v} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    torch.set_num_threads(1)  # the machine's 2 cores are shared
    torch.manual_seed(0)
    start = time.time()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    iks = {side: HandIK.load(side) for side in ("left", "right")}
    report = {"machine": f"{os.cpu_count()} CPU cores (shared with other jobs), CPU only, torch {torch.__version__}, "
                         f"{platform.python_implementation()} {platform.python_version()}"}
    if DATA.exists():
        report["real"] = bench_real(iks["left"], iks["right"])
    else:
        print(f"skipping the real-hands part: {DATA} not found (see ../shared/data/README.md)", file=sys.stderr)
    report["synthetic"] = bench_synthetic(iks)
    report["speed_ms"] = bench_speed(iks["left"])
    report["load_average_at_start"] = load_at_start
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["seconds"] = round(time.time() - start, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hands.json").write_text(json.dumps(report, indent=1))
    (RESULTS / "hands.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
