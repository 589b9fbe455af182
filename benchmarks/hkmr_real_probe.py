"""Regressor weights on real MediaPipe landmarks: PCK of the regressor alone and after the
pipeline's 20 refinement steps, on the LSPET people of ``hkmr_domain_gap.py`` (its cached
MediaPipe output), for several weights files at once.

    python benchmarks/hkmr_real_probe.py [--images 300] [--weights A.safetensors B.safetensors ...] [--seen 0.2 0.5 0.8] [--tag NAME]

Default weights: the shipped ``hkmr.safetensors`` and every ``hkmr*_s500*`` model in the
ablation cache. Every photo's landmarks are re-expressed in one common pinhole camera (exact:
the pipeline's camera differs between photos only by focal length and centre), so one batch
holds everyone; the translation is solved in closed form, as the pipeline does. PCK@0.2
(torso: left shoulder to right hip) of the 12 labelled limb joints; people MediaPipe missed
are not counted (the same people for every weights file). ``--seen``: the MediaPipe visibility
from which the *regressor* counts a landmark as seen (the refinement always uses the pipeline's
0.2); one row per value.
Results: benchmarks/results/hkmr_real_probe.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_common import machine, write  # noqa: E402
from bench_hkmr import ABLATION_DIR, git_commit  # noqa: E402
from hkmr_domain_gap import LIMB_JOINTS, real_landmarks  # noqa: E402
from hmrkit.body.conventions import LSP14, MEDIAPIPE33  # noqa: E402
from hmrkit.data.synth_keypoints import V1_NOISE, SynthConfig  # noqa: E402
from hmrkit.fitting.targets import BODY, FIT_KEYPOINTS, MIN_VISIBILITY, FitTargets  # noqa: E402
from hmrkit.geometry.cameras import PerspectiveCamera, perspective_project  # noqa: E402
from hmrkit.paths import weights_dir  # noqa: E402

COMMON = PerspectiveCamera(1000.0, 1000.0, 500.0, 500.0)
FOV_DEGREES = 60.0  # the pipeline's default assumption


def common_camera_targets(real: dict[str, np.ndarray]) -> tuple[FitTargets, np.ndarray, np.ndarray]:
    """Fit targets in :data:`COMMON`, with the labels and torso lengths mapped the same way."""
    n = len(real["xy"])
    cams = [PerspectiveCamera.from_image_size(int(h), int(w), FOV_DEGREES) for w, h in real["size"]]
    f = torch.tensor([float(c.fx) for c in cams], dtype=torch.float64)
    centre = torch.tensor([[float(c.cx), float(c.cy)] for c in cams], dtype=torch.float64)
    scale = COMMON.fx / f
    common_centre = torch.tensor([COMMON.cx, COMMON.cy], dtype=torch.float64)

    def move(xy: np.ndarray) -> np.ndarray:
        return ((torch.from_numpy(xy) - centre[:, None]) * scale[:, None, None] + common_centre).numpy()

    vis = np.where(real["visibility"] >= MIN_VISIBILITY, real["visibility"], 0.0)
    k = len(FIT_KEYPOINTS)
    xy, weight, world = np.zeros((n, k, 2)), np.zeros((n, k)), np.zeros((n, k, 3))
    xy[:, BODY], weight[:, BODY], world[:, BODY] = move(real["xy"]), vis, real["world"]
    seen = vis > 0
    span = np.where(seen[..., None], xy[:, BODY], np.nan)
    box = np.nanmax(np.nanmax(span, 1) - np.nanmin(span, 1), -1)
    targets = FitTargets(*(torch.from_numpy(a).float() for a in (xy, weight, world, weight.copy(), box)))
    return targets, move(real["labels"]), real["torso"] * scale.numpy()


def synthetic_people(body, count: int, config) -> dict[str, np.ndarray]:
    """Held-out synthetic samples in the layout of :func:`hkmr_domain_gap.real_landmarks`: the
    noisy landmarks as MediaPipe's (visibility 1 or 0), Anny's LSP14 keypoints as the labels,
    re-expressed in the pipeline's camera for the sample's image size (exact: pinhole images are
    linear in focal length and centre)."""
    from hmrkit.body.anny_keypoints import anny_keypoint_map
    from hmrkit.body.anny_rig import NUM_BODY_CORE
    from hmrkit.data.synth_keypoints import SynthKeypoints

    b = SynthKeypoints(body, "test", stride=1, config=config).sample(count, torch.Generator().manual_seed(11))
    full = torch.eye(3).expand(count, body.num_joints, 3, 3).clone()
    full[:, :NUM_BODY_CORE] = b.rotations
    with torch.no_grad():
        lsp = body(full, b.shape, b.translation, with_vertices=False, keypoints=anny_keypoint_map(body, LSP14)).keypoints
    gt = perspective_project(lsp, b.camera)
    size = b.image_size.double()
    cams = [PerspectiveCamera.from_image_size(int(h), int(w), FOV_DEGREES) for w, h in size.tolist()]
    f_to = torch.tensor([float(c.fx) for c in cams], dtype=torch.float64)[:, None, None]
    c_to = torch.tensor([[float(c.cx), float(c.cy)] for c in cams], dtype=torch.float64)[:, None]
    f_from = torch.as_tensor(b.camera.fx, dtype=torch.float64).expand(count)[:, None, None]
    c_from = torch.stack([torch.as_tensor(b.camera.cx, dtype=torch.float64).expand(count),
                          torch.as_tensor(b.camera.cy, dtype=torch.float64).expand(count)], -1)[:, None]

    def to_pipeline(xy: torch.Tensor) -> np.ndarray:
        return ((xy.double() - c_from) / f_from * f_to + c_to).numpy()

    limbs = [LSP14.index(n) for n in LIMB_JOINTS]
    labels = to_pipeline(gt)
    a, c = LSP14.index("left_shoulder"), LSP14.index("right_hip")
    return {"xy": to_pipeline(b.observed.xy), "visibility": b.observed.visible.double().numpy(), "world": b.observed.world.double().numpy(),
            "size": size.numpy(), "labels": labels[:, limbs], "labelled": np.ones((count, len(limbs)), bool),
            "labels14": labels, "labelled14": np.ones((count, len(LSP14.names)), bool),
            "torso": np.linalg.norm(labels[:, a] - labels[:, c], axis=-1)}


def warp_world(world: np.ndarray, hip: float, thigh: float, shin: float, upper_arm: float, forearm: float) -> np.ndarray:
    """(N, 33, 3) world landmarks with the hip width and the limb bones scaled, each bone's
    far end carrying what hangs from it (so the test probes proportions, not pose)."""
    m = MEDIAPIPE33.index
    w = world.copy()

    def move(end: str, start: str, factor: float, carried: tuple[str, ...]) -> None:
        new = w[:, m(start)] + (w[:, m(end)] - w[:, m(start)]) * factor
        delta = new - w[:, m(end)]
        for name in (end,) + carried:
            w[:, m(name)] += delta

    for side in ("left", "right"):
        mid = (w[:, m("left_hip")] + w[:, m("right_hip")]) / 2
        delta = (w[:, m(f"{side}_hip")] - mid) * (hip - 1)
        for name in ("hip", "knee", "ankle", "heel", "foot_index"):
            w[:, m(f"{side}_{name}")] += delta
    for side in ("left", "right"):
        s_ = lambda *names: tuple(f"{side}_{n}" for n in names)  # noqa: E731
        move(f"{side}_knee", f"{side}_hip", thigh, s_("ankle", "heel", "foot_index"))
        move(f"{side}_ankle", f"{side}_knee", shin, s_("heel", "foot_index"))
        move(f"{side}_elbow", f"{side}_shoulder", upper_arm, s_("wrist", "pinky", "index", "thumb"))
        move(f"{side}_wrist", f"{side}_elbow", forearm, s_("pinky", "index", "thumb"))
    return w


def upright(labels14: np.ndarray, labelled14: np.ndarray, degrees: float = 30.0) -> np.ndarray:
    """(N,) torso within ``degrees`` of the image's vertical, head up (from the labelled shoulders and hips)."""
    def mid(names):
        idx = [LSP14.index(n) for n in names]
        m = labelled14[:, idx, None]
        return (labels14[:, idx] * m).sum(1) / m.sum(1).clip(1)

    up = mid(("left_shoulder", "right_shoulder")) - mid(("left_hip", "right_hip"))
    angle = np.degrees(np.arctan2(np.abs(up[:, 0]), -up[:, 1]))
    return angle < degrees


def pck(pred: np.ndarray, labels: np.ndarray, labelled: np.ndarray, torso: np.ndarray, alpha: float = 0.2,
        groups: dict[str, np.ndarray] | None = None) -> float | dict[str, float]:
    """PCK over everyone, or per group of people (boolean masks)."""
    ok = np.linalg.norm(pred - labels, axis=-1) <= alpha * torso[:, None]
    if groups is None:
        return float((ok & labelled).sum() / labelled.sum())
    return {g: round(float((ok & labelled)[m].sum() / max(labelled[m].sum(), 1)), 3) for g, m in groups.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--weights", nargs="*", default=None)
    parser.add_argument("--seen", nargs="*", type=float, default=[MIN_VISIBILITY])
    parser.add_argument("--synthetic", type=int, default=0, help="instead of the photos: this many held-out synthetic samples")
    parser.add_argument("--synthetic-noise", choices=("v1", "v2"), default="v1")
    parser.add_argument("--tag", default="", help="results file suffix (hkmr_real_probe_TAG), to keep other runs' results")
    parser.add_argument("--world-warp", nargs=5, type=float, default=None, metavar=("HIP", "THIGH", "SHIN", "UPPER_ARM", "FOREARM"),
                        help="scale the regressor's 3D landmarks' hip width and limb bones (a proportions test)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from hmrkit.body.anny_keypoints import anny_keypoint_library, anny_keypoint_map
    from hmrkit.body.anny_model import load_anny_body
    from hmrkit.body.keypoints import build_keypoint_map
    from hmrkit.estimators import HkmrEstimator
    from hmrkit.fitting.body_fit import BodyFitter

    body = load_anny_body()
    if args.synthetic:  # the same measurement on held-out synthetic samples, the truth as labels
        real = synthetic_people(body, args.synthetic, V1_NOISE if args.synthetic_noise == "v1" else SynthConfig())
    else:
        real = real_landmarks(args.images)
    if args.world_warp:
        real = {**real, "world": warp_world(real["world"], *args.world_warp)}
    targets, labels, torso = common_camera_targets(real)
    up = upright(real["labels14"], real["labelled14"])
    groups = {f"upright torso ({int(up.sum())})": up, f"torso tilted > 30 deg ({int((~up).sum())})": ~up}
    fitter = BodyFitter(body, body.compile_keypoints(build_keypoint_map(anny_keypoint_library(), body.skeleton, FIT_KEYPOINTS)))
    lsp_map = anny_keypoint_map(body, LSP14)
    limbs = [LSP14.index(n) for n in LIMB_JOINTS]

    def project(rotations, shape, translation) -> np.ndarray:
        with torch.no_grad():
            kp = body(rotations, shape, translation, with_vertices=False, keypoints=lsp_map).keypoints
        return perspective_project(kp, COMMON).numpy()[:, limbs]

    paths = [Path(p) for p in args.weights] if args.weights else [weights_dir() / "hkmr.safetensors"] + sorted(ABLATION_DIR.glob("hkmr*_s500*.safetensors"))
    mp_xy = targets.xy[:, [FIT_KEYPOINTS.index(n) for n in LIMB_JOINTS]].numpy()
    rows = {"MediaPipe raw": {"pck@0.2": round(pck(mp_xy, labels, real["labelled"], torso), 3),
                              "by group": pck(mp_xy, labels, real["labelled"], torso, groups=groups)}}
    opt = fitter.fit(targets, COMMON)
    opt_xy = project(opt.rotations, opt.shape, opt.translation)
    rows[f"optimization only ({fitter.config.iterations_3d} + {fitter.config.iterations_2d} steps)"] = {"pck@0.2": round(pck(opt_xy, labels, real["labelled"], torso), 3),
                                                 "by group": pck(opt_xy, labels, real["labelled"], torso, groups=groups)}
    print(rows, flush=True)
    for path in paths:
        est = HkmrEstimator.load(path, body=body)
        for threshold in args.seen:
            weight = targets.xy_weight.clone()
            weight[:, BODY] *= (torch.from_numpy(real["visibility"]) >= threshold).float()
            seen_by_regressor = FitTargets(targets.xy, weight, targets.world, targets.world_weight, targets.box_size)
            guess = est(seen_by_regressor, COMMON)
            t = fitter.solve_translation(guess.rotations, guess.shape, targets, COMMON)
            alone_xy = project(guess.rotations, guess.shape, t)
            alone = pck(alone_xy, labels, real["labelled"], torso)
            fit = fitter.fit(targets, COMMON, guess, iterations=(0, 20))
            refined_xy = project(fit.rotations, fit.shape, fit.translation)
            refined = pck(refined_xy, labels, real["labelled"], torso)
            name = path.name if path.resolve().parent != weights_dir().resolve() else f"shipped {path.name}"
            if len(args.seen) > 1 or threshold != MIN_VISIBILITY:
                name += f", regressor sees visibility >= {threshold:g}"
            rows[name] = {"alone": round(alone, 3), "+ 20 refinement steps": round(refined, 3),
                          "alone, by group": pck(alone_xy, labels, real["labelled"], torso, groups=groups),
                          "+ 20 refinement steps, by group": pck(refined_xy, labels, real["labelled"], torso, groups=groups)}
            print(name, rows[name], flush=True)
    command = "python benchmarks/hkmr_real_probe.py --images %d" % args.images + (" --weights " + " ".join(args.weights) if args.weights else "")
    if args.seen != [MIN_VISIBILITY]:
        command += " --seen " + " ".join(f"{v:g}" for v in args.seen)
    if args.tag:
        command += f" --tag {args.tag}"
    if args.synthetic:
        command += f" --synthetic {args.synthetic} --synthetic-noise {args.synthetic_noise}"
    if args.world_warp:
        command += " --world-warp " + " ".join(f"{v:g}" for v in args.world_warp)
    payload = {"machine": machine(), "command": command, "commit": git_commit(), "people": int(len(labels)), "rows": rows}
    what = (f"held-out synthetic landmarks ({len(labels)} CMU test samples, noise {args.synthetic_noise}; labels: Anny's LSP14 keypoints)"
            if args.synthetic else f"real MediaPipe landmarks ({len(labels)} LSPET people)")
    lines = [f"# Regressor weights on {what}", "",
             f"Machine: {machine()}. Command: `{command}` at commit {payload['commit']}. PCK@0.2 (torso) of the 12 labelled limb "
             "joints; MediaPipe's landmarks re-expressed in one pinhole camera (60 deg field of view, as the pipeline assumes); "
             "closed-form translation. Groups: people whose labelled torso is within 30 deg of upright, or not.", "",
             "| weights | alone | + 20 refinement steps | " + " | ".join(f"alone: {g} | refined: {g}" for g in groups) + " |",
             "|---|---|---|" + "---|---|" * len(groups)]
    for name, r in rows.items():
        if "alone" in r:
            lines.append(f"| {name} | {r['alone']:.3f} | {r['+ 20 refinement steps']:.3f} | "
                         + " | ".join(f"{r['alone, by group'][g]:.3f} | {r['+ 20 refinement steps, by group'][g]:.3f}" for g in groups) + " |")
        else:
            lines.append(f"| {name} | {r['pck@0.2']:.3f} | | " + " | ".join(f"{r['by group'][g]:.3f} | " for g in groups) + " |")
    name = "hkmr_real_probe" if not args.synthetic else f"hkmr_real_probe_synthetic_{args.synthetic_noise}"
    name += ("_world_warp" if args.world_warp else "") + ("_seen" if args.seen != [MIN_VISIBILITY] else "") + (f"_{args.tag}" if args.tag else "")
    write(name, payload, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
