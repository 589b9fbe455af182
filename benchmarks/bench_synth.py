"""A3D synthesis: generation speed, and the picture of samples in the docs.

    python benchmarks/bench_synth.py speed [--count 60] [--no-fitted-poses]
        images/s of hmrkit.synth.a3d at 256 px on this machine (one thread), and the share of the
        time spent in MediaPipe's landmark search; writes benchmarks/results/synth_speed.{json,md}
    python benchmarks/bench_synth.py samples [--seed 1] [--no-fitted-poses]
        docs/images/a3d_samples.jpg: 12 samples of the set of --seed with their limb labels,
        keypoints (green; absent ones red) and MediaPipe's landmarks found on the image (cyan)

Both build the generator as ``hmrkit synth a3d`` does (backgrounds and pose bank from the
cache; the first run on a machine cleans the photos and fits the pose bank, minutes).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_common import machine, write  # noqa: E402
from hmrkit.body.limbs import LimbStatus  # noqa: E402
from hmrkit.synth.a3d import A3DGenerator, A3DSettings  # noqa: E402

SHORT = {"left_arm": "L arm", "right_arm": "R arm", "left_leg": "L leg", "right_leg": "R leg"}


def speed(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    settings = A3DSettings(fitted_poses=not args.no_fitted_poses)
    start = time.perf_counter()
    generator = A3DGenerator(settings, log=lambda m: None)
    setup = time.perf_counter() - start
    generator.sample(args.seed, 0)  # first call: compiled kernels, MediaPipe graphs
    totals, detections, found = [], [], 0
    for i in range(1, args.count + 1):
        t0 = time.perf_counter()
        image, person = generator.sample(args.seed, i)
        totals.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        generator.landmarks(image, person.box)
        detections.append(time.perf_counter() - t0)
        found += bool(np.isfinite(person.landmarks).all())
    generator.close()
    total = float(np.sum(totals))
    payload = {
        "machine": machine(with_load=True), "image_size": list(settings.size), "samples": args.count,
        "fitted_poses": settings.fitted_poses, "seed": args.seed,
        "images_per_s": args.count / total, "ms_per_image_median": 1000 * float(np.median(totals)),
        "mediapipe_ms_median": 1000 * float(np.median(detections)),
        "mediapipe_share": float(np.sum(detections) / total),
        "landmarks_found_share": found / args.count, "setup_s_cached": setup,
        "command": "python benchmarks/bench_synth.py speed" + (" --no-fitted-poses" if args.no_fitted_poses else ""),
    }
    table = (f"# A3D generation speed\n\n{payload['machine']}\n\n"
             f"`{payload['command']}` ({args.count} samples of seed {args.seed}, {settings.size[1]} px, one thread; "
             "backgrounds and pose bank read from the cache)\n\n"
             "| images/s | ms per image (median) | of which MediaPipe landmark search (median) | MediaPipe share of the time | person found by MediaPipe | setup (cached) |\n"
             "|---|---|---|---|---|---|\n"
             f"| {payload['images_per_s']:.2f} | {payload['ms_per_image_median']:.0f} | {payload['mediapipe_ms_median']:.0f} | "
             f"{100 * payload['mediapipe_share']:.0f} % | {100 * payload['landmarks_found_share']:.0f} % | {setup:.1f} s |\n")
    write("synth_speed", payload, table)


def _label(classes: np.ndarray) -> list[str]:
    status = LimbStatus.from_classes(classes)
    lines = [f"{SHORT[s.limb]}: {s.level}" for s in status.states if not s.present]
    return lines or ["intact"]


def _text(image: np.ndarray, lines: list[str]) -> None:
    width = max(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0] for line in lines)
    band = image[:8 + 16 * len(lines), :width + 10]
    band[:] = (band * 0.35).astype(np.uint8)
    for n, line in enumerate(lines):
        cv2.putText(image, line, (5, 16 + 16 * n), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)


def samples(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    generator = A3DGenerator(A3DSettings(fitted_poses=not args.no_fitted_poses), log=lambda m: print(m, file=sys.stderr))
    tiles = []
    for i in range(12):
        image, p = generator.sample(args.seed, i)
        bgr = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if np.isfinite(p.landmarks).all():
            for x, y, _ in p.landmarks[11:]:  # body landmarks (not the face's)
                cv2.circle(bgr, (int(round(x)), int(round(y))), 2, (255, 255, 0), -1, cv2.LINE_AA)
        for (x, y), absent in zip(p.keypoints2d, p.keypoints_absent):
            cv2.circle(bgr, (int(round(x)), int(round(y))), 3 if absent else 2, (0, 0, 255) if absent else (0, 200, 0), -1, cv2.LINE_AA)
        _text(bgr, _label(p.limb_classes) + ([] if np.isfinite(p.landmarks).all() else ["(MediaPipe: nobody)"]))
        tiles.append(bgr)
    generator.close()
    grid = np.vstack([np.hstack(tiles[r * 4:(r + 1) * 4]) for r in range(3)])
    out = ROOT / "docs" / "images" / "a3d_samples.jpg"
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), grid, [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["speed", "samples"])
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-fitted-poses", action="store_true")
    args = parser.parse_args()
    speed(args) if args.what == "speed" else samples(args)


if __name__ == "__main__":
    main()
