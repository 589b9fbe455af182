"""HMR-Adapter ablation on held-out synthetic whole-body samples with hand occlusion.

    .venv/bin/python benchmarks/bench_adapter.py [--bodies 1500] [--weights PATH] [--name adapter_ablation]

Samples: :mod:`hmrkit.data.wholebody_synth` on CMU's held-out ``test`` split (sequences never
trained on), a fixed seed, both hands of every body, each hand in one of the conditions clean /
occluded (1-3 fingers missing or guessed) / truncated / unreliable (3x noise, low score) /
missing (no hand found). The body guidance is HKMR's estimate from the sample's noisy body
landmarks, as in the pipeline.

Hands (per condition): the hand's global orientation error (geodesic, deg), the mean absolute
error of the 23 angles (deg) and the hand21 point error (mm; the hand posed by the estimate with
the true shape, wrist-relative, 20 points beyond the wrist) for
- *body only*: HKMR's wrist orientation, fingers at rest (what a missing hand gives today);
- *IK net*: today's hand path (MediaPipe landmarks -> IK net, orientation from the palm); only
  where all 21 landmarks are given (MediaPipe gives all or none);
- *expert*: the hand expert alone (no adapter); *+ hand path*: with the hand-path adapter;
  *naive concat*: body tokens appended to the hand tokens, decoder fine-tuned.
Body path: the wrist's camera-frame orientation error and the elbow's (deg) of HKMR alone,
+ body path, naive concat.
Time: ms per person (two hands) of the expert + both adapters, one torch thread, median of 200.
Writes ``benchmarks/results/<name>.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DATA, machine, write  # noqa: E402

from hmrkit.body.anny_model import load_anny_body  # noqa: E402
from hmrkit.data.retarget import CORE_NAMES  # noqa: E402
from hmrkit.data.wholebody_synth import CONDITIONS, WholeBodySynth  # noqa: E402
from hmrkit.estimators import HkmrEstimator  # noqa: E402
from hmrkit.geometry.rotations import geodesic_angle  # noqa: E402
from hmrkit.hands.hand_model import load_biomech_hand  # noqa: E402
from hmrkit.hands.ik_net import HandIK  # noqa: E402
from hmrkit.models.hmr_adapter import HandEstimate, apply_offsets, global_rotations, load_adapter  # noqa: E402
from hmrkit.train.adapter import hkmr_rotations, with_estimate  # noqa: E402

SIDES = [CORE_NAMES.index(f"{s}_{j}") for j in ("wrist", "elbow") for s in ("left", "right")]
GROUPS = CONDITIONS + ("all",)


def per_condition(values: torch.Tensor, condition: torch.Tensor, valid: torch.Tensor | None = None) -> dict[str, float | None]:
    """Mean of ``values`` per condition (and over all), over the ``valid`` rows."""
    valid = torch.ones_like(condition, dtype=torch.bool) if valid is None else valid
    out: dict[str, float | None] = {}
    for k, name in enumerate(GROUPS):
        rows = valid & ((condition == k) if name != "all" else torch.ones_like(valid))
        out[name] = round(float(values[rows].mean()), 2) if bool(rows.any()) else None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=1500)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--name", default="adapter_ablation")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not (DATA / "cmu_mocap").is_dir():
        raise SystemExit(f"development data not found under {DATA} (cmu_mocap; see ../shared/data/README.md)")

    model, meta = load_adapter(args.weights)
    body = load_anny_body()
    hand = load_biomech_hand("left")
    ik = HandIK.load("left")
    hkmr = HkmrEstimator.load(body=body)
    batch = WholeBodySynth(body, "test", stride=4).sample(args.bodies, torch.Generator().manual_seed(args.seed))
    estimate = hkmr_rotations(hkmr, batch)
    with_estimate(batch, estimate)
    inputs = batch.hands
    condition = batch.condition.flatten()
    n = len(inputs)
    truth_r = batch.hand_rotation.reshape(n, 3, 3)
    truth_a = batch.angles.reshape(n, -1)
    shape = batch.body.shape.repeat_interleave(2, dim=0)
    truth_j = batch.hand_joints.reshape(n, 21, 3)

    with torch.no_grad():
        memory = model.expert.encode(inputs)
        complete = ~inputs.missing.any(1)
        ik_fit = ik.predict(inputs.points[complete])
        ik_r, ik_a = truth_r.clone(), truth_a.clone()
        ik_r[complete], ik_a[complete] = ik_fit.global_rotation, ik_fit.angles
        methods = {
            "body only (HKMR wrist, fingers at rest)": (HandEstimate(inputs.arm[:, 3], torch.zeros_like(truth_a)), None),
            "IK net (today; all 21 landmarks given)": (HandEstimate(ik_r, ik_a), complete),
            "expert (no adapter)": (model.expert.heads(model.expert.decode(memory)), None),
            "+ hand path (adapter)": (model.hand(inputs, memory), None),
            "naive concat": (model.naive_hand(model.expert, inputs, memory), None),
        }
        hands = {}
        for name, (pred, valid) in methods.items():
            orientation = torch.rad2deg(geodesic_angle(pred.rotation, truth_r))
            angles = torch.rad2deg((pred.angles - truth_a).abs().mean(1))
            joints = hand(pred.angles, shape, pred.rotation).joints
            points = 1000 * (joints - truth_j)[:, 1:].norm(dim=-1).mean(1)
            hands[name] = {"orientation_deg": per_condition(orientation, condition, valid),
                           "angles_deg": per_condition(angles, condition, valid),
                           "points_mm": per_condition(points, condition, valid)}

        true_global = global_rotations(batch.body.rotations)[:, SIDES].reshape(-1, 2, 2, 3, 3)  # (B, joint, side)
        bodies = {}
        for name, offsets in (("HKMR alone", None), ("+ body path (adapter)", model.body_adapter(memory, inputs.arm)),
                              ("naive concat", model.naive_body(memory, inputs.arm))):
            rot = estimate if offsets is None else apply_offsets(estimate, offsets.reshape(-1, 2, 2, 3, 3))
            mine = global_rotations(rot)[:, SIDES].reshape(-1, 2, 2, 3, 3)
            error = torch.rad2deg(geodesic_angle(mine, true_global))  # (B, joint, side)
            bodies[name] = {"wrist_deg": per_condition(error[:, 0].reshape(-1), condition),
                            "elbow_deg": per_condition(error[:, 1].reshape(-1), condition)}

        one = type(inputs)(inputs.points[:2], inputs.confidence[:2], inputs.missing[:2], inputs.arm[:2])
        times = []
        for _ in range(200):
            start = time.perf_counter()
            features = model.expert.encode(one)
            model.hand(one, features)
            model.body_adapter(features, one.arm)
            times.append((time.perf_counter() - start) * 1000)

    counts = {name: int((condition == k).sum()) for k, name in enumerate(CONDITIONS)}
    command = f".venv/bin/python benchmarks/bench_adapter.py --bodies {args.bodies} --seed {args.seed}" + (
        f" --weights {args.weights}" if args.weights else "")
    payload = {"command": command, "machine": machine(with_load=True), "weights": args.weights or "hmrkit/weights/hmr_adapter.safetensors",
               "weights_steps": meta.get("steps"), "held_out": "CMU test split (sequences never trained on), wholebody_synth defaults",
               "bodies": args.bodies, "hands": n, "hands_per_condition": counts, "hands_table": hands, "body_table": bodies,
               "ms_per_person_two_hands": round(statistics.median(times), 3)}
    header = "| method | " + " | ".join(GROUPS) + " |\n|---|" + "---:|" * len(GROUPS) + "\n"

    def table(rows: dict, key: str) -> str:
        cell = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        return header + "".join(f"| {name} | " + " | ".join(cell(r[key][g]) for g in GROUPS) + " |\n" for name, r in rows.items())

    md = (f"# HMR-Adapter ablation: held-out synthetic whole-body samples\n\n`{command}`\n\n"
          f"Machine: {payload['machine']}. Weights: `{payload['weights']}` (steps {meta.get('steps')}).\n"
          f"{args.bodies} bodies from CMU's held-out test sequences, {n} hands; hands per condition: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()) + ". Body guidance: HKMR's estimate from the noisy body landmarks.\n\n"
          "## Hand global orientation error (deg, geodesic)\n\n" + table(hands, "orientation_deg")
          + "\n## Finger angle error (deg, mean over the 23 angles)\n\n" + table(hands, "angles_deg")
          + "\n## Hand point error (mm; estimate posed with the true shape, wrist-relative, 20 points)\n\n" + table(hands, "points_mm")
          + "\n## Body path: wrist orientation error (deg, camera frame)\n\n" + table(bodies, "wrist_deg")
          + "\n## Body path: elbow orientation error (deg, camera frame)\n\n" + table(bodies, "elbow_deg")
          + f"\nTime added per person (expert + both adapters, two hands, one torch thread, median of 200): "
            f"{payload['ms_per_person_two_hands']:.2f} ms.\n")
    write(args.name, payload, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
