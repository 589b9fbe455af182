"""A3D synthesis: generation speed, and the picture of samples in the docs.

    python benchmarks/bench_synth.py speed [--count 60] [--no-fitted-poses]
        images/s of hmrkit.synth.a3d at 256 px on this machine (one thread), and the share of the
        time spent in MediaPipe's landmark search; writes benchmarks/results/synth_speed.{json,md}
    python benchmarks/bench_synth.py set --set DIR
        what a generated set holds (limb types, MediaPipe finds); benchmarks/results/synth_set_<name>.{json,md}
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
    reasons: dict[str, int] = {}
    for why in generator.backgrounds.rejected.values():
        why = "SSIM below 0.5" if why.startswith("ssim") else "over half inpainted" if why.endswith("inpainted") else why
        reasons[why] = reasons.get(why, 0) + 1
    payload = {
        "machine": machine(with_load=True), "image_size": list(settings.size), "samples": args.count,
        "fitted_poses": settings.fitted_poses, "seed": args.seed,
        "images_per_s": args.count / total, "ms_per_image_median": 1000 * float(np.median(totals)),
        "mediapipe_ms_median": 1000 * float(np.median(detections)),
        "mediapipe_share": float(np.sum(detections) / total),
        "landmarks_found_share": found / args.count, "setup_s_cached": setup,
        "background_sources": len(generator.backgrounds) + len(generator.backgrounds.rejected),
        "backgrounds_kept": len(generator.backgrounds), "backgrounds_rejected": reasons,
        "fitted_poses_in_bank": 0 if generator.fitted is None else len(generator.fitted),
        "mocap_poses": len(generator.mocap),
        "command": "python benchmarks/bench_synth.py speed" + (" --no-fitted-poses" if args.no_fitted_poses else ""),
    }
    table = (f"# A3D generation speed\n\n{payload['machine']}\n\n"
             f"`{payload['command']}` ({args.count} samples of seed {args.seed}, {settings.size[1]} px, one thread; "
             "backgrounds and pose bank read from the cache)\n\n"
             "| images/s | ms per image (median) | of which MediaPipe landmark search (median) | MediaPipe share of the time | person found by MediaPipe | setup (cached) |\n"
             "|---|---|---|---|---|---|\n"
             f"| {payload['images_per_s']:.2f} | {payload['ms_per_image_median']:.0f} | {payload['mediapipe_ms_median']:.0f} | "
             f"{100 * payload['mediapipe_share']:.0f} % | {100 * payload['landmarks_found_share']:.0f} % | {setup:.1f} s |\n\n"
             f"Sources: {payload['background_sources']} photos (even lspet_dev, demo_images), {payload['backgrounds_kept']} "
             f"backgrounds kept, rejected: {', '.join(f'{k} {v}' for k, v in reasons.items())}; pose bank "
             f"{payload['fitted_poses_in_bank']} fitted poses beside {payload['mocap_poses']} CMU train poses.\n")
    write("synth_speed", payload, table)


def set_stats(args: argparse.Namespace) -> None:
    """What a generated set holds: limb labels per type, intact share, people MediaPipe found."""
    from hmrkit.body.limbs import LIMBS, levels
    from hmrkit.synth import dataset

    root = Path(args.set)
    manifest = dataset.read_manifest(root)
    done = dataset.completed(root)
    people = [dataset.load_person(dataset.label_path(root, i)) for i in done]
    classes = np.stack([p.limb_classes for p in people])
    found = np.array([np.isfinite(p.landmarks).all() for p in people])
    absent = (classes > 0).sum(1)
    types = {f"{limb.split('_')[0]}_{level}": int((classes[:, i] == c + 1).sum())
             for i, limb in enumerate(LIMBS) for c, level in enumerate(levels(limb))}
    truncated = np.array([((p.keypoints2d < 0) | (p.keypoints2d > np.array(manifest.image_size[::-1]) - 1)).any() for p in people])
    payload = {"set": root.name, "seed": manifest.seed, "samples": len(people), "image_size": list(manifest.image_size),
               "options": manifest.options, "intact_share": float((absent == 0).mean()),
               "limbs_absent_counts": {str(k): int((absent == k).sum()) for k in range(5)}, "types": types,
               "landmarks_found_share": float(found.mean()),
               "landmarks_found_share_intact": float(found[absent == 0].mean()),
               "landmarks_found_share_amputated": float(found[absent > 0].mean()),
               "some_keypoint_outside_frame_share": float(truncated.mean()),
               "command": f"python benchmarks/bench_synth.py set --set {args.set}"}
    table = (f"# A3D set `{root.name}` (seed {manifest.seed}, {len(people)} samples, {manifest.image_size[1]} px)\n\n"
             f"`{payload['command']}`; generator options in the JSON\n\n"
             f"| intact | 1 limb absent | 2 | 3 | MediaPipe found the person (all / intact / amputated) | a keypoint outside the frame |\n"
             f"|---|---|---|---|---|---|\n"
             f"| {100 * payload['intact_share']:.1f} % | {(absent == 1).sum()} | {(absent == 2).sum()} | {(absent == 3).sum()} | "
             f"{100 * found.mean():.1f} / {100 * payload['landmarks_found_share_intact']:.1f} / {100 * payload['landmarks_found_share_amputated']:.1f} % | "
             f"{100 * truncated.mean():.1f} % |\n\n"
             "| type | " + " | ".join(types) + " |\n|---|" + "---|" * len(types) + "\n| people | "
             + " | ".join(str(v) for v in types.values()) + " |\n")
    write(f"synth_set_{root.name}", payload, table)


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
    parser.add_argument("what", choices=["speed", "samples", "set"])
    parser.add_argument("--set", default="/work/a3d/train", help="set: the generated folder to describe")
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-fitted-poses", action="store_true")
    args = parser.parse_args()
    if args.what == "speed":
        speed(args)
    elif args.what == "samples":
        samples(args)
    else:
        set_stats(args)


if __name__ == "__main__":
    main()
