"""The shipped pose prior (``hmrkit/weights/pose_vae.safetensors``) measured again, as its
trainer measures it: reconstruction of held-out CMU poses and the KL of real vs implausible
poses. The trainer writes these figures only into the model card; this keeps them in a results
file of the committed weights.

    python benchmarks/bench_pose_prior.py

Results: benchmarks/results/pose_prior.{json,md}.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_common import DATA, machine, write  # noqa: E402
from bench_hkmr import git_commit  # noqa: E402

COMMAND = "python benchmarks/bench_pose_prior.py"


def main() -> int:
    if not (DATA / "cmu_mocap").is_dir():
        print(f"bench_pose_prior: {DATA / 'cmu_mocap'} is absent", file=sys.stderr)
        return 1
    from hmrkit.models.pose_prior import load_pose_prior
    from hmrkit.train.pose_prior import TrainConfig, measure

    torch.set_num_threads(1)
    figures = measure(load_pose_prior(), TrainConfig())
    payload = {"machine": machine(), "command": COMMAND, "commit": git_commit(), "weights": "hmrkit/weights/pose_vae.safetensors",
               "figures": figures}
    rows = [f"| {name.strip()} | {f['frames']} | {f['recon_deg_mean']:.2f} | {f['recon_deg_median']:.2f} | {f['kl_mean']:.1f} | "
            f"{f['kl_median']:.1f} |" for name, f in figures.items()]
    table = "\n".join([
        "# Pose prior (pose_vae.safetensors) on held-out and implausible poses", "",
        f"Machine: {machine()}. Command: `{COMMAND}` at commit {payload['commit']}. decode(mu) against the input: geodesic "
        "angle per joint and frame (degrees); KL to the unit Gaussian (nats). Held out: the CMU `test` split, every frame; "
        "'test: ACTION' rows are its parts; the training split (every 2nd frame) for contrast.", "",
        "| poses | frames | recon mean deg | recon median deg | KL mean | KL median |", "|---|---|---|---|---|---|", *rows, ""])
    write("pose_prior", payload, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
