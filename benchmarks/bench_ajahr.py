"""AJAHR through the pipeline on held-out synthetic amputees (A3D) -- the paper's Tab. B analogue.

Every image of a held-out set (``hmrkit synth a3d``, a seed never trained on) goes through
hmrkit's perception once; its person then goes through the rest of the pipeline with each limb
choice: AJAHR switched off (every limb drawn, hmrkit before limb status), the ground-truth limb
labels stated, and BPAC-Net's prediction (``--limbs auto``); the latter two also with the pose
tokenizer (``--pose-tokenizer``). Errors against the rendered body,
split into amputated and intact people:
- MPJPE / PA-MPJPE (mm) over the body_output keypoints that exist on the true body (pelvis-aligned
  for MPJPE), the prediction's points taken from its own mesh (a limb wrongly cut counts where
  the cut put it);
- PVE (mm, pelvis-aligned) over all vertices of the true (collapsed) mesh.
Also the limb stage's time per person.

And on real intact people never trained on (``real``): ``hmrkit run --limbs auto`` over the
odd-numbered lspet_dev photos and coco_mini_dev, every person found, and how many get any limb
called absent (the false amputation rate; AJAHR's target here is at most 1 %).

    python benchmarks/bench_ajahr.py synthetic --set /work/a3d/test [--count 300]
    python benchmarks/bench_ajahr.py real
    (either with --limb-threshold P: BPAC-Net's operating point, as ``hmrkit run --limb-threshold``)
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import DATA, machine, write  # noqa: E402

from hmrkit.body.amputation import collapse_scales  # noqa: E402
from hmrkit.body.conventions import BODY_OUTPUT  # noqa: E402
from hmrkit.body.limbs import LimbStatus  # noqa: E402
from hmrkit.eval.metrics import mpjpe, pa_mpjpe, pve  # noqa: E402
from hmrkit.io.images import load_image  # noqa: E402
from hmrkit.limb_stage import LimbChoice  # noqa: E402
from hmrkit.perception.geometry import iou  # noqa: E402
from hmrkit.pipeline import Pipeline, PipelineConfig  # noqa: E402
from hmrkit.results import model_scales  # noqa: E402
from hmrkit.train.bpac import lspet_photos  # noqa: E402
from hmrkit.synth.dataset import image_path, label_path, load_person, read_manifest  # noqa: E402

PELVIS = BODY_OUTPUT.index("pelvis")


@dataclass
class Row:
    errors: dict[str, list[float]]  # metric -> per person
    limb_ms: list[float]


def _posed(pipeline: Pipeline, rotations, shape, translation, scales) -> tuple[torch.Tensor, torch.Tensor]:
    """(body_output keypoints (K, 3), vertices (V, 3)) of one body."""
    with torch.no_grad():
        out = pipeline.model(torch.as_tensor(rotations, dtype=torch.float32)[None], torch.as_tensor(shape, dtype=torch.float32)[None],
                             torch.as_tensor(translation, dtype=torch.float32)[None], keypoints=pipeline.output_keypoints, scales=scales)
    return out.keypoints[0], out.vertices[0]


def synthetic(args: argparse.Namespace, argv: list[str]) -> None:
    manifest = read_manifest(args.set)
    count = manifest.count if args.count is None else min(args.count, manifest.count)
    modes = ("off (every limb drawn)", "ground-truth limbs", "ground-truth limbs + pose tokenizer", "BPAC-Net (--limbs auto)",
             "BPAC-Net + pose tokenizer")
    rows = {(m, g): Row({"mpjpe": [], "pa_mpjpe": [], "pve": []}, []) for m in modes for g in ("amputated", "intact")}
    missed = {"amputated": 0, "intact": 0}
    pipeline = Pipeline(PipelineConfig(limbs=None, limb_threshold=args.limb_threshold, pose_tokenizer=True))
    classifier_choice, tokenizer = pipeline.limbs, pipeline.tokenizer
    started = time.time()
    for index in range(count):
        label = load_person(label_path(args.set, index))
        truth = LimbStatus.from_classes(label.limb_classes, source="user")
        group = "amputated" if truth.any_absent else "intact"
        image = load_image(image_path(args.set, index))
        perception = pipeline.backend.detect(image.rgb)
        found = [p for p in perception.people if p.body is not None]
        best = max(found, key=lambda p: iou(p.box, label.box), default=None)
        if best is None or iou(best.box, label.box) < 0.3:
            missed[group] += 1
            continue
        one = replace(perception, people=[best])
        true_points, true_vertices = _posed(pipeline, label.rotations, label.shape, label.translation,
                                            collapse_scales(pipeline.model.skeleton, truth.losses))
        exists = torch.from_numpy(~label.keypoints_absent)
        choices = (LimbChoice(LimbStatus.intact()), LimbChoice(truth), LimbChoice(truth), classifier_choice, classifier_choice)
        for mode, choice in zip(modes, choices):
            pipeline.limbs = choice
            pipeline.tokenizer = tokenizer if mode.endswith("pose tokenizer") else None
            result, _ = pipeline.run_with_fit(image, perception=one)
            (person,) = result.people
            points, vertices = _posed(pipeline, person.pose, person.shape, person.translation, torch.from_numpy(model_scales(person.pose_names, person.bone_scales, person.limbs)).float()[None])
            row = rows[(mode, group)]
            row.errors["mpjpe"].append(1000 * float(mpjpe(points[None], true_points[None], exists[None], root=PELVIS)[0]))
            row.errors["pa_mpjpe"].append(1000 * float(pa_mpjpe(points[None], true_points[None], exists[None])[0]))
            row.errors["pve"].append(1000 * float(pve(vertices[None], true_vertices[None], pred_root=points[PELVIS][None],
                                                      target_root=true_points[PELVIS][None])[0]))
            row.limb_ms.append(result.timings_ms.get("limbs", 0.0))
        if index % 25 == 0:
            print(f"{index + 1}/{count} ({time.time() - started:.0f} s)", flush=True)
    summary = {}
    for (mode, group), row in rows.items():
        n = len(row.errors["mpjpe"])
        summary[f"{mode} | {group}"] = {"people": n, **{k: round(float(np.mean(v)), 1) if n else None for k, v in row.errors.items()},
                                        "limb_stage_ms_median": round(float(np.median(row.limb_ms)), 2) if n else None}
    payload = {"command": "python benchmarks/bench_ajahr.py " + " ".join(argv), "set": str(args.set),
               "seed": manifest.seed, "samples": count, "not_found": missed, "rows": summary, "machine": machine(with_load=True),
               "seconds": round(time.time() - started)}
    lines = [f"# AJAHR on held-out A3D ({args.set.name}, seed {manifest.seed}, {count} images){_threshold_said(args)}", "",
             "| limbs | people | n | MPJPE mm | PA-MPJPE mm | PVE mm | limb stage ms/image (median) |", "|---|---|---|---|---|---|---|"]
    for key, v in summary.items():
        mode, group = key.split(" | ")
        lines.append(f"| {mode} | {group} | {v['people']} | {v['mpjpe']} | {v['pa_mpjpe']} | {v['pve']} | {v['limb_stage_ms_median']} |")
    lines += ["", f"Not found by perception (IoU < 0.3 with the rendered person): {missed}.",
              f"Machine: {payload['machine']}. Command: `{payload['command']}`."]
    write(args.name, payload, "\n".join(lines) + "\n")


def _threshold_said(args: argparse.Namespace) -> str:
    return "" if args.limb_threshold is None else f", BPAC-Net at --limb-threshold {args.limb_threshold}"


def real_photos() -> dict[str, list[Path]]:
    """The real photos of intact people that BPAC-Net never trains or calibrates on."""
    odd = lspet_photos(DATA, "odd")
    coco = sorted(p for p in (DATA / "coco_mini_dev").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return {"lspet_dev (odd-numbered)": odd, "coco_mini_dev": coco}


def real(args: argparse.Namespace, argv: list[str]) -> None:
    pipeline = Pipeline(PipelineConfig(limbs=None, limb_threshold=args.limb_threshold, hands=False))
    started = time.time()
    payload = {"command": "python benchmarks/bench_ajahr.py " + " ".join(argv), "sets": {}}
    lines = [f"# False amputations on real intact people never trained on (hmrkit run --limbs auto){_threshold_said(args)}", "",
             "| photos | images | people | people with a limb called absent | rate | by limb |", "|---|---|---|---|---|---|"]
    for name, photos in real_photos().items():
        people = flagged = 0
        by_limb: dict[str, int] = {}
        examples = []
        for path in photos[: args.count]:
            result = pipeline.run(path)
            for person in result.people:
                people += 1
                absent = [f"{s.limb}={s.level}" for s in person.limbs.states if not s.present]
                if absent:
                    flagged += 1
                    examples.append(f"{path.name}: {', '.join(absent)}")
                    for s in person.limbs.states:
                        if not s.present:
                            by_limb[s.limb] = by_limb.get(s.limb, 0) + 1
        rate = flagged / max(people, 1)
        payload["sets"][name] = {"images": len(photos[: args.count]), "people": people, "flagged": flagged, "rate": rate,
                                 "by_limb": by_limb, "flagged_people": examples}
        lines.append(f"| {name} | {len(photos[: args.count])} | {people} | {flagged} | {100 * rate:.2f} % | {by_limb or '-'} |")
        print(lines[-1], flush=True)
    payload["machine"] = machine(with_load=True)
    payload["seconds"] = round(time.time() - started)
    lines += ["", f"Machine: {payload['machine']}. Command: `{payload['command']}`."]
    write(args.name, payload, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    synth = sub.add_parser("synthetic", help="held-out A3D: errors with AJAHR off, ground-truth limbs, BPAC-Net")
    synth.add_argument("--set", type=Path, required=True, help="a held-out A3D folder")
    synth.add_argument("--count", type=int, default=None, help="first N samples (default all)")
    synth.add_argument("--name", default="ajahr_synthetic")
    photos = sub.add_parser("real", help="false amputations on real intact people never trained on")
    photos.add_argument("--count", type=int, default=None, help="first N photos of each set (default all)")
    photos.add_argument("--name", default="ajahr_real")
    for command in (synth, photos):
        command.add_argument("--limb-threshold", type=float, default=None,
                             help="BPAC-Net decides with this threshold on P(present) (hmrkit run --limb-threshold; default: the calibrated one)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    (synthetic if args.what == "synthetic" else real)(args, argv)


if __name__ == "__main__":
    main()
