"""Where the whole-body fingertip error on ehf_dev comes from: hand placement (depth or image plane) or hand shape.

    python benchmarks/bench_ehf_depth.py                          # default, --no-refine, optimization, adapter on
    python benchmarks/bench_ehf_depth.py --reuse NAME=DIR ...     # score outputs of `bench_ehf.py --out DIR` instead

bench_ehf.py scores fingertips after a similarity on all 21 points, where the fingertips pull the
alignment. Here the body alone anchors the comparison: a similarity on the 11 face/foot landmarks
(the 11-point PA), applied to the whole mesh; each hand's five fingertips are then split into
- hand placement: the error of the fingertips' centroid, along the camera's depth axis (z) and in
  the image plane (x, y);
- hand shape and orientation: the fingertips' error about their own centroid.
If placement dominates, and depth within it, a better hand (orientation, fingers) cannot reduce the
error much: the arm's pose in depth is what is wrong.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import machine, write  # noqa: E402
from bench_ehf import EHF, LANDMARKS, TIPS, code_version, run_hmrkit  # noqa: E402

from hmrkit.eval.whole_body import HAND_SIDES, anny_points, apply_similarity, similarity_align  # noqa: E402

CONFIGS = {  # name -> extra `hmrkit run` arguments
    "default": [],
    "no_refine": ["--no-refine"],
    "optimization": ["--estimator", "optimization"],
    "adapter_on": ["--hand-adapter"],
}


def hand_errors(out: Path, gt: dict) -> list[dict]:
    """Per photo and hand: placement (depth, image plane) and shape errors in mm after the 11-point similarity."""
    anny = anny_points()
    rows = []
    for k, name in enumerate(str(n) for n in gt["image_names"]):
        stem = Path(name).stem
        result = json.loads((out / f"{stem}.json").read_text())
        people = result["people"]
        if not people:
            continue
        i = int(np.argmax([(p["box"][2] - p["box"][0]) * (p["box"][3] - p["box"][1]) for p in people]))
        ours = anny.points(np.load(out / f"{stem}.npz")["vertices"][i].astype(np.float64))
        truth = np.concatenate([gt["landmarks3d_cam_m"][k], gt["left_tips3d_cam_m"][k], gt["right_tips3d_cam_m"][k]])
        _, transform = similarity_align(ours[LANDMARKS], truth[LANDMARKS])
        aligned = apply_similarity(ours, transform)
        body_depth = truth[LANDMARKS, 2].mean()
        for side in HAND_SIDES:
            diff = aligned[TIPS[side]] - truth[TIPS[side]]
            centre = diff.mean(0)
            rows.append({
                "photo": stem, "side": side, "found": side in people[i]["hands"],
                "tips_mm": float(np.linalg.norm(diff, axis=1).mean() * 1000),
                "placement_mm": float(np.linalg.norm(centre) * 1000),
                "placement_depth_mm": float(abs(centre[2]) * 1000),
                "placement_signed_depth_mm": float(centre[2] * 1000),
                "placement_image_plane_mm": float(np.linalg.norm(centre[:2]) * 1000),
                "shape_mm": float(np.linalg.norm(diff - centre, axis=1).mean() * 1000),
                "true_hand_depth_from_body_mm": float((truth[TIPS[side], 2].mean() - body_depth) * 1000),
            })
    return rows


FIGURES = ("tips_mm", "placement_mm", "placement_depth_mm", "placement_image_plane_mm", "shape_mm")


def summarise(rows: list[dict]) -> dict:
    found = [r for r in rows if r["found"]]
    return {"hands": len(rows), "found": len(found),
            "all": {f: float(np.mean([r[f] for r in rows])) for f in FIGURES},
            "found_only": {f: float(np.mean([r[f] for r in found])) for f in FIGURES} if found else {}}


def table(summaries: dict[str, dict], commands: dict[str, str], machine_line: str) -> str:
    lines = ["# ehf_dev: where the fingertip error comes from (hand placement vs hand shape)", "",
             "Body-anchored: a similarity on the 11 face/foot landmarks, then each hand's 5 fingertips split into the "
             "error of their centroid (placement: along the camera's depth axis and in the image plane) and the error "
             "about the centroid (shape and orientation). Mean over hands, mm; `hmrkit run` with the true intrinsics.", "",
             "| run (`hmrkit run` arguments) | hands | fingertips | placement | placement, depth | placement, image plane | shape |",
             "|---|---|---|---|---|---|---|"]
    for name, s in summaries.items():
        for subset, key in (("all 40", "all"), (f"{s['found']} found", "found_only")):
            v = s[key]
            if v:
                lines.append(f"| {name} (`{commands[name] or 'defaults'}`) | {subset} | {v['tips_mm']:.1f} | "
                             f"{v['placement_mm']:.1f} | {v['placement_depth_mm']:.1f} | "
                             f"{v['placement_image_plane_mm']:.1f} | {v['shape_mm']:.1f} |")
    lines += ["", f"Machine: {machine_line}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", nargs="*", default=[], metavar="NAME=DIR",
                        help=f"score these `bench_ehf.py --out` folders (NAME one of {', '.join(CONFIGS)}) instead of running")
    args = parser.parse_args()
    if not (EHF / "annotations.npz").exists():
        print(f"skipped: {EHF} is absent (the ehf_dev development set)")
        return
    gt = dict(np.load(EHF / "annotations.npz"))
    reuse = dict(item.split("=", 1) for item in args.reuse)
    unknown = set(reuse) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"unknown run name(s) {', '.join(sorted(unknown))}: use {', '.join(CONFIGS)}")
    summaries, rows = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in CONFIGS.items():
            if reuse and name not in reuse:
                continue
            out = Path(reuse[name]) if name in reuse else Path(tmp) / name
            if name not in reuse:
                run_hmrkit(EHF / "images", out, gt["cam_fx_fy_cx_cy"].astype(np.float64), extra)
            rows[name] = hand_errors(out, gt)
            summaries[name] = summarise(rows[name])
    commands = {name: shlex.join(CONFIGS[name]) for name in summaries}
    machine_line = machine(with_load=True)
    payload = {"command": "python benchmarks/bench_ehf_depth.py", "code": code_version(), "machine": machine_line,
               "runs": {name: {"hmrkit_run_extra_args": CONFIGS[name], "summary": summaries[name], "hands": rows[name]}
                        for name in summaries}}
    write("ehf_depth", payload, table(summaries, commands, machine_line))


if __name__ == "__main__":
    main()
