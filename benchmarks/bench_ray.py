"""Throughput of ``hmrkit run --ray`` with 1 and 2 local workers against the serial run.

    python benchmarks/bench_ray.py [--repeats 2]

Each way is a fresh ``hmrkit run`` process on the demo photos (every file written, --overwrite),
timed from start to exit as a user waits for it: the Ray runs include starting and stopping
their local cluster and each worker's model loading. The ways alternate within each repeat; the
median is kept. Also timed: starting and stopping an empty local Ray cluster alone. Needs Ray
(pip install ray==2.60.0). Results: benchmarks/results/ray_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

from bench_common import DEMO_PHOTOS, ROOT, machine, write  # the script's own folder

RAY_START = "import ray; ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False); ray.shutdown()"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--render", action="store_true", help="only rewrite the markdown from the committed JSON")
    args = parser.parse_args(argv)
    if args.render:
        payload = json.loads((ROOT / "benchmarks" / "results" / "ray_throughput.json").read_text())
        (ROOT / "benchmarks" / "results" / "ray_throughput.md").write_text(render(payload))
        return
    photos = [str(p) for p in DEMO_PHOTOS]
    hmrkit = [sys.executable, "-m", "hmrkit.cli", "run"]
    ways = {"serial (`hmrkit run`)": [], "Ray, 1 worker (`--ray --ray-workers 1`)": ["--ray", "--ray-workers", "1"],
            "Ray, 2 workers (`--ray --ray-workers 2`)": ["--ray", "--ray-workers", "2"]}
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    ray_start: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(hmrkit + [photos[0], "--out", folder, "--overwrite"], check=True, capture_output=True, cwd=ROOT)  # warm-up
        for _ in range(args.repeats):
            for way, extra in ways.items():
                start = time.perf_counter()
                done = subprocess.run(hmrkit + extra + photos + ["--out", f"{folder}/{len(extra)}", "--overwrite"],
                                      capture_output=True, text=True, cwd=ROOT)
                seconds[way].append(time.perf_counter() - start)
                if done.returncode != 0:
                    raise SystemExit(f"{way} failed (exit {done.returncode}): "
                                     + " / ".join(l for l in done.stderr.splitlines() if "error" in l or "Error" in l)[-2000:])
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", RAY_START], check=True, capture_output=True, cwd=ROOT)
            ray_start.append(time.perf_counter() - start)
    payload = {"machine": machine(with_load=True), "command": f"python benchmarks/bench_ray.py --repeats {args.repeats}",
               "photos": len(photos), "seconds": seconds, "empty_local_ray_cluster_start_stop_seconds": ray_start}
    write("ray_throughput", payload, render(payload))


def render(payload: dict) -> str:
    """The markdown table of a payload (``--render`` redoes it from the committed JSON)."""
    seconds, photos = payload["seconds"], payload["photos"]
    serial = statistics.median(seconds["serial (`hmrkit run`)"])
    lines = ["# `hmrkit run --ray`: throughput against the serial run", "",
             f"Machine: {payload['machine']}. Command: `{payload['command']}`. The {photos} demo photos, every file "
             "written; each way a fresh `hmrkit run` process timed to its exit (Ray's: starting and stopping the local "
             "cluster and each worker loading the models included); ways alternate, median of the repeats.", "",
             "| way | seconds | photos per minute | against serial |", "|---|---|---|---|"]
    for way, values in seconds.items():
        median = statistics.median(values)
        lines.append(f"| {way} | {median:.1f} | {photos * 60 / median:.1f} | {serial / median:.2f}x |")
    lines += ["", "An empty local Ray cluster (2 CPUs) started and stopped in a fresh process: "
              f"{statistics.median(payload['empty_local_ray_cluster_start_stop_seconds']):.1f} s (median).", "",
              "What differs between the ways besides Ray: a Ray worker runs all of torch on one thread "
              "(torch.set_num_threads(1), one worker per CPU); the serial run of the code measured here (before 0b706cb) "
              "ran its limb classifier (BPAC-Net) with torch's default threads (its fit, HKMR and the hand IK on one), "
              "and it detects the next photo on a second thread. Which of these made the difference on this loaded machine is not measured here. A second "
              "worker has no core of its own on this 2-core machine shared with other jobs; what `--ray` is for is more "
              "machines, each worker bringing its own cores (not measured here: one machine)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
