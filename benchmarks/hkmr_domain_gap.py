"""The synthetic-to-real gap of HKMR's input: MediaPipe's landmarks on real photos vs what
:mod:`hmrkit.data.synth_keypoints` draws.

    python benchmarks/hkmr_domain_gap.py [--images 300] [--synthetic 4000]

Real: MediaPipe (the pipeline's backend, no hands) on LSPET photos (``../shared/data/lspet_dev``,
first ``--images`` photos with a labelled torso and >= 10 labelled joints), the detection
nearest the labels. Synthetic: a fixed draw from the CMU ``train`` split with the first noise
model (:data:`~hmrkit.data.synth_keypoints.V1_NOISE`, what the shipped v1 weights trained on) and,
for the seen shares and 2D errors, the same draw with the current defaults (fitted to these
measurements: "synthetic v2").

Compared: (1) which landmarks count as seen (MediaPipe visibility >= the pipeline's 0.2), in
and out of the image; (2) the person box (the encoder's frame) relative to the image; (3) 2D
error per joint against the labels (real: MediaPipe vs the crowd-sourced LSP labels, which also
define joints differently, so an upper bound; synthetic: noisy vs clean), in units of the box;
(4) the metric 3D ("world") landmarks: scale, bone lengths, the depth axis' compression (the
factor c that makes each bone's length most constant across samples when z is divided by it)
and the agreement of their x-y with the 2D landmarks (similarity fit residual, in-plane angle).
Results: benchmarks/results/hkmr_domain_gap.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_common import machine, write  # noqa: E402
from bench_hkmr import lsp_items  # noqa: E402
from hmrkit.body.conventions import LSP14, MEDIAPIPE33  # noqa: E402
from hmrkit.fitting.targets import MIN_VISIBILITY  # noqa: E402
from hmrkit.models.encoders import BodyKeypoints, person_box  # noqa: E402

mp = MEDIAPIPE33.index
GROUPS = {
    "face (11)": list(range(11)),
    "shoulders": [mp("left_shoulder"), mp("right_shoulder")],
    "elbows": [mp("left_elbow"), mp("right_elbow")],
    "wrists": [mp("left_wrist"), mp("right_wrist")],
    "hand points (6)": [mp(f"{s}_{n}") for s in ("left", "right") for n in ("pinky", "index", "thumb")],
    "hips": [mp("left_hip"), mp("right_hip")],
    "knees": [mp("left_knee"), mp("right_knee")],
    "ankles": [mp("left_ankle"), mp("right_ankle")],
    "feet (4)": [mp(f"{s}_{n}") for s in ("left", "right") for n in ("heel", "foot_index")],
}
LIMB_JOINTS = [f"{s}_{j}" for s in ("left", "right") for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")]
BONES = {
    "shoulder width": ("left_shoulder", "right_shoulder"),
    "hip width": ("left_hip", "right_hip"),
    "upper arm": ("left_shoulder", "left_elbow", "right_shoulder", "right_elbow"),
    "forearm": ("left_elbow", "left_wrist", "right_elbow", "right_wrist"),
    "thigh": ("left_hip", "left_knee", "right_hip", "right_knee"),
    "shin": ("left_knee", "left_ankle", "right_knee", "right_ankle"),
}


def real_landmarks(count: int) -> dict[str, np.ndarray]:
    """MediaPipe's landmarks of the labelled person on ``count`` LSP photos (cached: MediaPipe's
    output for a photo does not change between runs)."""
    from hmrkit.paths import cache_dir

    cached = cache_dir() / f"hkmr_domain_gap_real_{count}.npz"
    if cached.exists():
        with np.load(cached) as d:
            return {k: d[k] for k in d.files}
    out = _detect(count)
    cached.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cached, **out)
    return out


def _detect(count: int) -> dict[str, np.ndarray]:
    from hmrkit.io.images import load_image
    from hmrkit.perception.mediapipe_backend import MediaPipeBackend, MediaPipeConfig

    backend = MediaPipeBackend(MediaPipeConfig(hands=False))
    limbs = [LSP14.index(n) for n in LIMB_JOINTS]
    a, b = LSP14.index("left_shoulder"), LSP14.index("right_hip")
    out = {k: [] for k in ("xy", "visibility", "world", "size", "labels", "labelled", "torso", "labels14", "labelled14")}
    for path, gt, labelled in lsp_items(count):
        loaded = load_image(path)
        gt_px = (gt + 0.5) * loaded.scale - 0.5
        torso = float(np.linalg.norm(gt_px[a] - gt_px[b]))
        people = [p for p in backend.detect(loaded.rgb).people if p.body is not None]
        if not people:
            continue
        ok = labelled[limbs]
        index = np.array([mp(n) for n in LIMB_JOINTS])
        dist = [np.linalg.norm(p.body.xy[index][ok] - gt_px[limbs][ok], axis=1).mean() / torso for p in people]
        if min(dist) > 1.0:
            continue
        body = people[int(np.argmin(dist))].body
        out["xy"].append(body.xy)
        out["visibility"].append(body.visibility)
        out["world"].append(body.world)
        out["size"].append(loaded.rgb.shape[1::-1])
        out["labels"].append(gt_px[limbs])
        out["labelled"].append(ok)
        out["torso"].append(torso)
        out["labels14"].append(gt_px)
        out["labelled14"].append(labelled)
    backend.close()
    return {k: np.asarray(v, dtype=bool if k.startswith("labelled") else np.float64) for k, v in out.items()}


def synthetic_landmarks(count: int, config) -> dict[str, np.ndarray]:
    from hmrkit.body.anny_model import load_anny_body
    from hmrkit.data.synth_keypoints import SynthKeypoints

    data = SynthKeypoints(load_anny_body(), "train", config=config)
    b = data.sample(count, torch.Generator().manual_seed(7))
    from hmrkit.data.retarget import CORE_NAMES
    from hmrkit.geometry.cameras import perspective_project

    hips = b.keypoints[:, [mp("left_hip"), mp("right_hip")]].mean(1, keepdim=True)
    core = [CORE_NAMES.index(n) for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder", "left_knee", "right_knee")]
    joints2d = perspective_project(b.joints[:, core], b.camera).double().numpy()
    return {"joints2d": joints2d, "xy": b.observed.xy.double().numpy(), "seen": b.observed.visible.numpy(), "world": b.observed.world.double().numpy(),
            "size": b.image_size.double().numpy(), "clean_xy": b.keypoints2d.double().numpy(),
            "clean_world": (b.keypoints - hips).double().numpy()}


def box_of(xy: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's person box (centre, side) from (N, 33, 2) landmarks and their seen flags."""
    box = person_box(BodyKeypoints(torch.from_numpy(xy).float(), torch.from_numpy(seen), torch.zeros(*xy.shape[:2], 3)))
    return box.center.double().numpy(), box.size.double().numpy()


def in_image(xy: np.ndarray, size: np.ndarray) -> np.ndarray:
    return ((xy >= 0) & (xy <= size[:, None] - 1)).all(-1)


def pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def bone_lengths(world: np.ndarray) -> dict[str, np.ndarray]:
    """Per sample (N,) lengths, left and right averaged, in metres."""
    out = {}
    for name, ends in BONES.items():
        pairs = [ends[i:i + 2] for i in range(0, len(ends), 2)]
        out[name] = np.mean([np.linalg.norm(world[:, mp(p)] - world[:, mp(q)], axis=-1) for p, q in pairs], axis=0)
    return out


def depth_compression(world: np.ndarray) -> float:
    """The factor c (z_reported = c * z_true) that makes limb bones' lengths, relative to each
    sample's shoulder-hip torso size, most constant across samples (grid search, 0.3-1.5)."""
    mid_s = (world[:, mp("left_shoulder")] + world[:, mp("right_shoulder")]) / 2
    mid_h = (world[:, mp("left_hip")] + world[:, mp("right_hip")]) / 2
    pairs = [(p, q) for n in ("upper arm", "forearm", "thigh", "shin") for p, q in
             (BONES[n][0:2], BONES[n][2:4])]
    best, best_cv = 1.0, np.inf
    for c in np.arange(0.3, 1.51, 0.02):
        scale = np.array([1.0, 1.0, 1.0 / c])
        torso = np.linalg.norm((mid_s - mid_h) * scale, axis=-1)
        cv = 0.0
        for p, q in pairs:
            length = np.linalg.norm((world[:, mp(p)] - world[:, mp(q)]) * scale, axis=-1) / torso
            cv += np.std(length) / np.mean(length)
        if cv < best_cv:
            best, best_cv = float(c), cv
    return round(best, 2)


def similarity_residual(world_xy: np.ndarray, xy: np.ndarray, seen: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: RMS residual (share of the box) of the best similarity from the world
    landmarks' x-y onto the 2D landmarks (seen torso and limb points), and its rotation (deg)."""
    idx = [mp(n) for n in LIMB_JOINTS]
    res, angle = [], []
    for i in range(len(xy)):
        m = seen[i, idx]
        if m.sum() < 4:
            res.append(np.nan)
            angle.append(np.nan)
            continue
        a = world_xy[i, idx][m]
        b = xy[i, idx][m]
        a0, b0 = a - a.mean(0), b - b.mean(0)
        u, s, vt = np.linalg.svd(a0.T @ b0)
        d = np.sign(np.linalg.det(u @ vt))
        r = u @ np.diag([1, d]) @ vt
        k = (s * [1, d]).sum() / (a0 ** 2).sum()
        fit = k * a0 @ r
        res.append(np.sqrt(((fit - b0) ** 2).sum(-1).mean()) / box[i])
        angle.append(np.degrees(np.arctan2(r[0, 1], r[0, 0])))
    return np.array(res), np.array(angle)


def study(args) -> dict:
    torch.set_num_threads(1)
    start = time.time()
    real = real_landmarks(args.images)
    from hmrkit.data.synth_keypoints import V1_NOISE, SynthConfig

    synth = synthetic_landmarks(args.synthetic, V1_NOISE)
    synth2 = synthetic_landmarks(args.synthetic, SynthConfig())
    _, s2_box = box_of(synth2["xy"], synth2["seen"])
    real_seen = real["visibility"] >= MIN_VISIBILITY
    r_centre, r_box = box_of(real["xy"], real_seen)
    s_centre, s_box = box_of(synth["xy"], synth["seen"])
    r_in, s_in = in_image(real["xy"], real["size"]), in_image(synth["clean_xy"], synth["size"])
    result: dict = {"machine": machine(), "command": f"python benchmarks/hkmr_domain_gap.py --images {args.images} --synthetic {args.synthetic}",
                    "real_people": int(len(real["xy"])), "synthetic_samples": int(len(synth["xy"]))}

    # (1) seen landmarks
    seen = {}
    for name, idx in GROUPS.items():
        seen[name] = {"real": round(float(real_seen[:, idx].mean()), 3), "synthetic": round(float(synth["seen"][:, idx].mean()), 3),
                      "synthetic v2": round(float(synth2["seen"][:, idx].mean()), 3)}
    seen["all 33"] = {"real": round(float(real_seen.mean()), 3), "synthetic": round(float(synth["seen"].mean()), 3),
                      "synthetic v2": round(float(synth2["seen"].mean()), 3)}
    vis = real["visibility"]
    result["seen"] = seen
    result["real_visibility"] = {
        "quantiles (10/25/50/75/90)": [round(pct(vis.ravel(), q), 3) for q in (10, 25, 50, 75, 90)],
        "share below 0.2 / 0.5 / 0.8": [round(float((vis < t).mean()), 3) for t in (0.2, 0.5, 0.8)],
        "landmarks outside the image: share": round(float((~r_in).mean()), 3),
        "outside the image and seen (vis >= 0.2): share of outside": round(float(real_seen[~r_in].mean()), 3) if (~r_in).any() else None,
        "per-person share seen: quantiles (10/50/90)": [round(pct(real_seen.mean(1), q), 3) for q in (10, 50, 90)],
    }
    result["synthetic_visibility"] = {
        "landmarks outside the image: share": round(float((~s_in).mean()), 3),
        "outside the image and seen: share of outside": round(float(synth["seen"][~s_in].mean()), 3) if (~s_in).any() else None,
        "per-sample share seen: quantiles (10/50/90)": [round(pct(synth["seen"].mean(1), q), 3) for q in (10, 50, 90)],
    }
    # (2) the person box
    r_short, s_short = real["size"].min(1), synth["size"].min(1)
    result["box"] = {
        "box side / image shorter side, quantiles (10/50/90)": {"real": [round(pct(r_box / r_short, q), 2) for q in (10, 50, 90)],
                                                              "synthetic": [round(pct(s_box / s_short, q), 2) for q in (10, 50, 90)]},
        "box reaching past the image border: share": {
            "real": round(float(((r_centre - r_box[:, None] / 2 < 0) | (r_centre + r_box[:, None] / 2 > real["size"] - 1)).any(1).mean()), 3),
            "synthetic": round(float(((s_centre - s_box[:, None] / 2 < 0) | (s_centre + s_box[:, None] / 2 > synth["size"] - 1)).any(1).mean()), 3)},
    }
    # (3) 2D error per joint, share of the box side
    mp_limbs = np.array([mp(n) for n in LIMB_JOINTS])
    err_real = np.linalg.norm(real["xy"][:, mp_limbs] - real["labels"], axis=-1) / r_box[:, None]
    err_synth = np.linalg.norm(synth["xy"] - synth["clean_xy"], axis=-1) / s_box[:, None]
    err_synth2 = np.linalg.norm(synth2["xy"] - synth2["clean_xy"], axis=-1) / s2_box[:, None]
    errors = {}
    for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
        cols = [i for i, n in enumerate(LIMB_JOINTS) if n.endswith(j)]
        r = err_real[:, cols][real["labelled"][:, cols] & real_seen[:, mp_limbs[cols]]]
        s = err_synth[:, mp_limbs[cols]][synth["seen"][:, mp_limbs[cols]]]
        s2 = err_synth2[:, mp_limbs[cols]][synth2["seen"][:, mp_limbs[cols]]]
        errors[j + "s"] = {"real median": round(pct(r, 50), 3), "real p90": round(pct(r, 90), 3),
                           "synthetic median": round(pct(s, 50), 3), "synthetic p90": round(pct(s, 90), 3),
                           "synthetic v2 median": round(pct(s2, 50), 3), "synthetic v2 p90": round(pct(s2, 90), 3)}
    result["error_2d_share_of_box"] = errors
    # the same, forgiving a whole-person left/right swap (LSPET's labels mix conventions)
    swap = [LIMB_JOINTS.index(n.replace("left", "@").replace("right", "left").replace("@", "right")) for n in LIMB_JOINTS]
    err_swapped = np.linalg.norm(real["xy"][:, mp_limbs] - real["labels"][:, swap], axis=-1) / r_box[:, None]
    lab = real["labelled"] & real["labelled"][:, swap]
    mean_as_is = np.where(lab, err_real, 0).sum(1) / lab.sum(1).clip(1)
    mean_swapped = np.where(lab, err_swapped, 0).sum(1) / lab.sum(1).clip(1)
    best = np.where((mean_swapped < mean_as_is)[:, None], err_swapped, err_real)
    result["real_error_forgiving_lr_swap"] = {
        "people whose labels fit better swapped: share": round(float((mean_swapped < mean_as_is).mean()), 3),
        **{j + "s": {"median": round(pct(best[:, [i for i, n in enumerate(LIMB_JOINTS) if n.endswith(j)]][lab[:, [i for i, n in enumerate(LIMB_JOINTS) if n.endswith(j)]]], 50), 3),
                     "p90": round(pct(best[:, [i for i, n in enumerate(LIMB_JOINTS) if n.endswith(j)]][lab[:, [i for i, n in enumerate(LIMB_JOINTS) if n.endswith(j)]]], 90), 3)}
           for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")}}
    # where the landmark sits relative to the joint centre: 2D width of the landmark pair / of the joint pair
    widths = {}
    l14 = real["labels14"]
    for pair in ("hip", "shoulder"):
        mp_w = np.linalg.norm(real["xy"][:, mp(f"left_{pair}")] - real["xy"][:, mp(f"right_{pair}")], axis=-1)
        lab_w = np.linalg.norm(l14[:, LSP14.index(f"left_{pair}")] - l14[:, LSP14.index(f"right_{pair}")], axis=-1)
        ok = real["labelled14"][:, LSP14.index(f"left_{pair}")] & real["labelled14"][:, LSP14.index(f"right_{pair}")] & (lab_w > 0.05 * r_box)
        k = {"hip": (0, 1), "shoulder": (2, 3)}[pair]
        s_kp = np.linalg.norm(synth["clean_xy"][:, mp(f"left_{pair}")] - synth["clean_xy"][:, mp(f"right_{pair}")], axis=-1)
        s_j = np.linalg.norm(synth["joints2d"][:, k[0]] - synth["joints2d"][:, k[1]], axis=-1)
        s_ok = s_j > 0.05 * s_box
        widths[f"{pair} width: landmarks / joints, median"] = {"real (MediaPipe / LSP labels)": round(float(np.median(mp_w[ok] / lab_w[ok])), 3),
                                                               "synthetic (Anny's MediaPipe33 keypoints / Anny's joints)": round(float(np.median(s_kp[s_ok] / s_j[s_ok])), 3)}
    result["landmark_vs_joint_width"] = widths
    # the tail: seen limb landmarks (elbows to ankles, not hips) farther than 0.1 / 0.2 box sides
    nonhip = [i for i, n in enumerate(LIMB_JOINTS) if not n.endswith("hip")]
    r_tail = best[:, nonhip][(lab & real_seen[:, mp_limbs])[:, nonhip]]
    s_idx = mp_limbs[nonhip]
    s_tail = err_synth[:, s_idx][synth["seen"][:, s_idx]]
    s2_tail = err_synth2[:, s_idx][synth2["seen"][:, s_idx]]
    result["tail"] = {f"share farther than {t} box sides": {"real (labels, swap forgiven)": round(float((r_tail > t).mean()), 3),
                                                             "synthetic": round(float((s_tail > t).mean()), 3),
                                                             "synthetic v2": round(float((s2_tail > t).mean()), 3)} for t in (0.1, 0.2)}
    # (4) world landmarks
    def world_stats(world: np.ndarray, xy: np.ndarray, seen_: np.ndarray, box: np.ndarray) -> dict:
        radius = np.sqrt((world ** 2).sum(-1).mean(1))
        bones = bone_lengths(world)
        res, ang = similarity_residual(world[..., :2], xy, seen_, box)
        spread = world.std(1)
        return {"RMS radius (m), quantiles (10/50/90)": [round(pct(radius, q), 3) for q in (10, 50, 90)],
                "bone length medians (m)": {k: round(float(np.median(v)), 3) for k, v in bones.items()},
                "depth spread / x-y spread, median": round(float(np.median(spread[:, 2] / np.sqrt((spread[:, 0] ** 2 + spread[:, 1] ** 2) / 2))), 3),
                "depth compression c (bone-length constancy)": depth_compression(world),
                "x-y vs 2D similarity residual (share of box), median / p90": [round(pct(res[~np.isnan(res)], q), 3) for q in (50, 90)],
                "x-y vs 2D in-plane angle (deg), median |angle| / p90": [round(pct(np.abs(ang[~np.isnan(ang)]), q), 1) for q in (50, 90)]}

    result["world"] = {"real": world_stats(real["world"], real["xy"], real_seen, r_box),
                       "synthetic (observed)": world_stats(synth["world"], synth["xy"], synth["seen"], s_box),
                       "synthetic (clean, before the noise model)": world_stats(synth["clean_world"], synth["clean_xy"], synth["seen"], s_box)}
    result["seconds"] = round(time.time() - start)
    return result


def table(r: dict) -> str:
    lines = ["# HKMR input: real MediaPipe landmarks (LSPET photos) vs the synthetic generator", "",
             "'synthetic': the first noise model (V1_NOISE, the shipped v1 weights); 'synthetic v2': the same draw with the "
             "current defaults, fitted to these measurements.", "",
             f"Machine: {r['machine']}. Command: `{r['command']}` ({r['seconds']} s). Real: {r['real_people']} people "
             f"(MediaPipe pose on LSPET photos, the detection nearest the labels; MediaPipe's output cached after the first run); "
             f"synthetic: {r['synthetic_samples']} samples from the CMU train split. Seen = MediaPipe visibility >= 0.2 "
             "(the pipeline's threshold). Sections without a 'synthetic v2' column compare with V1_NOISE.", "",
             "## Share of landmarks seen", "", "| landmarks | real | synthetic | synthetic v2 |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['real']:.3f} | {v['synthetic']:.3f} | {v['synthetic v2']:.3f} |" for k, v in r["seen"].items()]
    lines += ["", "Real visibility: " + "; ".join(f"{k}: {v}" for k, v in r["real_visibility"].items()) + ".",
              "", "Synthetic: " + "; ".join(f"{k}: {v}" for k, v in r["synthetic_visibility"].items()) + ".", "",
              "## Person box (the encoder's frame)", "", "| | real | synthetic |", "|---|---|---|"]
    lines += [f"| {k} | {v['real']} | {v['synthetic']} |" for k, v in r["box"].items()]
    lines += ["", "## 2D error, share of the box side (real: MediaPipe vs LSP labels, an upper bound; synthetic: noisy vs clean)", "",
              "| joints | real median | real p90 | synthetic median | synthetic p90 | synthetic v2 median | synthetic v2 p90 |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {k} | {v['real median']} | {v['real p90']} | {v['synthetic median']} | {v['synthetic p90']} | "
              f"{v['synthetic v2 median']} | {v['synthetic v2 p90']} |" for k, v in r["error_2d_share_of_box"].items()]
    lines += ["", "Seen limb landmarks (elbows to ankles) far from the truth: " + "; ".join(
        f"{k}: real {v['real (labels, swap forgiven)']}, synthetic {v['synthetic']}, synthetic v2 {v['synthetic v2']}" for k, v in r["tail"].items()) + "."]
    sw = r["real_error_forgiving_lr_swap"]
    lines += ["", "Real, forgiving a whole-person left/right label swap (share of people swapped: "
              f"{sw['people whose labels fit better swapped: share']}): "
              + "; ".join(f"{k} median {v['median']}, p90 {v['p90']}" for k, v in sw.items() if isinstance(v, dict)) + ".", "",
              "## Where the hip and shoulder landmarks sit (2D width of the landmark pair / of the joint-centre pair, median)", "",
              "| | real (MediaPipe / LSP labels) | synthetic (Anny's MediaPipe33 keypoints / Anny's joints) |", "|---|---|---|"]
    lines += [f"| {k} | " + " | ".join(str(x) for x in v.values()) + " |" for k, v in r["landmark_vs_joint_width"].items()]
    lines += ["", "## Metric 3D (world) landmarks", ""]
    cols = list(r["world"])
    lines += ["| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    first = r["world"][cols[0]]
    for key, value in first.items():
        if isinstance(value, dict):
            for sub in value:
                lines.append(f"| {key}: {sub} | " + " | ".join(str(r["world"][c][key][sub]) for c in cols) + " |")
        else:
            lines.append(f"| {key} | " + " | ".join(str(r["world"][c][key]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--synthetic", type=int, default=4000)
    args = parser.parse_args()
    r = study(args)
    write("hkmr_domain_gap", r, table(r))


if __name__ == "__main__":
    main()
