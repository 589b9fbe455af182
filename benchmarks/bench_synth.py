"""A3D synthesis: generation speed, and the picture of samples in the docs.

    python benchmarks/bench_synth.py speed [--count 60] [--no-fitted-poses]
        images/s of hmrkit.synth.a3d at 256 px on this machine (one thread), and the share of the
        time spent in MediaPipe's landmark search; writes benchmarks/results/synth_speed.{json,md}
    python benchmarks/bench_synth.py set --set DIR
        what a generated set holds (limb types, MediaPipe finds); benchmarks/results/synth_set_<name>.{json,md}
    python benchmarks/bench_synth.py samples [--seed 1] [--no-fitted-poses]
        docs/images/a3d_samples.jpg: 12 samples of the set of --seed with their limb labels,
        keypoints (green; absent ones red) and MediaPipe's landmarks found on the image (cyan)

Hand images (``hmrkit synth hands``, Lite I2L MeshNet's synthetic data):

    python benchmarks/bench_synth.py hands-speed [--count 100]
        images/s of hmrkit.synth.hands at 256 and 128 px on this machine (one thread);
        writes benchmarks/results/synth_hands_speed.{json,md}
    python benchmarks/bench_synth.py hands-set --set DIR
        what a generated hand set holds (sides, pose sources, joint visibility, truncation, hand size);
        benchmarks/results/synth_hands_set_<name>.{json,md}
    python benchmarks/bench_synth.py hands-bank
        the real hand poses (MediaPipe Hands + IK net on the training photos): photos searched and
        hands found per folder; benchmarks/results/synth_hands_pose_bank.{json,md}
    python benchmarks/bench_synth.py hands-samples [--seed 1]
        docs/images/hand_samples.jpg: 16 samples of --seed at 256 px with their 21 joints (green
        visible, red hidden, grey outside), the visible box (yellow), side and pose source

All build the generator as ``hmrkit synth a3d`` / ``hands`` does (backgrounds and pose bank from the
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


def hands_speed(args: argparse.Namespace) -> None:
    from hmrkit.synth.hands import HandSynthGenerator, HandSynthSettings

    torch.set_num_threads(1)
    rows = {}
    for side in (256, 128):
        settings = HandSynthSettings(size=(side, side))
        start = time.perf_counter()
        generator = HandSynthGenerator(settings, log=lambda m: None)
        setup = time.perf_counter() - start
        generator.sample(args.seed, 0)  # first call: compiled kernels
        times = []
        for i in range(1, args.count + 1):
            t0 = time.perf_counter()
            generator.sample(args.seed, i)
            times.append(time.perf_counter() - t0)
        rows[side] = {"images_per_s": args.count / float(np.sum(times)), "ms_per_image_median": 1000 * float(np.median(times)),
                      "setup_s_cached": setup}
        generator.close()
    payload = {"machine": machine(with_load=True), "samples": args.count, "seed": args.seed,
               "real_poses_in_bank": len(generator.poses), "backgrounds_kept": len(generator.backgrounds),
               "sizes": {str(k): v for k, v in rows.items()},
               "command": f"python benchmarks/bench_synth.py hands-speed --count {args.count} --seed {args.seed}"}
    table = (f"# Hand image generation speed (hmrkit synth hands)\n\n{payload['machine']}\n\n"
             f"`{payload['command']}` ({args.count} samples of seed {args.seed} per size, one thread, sample writing "
             "(JPEG + npz) not included; backgrounds and the real pose bank read from the cache)\n\n"
             "| size | images/s | ms per image (median) | setup (cached) |\n|---|---|---|---|\n"
             + "".join(f"| {k} px | {v['images_per_s']:.1f} | {v['ms_per_image_median']:.1f} | {v['setup_s_cached']:.1f} s |\n"
                       for k, v in rows.items())
             + f"\nReal poses in the bank: {payload['real_poses_in_bank']}; backgrounds: {payload['backgrounds_kept']}.\n")
    write("synth_hands_speed", payload, table)


def hands_set(args: argparse.Namespace) -> None:
    """What a generated hand set holds."""
    from hmrkit.synth import dataset, hand_dataset
    from hmrkit.synth.hand_dataset import OCCLUDED, OUTSIDE, VISIBLE

    root = Path(args.set)
    manifest = hand_dataset.read_hand_manifest(root)
    done = hand_dataset.completed(root)
    labels = [hand_dataset.load_hand(dataset.label_path(root, i)) for i in done]
    vis = np.stack([p.visibility for p in labels])
    side = manifest.image_size[1]
    boxes = np.stack([p.box for p in labels])
    found = np.isfinite(boxes).all(1)
    extent = np.maximum(boxes[found, 2] - boxes[found, 0], boxes[found, 3] - boxes[found, 1]) + 1
    real = np.array([p.pose_source.startswith("real:") for p in labels])
    payload = {
        "set": root.name, "seed": manifest.seed, "samples": len(labels), "of_count": manifest.count,
        "image_size": list(manifest.image_size), "options": manifest.options,
        "right_share": float(np.mean([p.side == "right" for p in labels])), "real_pose_share": float(real.mean()),
        "joints_visible": float((vis == VISIBLE).mean()), "joints_occluded": float((vis == OCCLUDED).mean()),
        "joints_outside": float((vis == OUTSIDE).mean()), "samples_with_a_joint_outside": float((vis == OUTSIDE).any(1).mean()),
        "no_visible_hand_pixels": int((~found).sum()), "mesh_vertices": int(labels[0].vertices.shape[0]),
        "visible_box_extent_over_side_median": float(np.median(extent / side)),
        "visible_box_extent_over_side_p10_p90": [float(np.percentile(extent / side, 10)), float(np.percentile(extent / side, 90))],
        "command": f"python benchmarks/bench_synth.py hands-set --set {args.set}",
    }
    table = (f"# Hand set `{root.name}` (seed {manifest.seed}, {len(labels)} of {manifest.count} samples, {side} px)\n\n"
             f"`{payload['command']}`; generator options in the JSON\n\n"
             "| right hands | real poses | joints visible / hidden / outside | samples with a joint outside | "
             "visible hand box / image side (median, 10-90 %) |\n|---|---|---|---|---|\n"
             f"| {100 * payload['right_share']:.1f} % | {100 * payload['real_pose_share']:.1f} % | "
             f"{100 * payload['joints_visible']:.1f} / {100 * payload['joints_occluded']:.1f} / {100 * payload['joints_outside']:.1f} % | "
             f"{100 * payload['samples_with_a_joint_outside']:.1f} % | {payload['visible_box_extent_over_side_median']:.2f} "
             f"({payload['visible_box_extent_over_side_p10_p90'][0]:.2f}-{payload['visible_box_extent_over_side_p10_p90'][1]:.2f}) |\n\n"
             f"Hand mesh: {payload['mesh_vertices']} vertices per label.\n")
    write(f"synth_hands_set_{root.name}", payload, table)


def hands_bank(args: argparse.Namespace) -> None:
    """Where the real hand poses come from (the bank is read from the cache, or built: minutes)."""
    from hmrkit.synth.backgrounds import default_data_root
    from hmrkit.synth.hand_poses import hand_photo_sources, hand_pose_bank

    torch.set_num_threads(1)
    photos = hand_photo_sources(default_data_root())
    bank = hand_pose_bank(photos)

    def folder(path: Path) -> str:
        return "lspet_dev (even)" if "lspet_dev" in path.parts else "demo_images/hands" if path.parent.name == "hands" else "demo_images"

    where = {p.name: folder(p) for p in photos}
    rows = {}
    for name in ("lspet_dev (even)", "demo_images", "demo_images/hands"):
        mine = np.array([where.get(str(s)) == name for s in bank.sources], bool)
        rows[name] = {"photos": sum(v == name for v in where.values()), "photos_with_a_hand": len(set(bank.sources[mine])),
                      "hands": int(mine.sum()), "left": int((bank.sides[mine] == "left").sum()), "right": int((bank.sides[mine] == "right").sum())}
    payload = {"machine": machine(), "hands": len(bank), "photos": len(photos), "by_folder": rows,
               "command": "python benchmarks/bench_synth.py hands-bank"}
    table = ("# Real hand poses for hmrkit synth hands (MediaPipe Hands + the IK net on the training photos)\n\n"
             f"`{payload['command']}`; never hands_ge2019_dev, odd lspet_dev or coco_mini_dev\n\n"
             "| photos | searched | with a hand | hands (left / right) |\n|---|---|---|---|\n"
             + "".join(f"| {k} | {v['photos']} | {v['photos_with_a_hand']} | {v['hands']} ({v['left']} / {v['right']}) |\n" for k, v in rows.items())
             + f"| all | {len(photos)} | {sum(v['photos_with_a_hand'] for v in rows.values())} | {len(bank)} |\n")
    write("synth_hands_pose_bank", payload, table)


def hands_samples(args: argparse.Namespace) -> None:
    from hmrkit.hands.biomech import HAND21_CHAIN
    from hmrkit.synth.hand_dataset import OUTSIDE, VISIBLE
    from hmrkit.synth.hands import HandSynthGenerator, HandSynthSettings

    torch.set_num_threads(1)
    generator = HandSynthGenerator(HandSynthSettings(), log=lambda m: print(m, file=sys.stderr))
    tiles = []
    for i in range(16):
        image, p = generator.sample(args.seed, i)
        bgr = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        for chain in HAND21_CHAIN.values():
            pts = [(int(round(x)), int(round(y))) for x, y in p.joints2d[[0, *chain]]]
            for a, b in zip(pts[:-1], pts[1:]):
                cv2.line(bgr, a, b, (230, 230, 230), 1, cv2.LINE_AA)
        for (x, y), v in zip(p.joints2d, p.visibility):
            colour = (0, 200, 0) if v == VISIBLE else (0, 0, 255) if v != OUTSIDE else (128, 128, 128)
            cv2.circle(bgr, (int(round(x)), int(round(y))), 3, colour, -1, cv2.LINE_AA)
        if np.isfinite(p.box).all():
            x0, y0, x1, y1 = (int(round(v)) for v in p.box)
            cv2.rectangle(bgr, (x0, y0), (x1, y1), (0, 220, 255), 1)
        source = "sampled pose" if p.pose_source == "sampled" else "real pose"
        _text(bgr, [f"{p.side}, {source}"])
        tiles.append(bgr)
    generator.close()
    grid = np.vstack([np.hstack(tiles[r * 4:(r + 1) * 4]) for r in range(4)])
    out = ROOT / "docs" / "images" / "hand_samples.jpg"
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), grid, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["speed", "samples", "set", "hands-speed", "hands-set", "hands-bank", "hands-samples"])
    parser.add_argument("--set", default="/work/a3d/train", help="set: the generated folder to describe")
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-fitted-poses", action="store_true")
    args = parser.parse_args()
    hands = {"hands-speed": hands_speed, "hands-set": hands_set, "hands-bank": hands_bank, "hands-samples": hands_samples}
    if args.what in hands:
        hands[args.what](args)
    elif args.what == "speed":
        speed(args)
    elif args.what == "samples":
        samples(args)
    else:
        set_stats(args)


if __name__ == "__main__":
    main()
