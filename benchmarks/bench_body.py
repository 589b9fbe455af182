"""Body-model layer speed: Anny snapshot build/load, forward at batch 1 and 64, keypoints-only
forward, forward + backward, and the SMPL-family layer for comparison where it applies.

    python benchmarks/bench_body.py            # warm figures (uses the existing snapshot)
    python benchmarks/bench_body.py --cold     # also times a cold build into a temporary cache

Writes benchmarks/results/body.{json,md}. Median of repeated runs, wall clock.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import roma
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

from hmrkit.body.anny_keypoints import anny_keypoint_map  # noqa: E402
from hmrkit.body.anny_model import AnnyModel  # noqa: E402
from hmrkit.body.anny_snapshot import load_anny_data, read_snapshot, snapshot_path  # noqa: E402
from hmrkit.body.conventions import COCO17, MEDIAPIPE33  # noqa: E402


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows: dict[str, float] = {}
    if args.cold:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            load_anny_data(Path(tmp) / "snap.safetensors", verbose=False)
            rows["snapshot cold build (s)"] = round(time.perf_counter() - start, 1)
    path = snapshot_path()
    load_anny_data(path, verbose=True)
    rows["snapshot warm load (ms)"] = median_ms(lambda: read_snapshot(path), 10, 1)
    data = read_snapshot(path)
    rows["model construction from snapshot (ms)"] = median_ms(lambda: AnnyModel(data), 5, 1)
    body = AnnyModel(data)
    coco = anny_keypoint_map(body, COCO17)
    mp33 = anny_keypoint_map(body, MEDIAPIPE33)
    for batch in (1, 64):
        rot = roma.rotvec_to_rotmat(torch.randn(batch, body.num_joints, 3) * 0.3)
        shape = torch.rand(batch, 6)
        with torch.no_grad():
            rows[f"forward with mesh, batch {batch} (ms)"] = median_ms(lambda: body(rot, shape), 20)
            rows[f"keypoints-only forward (COCO17), batch {batch} (ms)"] = median_ms(
                lambda: body(rot, shape, with_vertices=False, keypoints=coco), 50)
        rv = (torch.randn(batch, body.num_joints, 3) * 0.3).requires_grad_()
        sh = shape.clone().requires_grad_()

        def fwd_bwd(with_vertices: bool):
            out = body(roma.rotvec_to_rotmat(rv), sh, with_vertices=with_vertices, keypoints=mp33)
            loss = out.keypoints.square().sum() + (out.vertices.square().sum() if with_vertices else 0)
            loss.backward()

        rows[f"forward+backward with mesh, batch {batch} (ms)"] = median_ms(lambda: fwd_bwd(True), 10)
        rows[f"keypoints-only forward+backward (MediaPipe33), batch {batch} (ms)"] = median_ms(lambda: fwd_bwd(False), 30)
    rows = {k: round(v, 2) for k, v in rows.items()}
    machine = f"{os.cpu_count()} CPU cores ({platform.machine()}), CPU only, torch {torch.__version__}, {args.threads} torch thread(s)"
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/bench_body.py" + (" --cold" if args.cold else "") + (f" --threads {args.threads}" if args.threads != 1 else "")
    (RESULTS / "body.json").write_text(json.dumps({"machine": machine, "command": command, "results": rows}, indent=1))
    table = ["# Body-model layer speed (Anny, 52-joint skeleton, 13,718 vertices)", "", f"Machine: {machine}. Median wall time.", "",
             "| what | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows.items()] + ["", f"Command: `{command}`", ""]
    (RESULTS / "body.md").write_text("\n".join(table))
    print("\n".join(table))


if __name__ == "__main__":
    main()
