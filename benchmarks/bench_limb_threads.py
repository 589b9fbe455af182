"""BPAC-Net (the limb stage) on one torch thread or two, with the other core busy or idle.

    python benchmarks/bench_limb_threads.py [--frames 5] [--repeats 3]

The people of the sample video's first ``--frames`` frames (MediaPipe, as ``hmrkit run`` finds
them) are classified by the shipped ``BpacClassifier.probabilities`` (the call the pipeline's limb
stage makes, flip average included) with ``torch.set_num_threads(1)`` and ``(2)``; once with the
machine as it is and once with a busy-loop process this script starts on the other core (what the
video's look-ahead perception thread, or any other job, does to the fit's second thread). The
pipeline runs the stage on ``PipelineConfig.fit_threads`` (one) since 0b706cb; before, it ran on
torch's default (two here). Median ms per frame and per person. Results:
benchmarks/results/limb_threads.{json,md}.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DATA, machine, write  # noqa: E402


def spin(stop) -> None:
    while not stop.is_set():
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from hmrkit.io.images import VideoReader
    from hmrkit.models.bpac_net import BpacClassifier
    from hmrkit.pipeline import Pipeline, PipelineConfig

    frames = []
    with VideoReader(DATA / "demo_images" / "sample_video.mp4") as reader, Pipeline(PipelineConfig(), video=True) as pipeline:
        for frame in reader:
            people = [p for p in pipeline.backend.detect(frame.rgb).people if p.body is not None]
            frames.append((frame.rgb, people))
            if len(frames) == args.frames:
                break
    classifier = BpacClassifier.load()
    people = sum(len(p) for _, p in frames)
    rows = {}
    for busy in (False, True):
        stop = multiprocessing.Event()
        spinner = multiprocessing.Process(target=spin, args=(stop,), daemon=True) if busy else None
        if spinner is not None:
            spinner.start()
        try:
            for threads in (1, 2):
                torch.set_num_threads(threads)
                classifier.probabilities(*frames[0])  # warm-up
                totals = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    for rgb, found in frames:
                        classifier.probabilities(rgb, found)
                    totals.append(time.perf_counter() - start)
                median = statistics.median(totals)
                rows[f"{'other core busy' if busy else 'as the machine is'}, {threads} thread{'s' if threads > 1 else ''}"] = {
                    "ms_per_frame": median * 1000 / len(frames), "ms_per_person": median * 1000 / people}
        finally:
            if spinner is not None:
                stop.set()
                spinner.join()
    payload = {"machine": machine(with_load=True), "command": "python benchmarks/bench_limb_threads.py"
               + (" " + " ".join(argv or sys.argv[1:]) if (argv or sys.argv[1:]) else ""),
               "frames": len(frames), "people": people, "rows": rows}
    lines = ["# BPAC-Net (the limb stage) on one torch thread or two", "",
             f"Machine: {payload['machine']}. Command: `{payload['command']}`. The {people} people of the sample video's "
             f"first {len(frames)} frames, `BpacClassifier.probabilities` per frame (flip average), median of "
             f"{args.repeats}; 'other core busy': a busy-loop process started by the script.", "",
             "| setting | ms per frame | ms per person |", "|---|---|---|"]
    lines += [f"| {name} | {row['ms_per_frame']:.0f} | {row['ms_per_person']:.0f} |" for name, row in rows.items()]
    write("limb_threads", payload, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
