"""Whole-body photos with hands: hmrkit run on ehf_dev, scored against the SMPL-X pseudo ground truth.

    python benchmarks/bench_ehf.py                       # -> results/ehf_default.json/.md
    python benchmarks/bench_ehf.py --label NAME -- EXTRA  # EXTRA goes to `hmrkit run` (e.g. --hand-refine 20)

hmrkit runs as users run it: ``hmrkit run`` in a subprocess on ../shared/data/ehf_dev/images (20 photos
of one person, 1600x1200) with the photos' true intrinsics (``--intrinsics``), default outputs into a
temporary folder (or ``--out``). The written JSON/NPZ (vertices in the camera frame) are then scored
(hmrkit.eval.whole_body): per photo the person with the largest box is taken.

- hands found (of 40), and how many of them sit on the wrong side (their fingertips nearer the other
  hand's true fingertips);
- fingertip 2D error (px): our fingertip is the Anny fingertip vertex of the written mesh, projected
  with the true intrinsics, on the hands found (also shown for the hands missed: the mesh's hand then
  holds the default finger pose);
- 3D after a similarity (Umeyama) alignment of all 21 points (11 face/foot landmarks + 10 fingertips):
  the fingertips' mean error, on the photos with both hands found, and on all photos (fingertips of the
  mesh whether or not its hands were found);
- the 11-point PA error (similarity on the 11 face/foot landmarks alone);
- mean distance from our mesh's vertices to the ground-truth surface after the 21-point alignment, whole
  body and hand vertices alone. The ground truth has vertices only (no faces): the surface is
  approximated by the nearest ground-truth vertex, which overestimates by up to about half the ground
  truth's mean nearest-neighbour vertex spacing (also reported);
- seconds per person: wall time of the whole `hmrkit run` (process start, model loading, all outputs)
  divided by the people scored, with the machine's load.

Our 11 landmarks are Anny's keypoints of the same names (anny_keypoints: Anny's own COCO and COCO-feet
regressors, weighted vertex sums); they are not the same surface points as SMPL-X's landmark vertices
(e.g. Anny's ear is a regressed point near the ear canal), which puts a floor under the 11-point error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DATA, ROOT, machine, write  # noqa: E402

from hmrkit.eval.whole_body import (  # noqa: E402
    FACE_FOOT_LANDMARKS,
    HAND_SIDES,
    anny_points,
    apply_similarity,
    nearest_surface_distance,
    project,
    similarity_align,
    vertex_spacing,
)

EHF = DATA / "ehf_dev"
LANDMARKS = slice(0, len(FACE_FOOT_LANDMARKS))
TIPS = {"left": slice(11, 16), "right": slice(16, 21)}


def code_version() -> str:
    """The commit measured, and the package files (hmrkit/) that differed from it: the run measures the working tree."""
    def git(*a: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True)
        return done.stdout.rstrip() if done.returncode == 0 else ""
    status = git("status", "--porcelain", "--untracked-files=no").splitlines()  # "XY path"
    changed = [line[3:] for line in status if line[3:].startswith("hmrkit/")]
    return (git("rev-parse", "--short", "HEAD") or "unknown") + (f" with changes to {', '.join(changed)}" if changed else "")


def run_hmrkit(images: Path, out: Path, intrinsics: np.ndarray, extra: list[str]) -> float:
    """``hmrkit run`` as a user would type it; returns its wall time in seconds."""
    cmd = [sys.executable, "-c", "import sys; from hmrkit.cli import console_main; sys.exit(console_main())", "run",
           str(images), "--out", str(out), "--overwrite", "--intrinsics", ",".join(f"{v:.6f}" for v in intrinsics), *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise SystemExit(f"hmrkit run failed (exit {done.returncode}): {last}")
    return wall


def score_photo(result: dict, arrays, gt: dict, k: int, cam: np.ndarray) -> dict | None:
    """Every figure of one photo; None when nobody was found."""
    people = result["people"]
    if not people:
        return None
    box_area = [(p["box"][2] - p["box"][0]) * (p["box"][3] - p["box"][1]) for p in people]
    i = int(np.argmax(box_area))
    person, vertices = people[i], arrays["vertices"][i].astype(np.float64)
    anny = anny_points()
    ours = anny.points(vertices)  # (21, 3)
    truth = np.concatenate([gt["landmarks3d_cam_m"][k], gt["left_tips3d_cam_m"][k], gt["right_tips3d_cam_m"][k]])
    truth2d = {s: gt[f"{s}_tips2d_px"][k] for s in HAND_SIDES}
    found = {s: s in person["hands"] for s in HAND_SIDES}
    tips2d = {s: project(ours[TIPS[s]], *cam) for s in HAND_SIDES}
    px = {s: float(np.linalg.norm(tips2d[s] - truth2d[s], axis=1).mean()) for s in HAND_SIDES}
    other = {s: float(np.linalg.norm(tips2d[s] - truth2d["right" if s == "left" else "left"], axis=1).mean())
             for s in HAND_SIDES}
    aligned, transform = similarity_align(ours, truth)
    error = np.linalg.norm(aligned - truth, axis=1)
    pa11, _ = similarity_align(ours[LANDMARKS], truth[LANDMARKS])
    mesh = apply_similarity(vertices, transform)
    to_surface = nearest_surface_distance(mesh, gt["vertices_cam_m"][k])
    return {
        "image": result["source"],
        "people_found": len(people),
        "hands_found": found,
        "hand_confidence": {s: person["hands"][s]["confidence"] for s in HAND_SIDES if found[s]},
        "hand_on_wrong_side": {s: found[s] and other[s] < px[s] for s in HAND_SIDES},
        "fingertip_px": px,
        "fingertip_mm_21pt": {s: float(error[TIPS[s]].mean() * 1000) for s in HAND_SIDES},
        "landmark_mm_21pt": float(error[LANDMARKS].mean() * 1000),
        "pa11_mm": float(np.linalg.norm(pa11 - truth[LANDMARKS], axis=1).mean() * 1000),
        "surface_mm": float(to_surface.mean() * 1000),
        "hand_surface_mm": float(to_surface[anny.hand_vertices].mean() * 1000),
        "timings_ms": result.get("timings_ms", {}),
    }


def summarise(frames: list[dict], n_photos: int) -> dict:
    """The headline figures over the photos' scores."""
    hands = [(f, s) for f in frames for s in HAND_SIDES]
    found = [(f, s) for f, s in hands if f["hands_found"][s]]
    missed = [(f, s) for f, s in hands if not f["hands_found"][s]]
    both = [f for f in frames if all(f["hands_found"].values())]
    mean = lambda xs: round(float(np.mean(xs)), 1) if xs else None  # noqa: E731
    return {
        "photos": n_photos,
        "people_scored": len(frames),
        "hands_found": len(found),
        "hands_total": 2 * n_photos,
        "hands_found_on_wrong_side": sum(f["hand_on_wrong_side"][s] for f, s in found),
        "fingertip_px_found": mean([f["fingertip_px"][s] for f, s in found]),
        "fingertip_px_missed": mean([f["fingertip_px"][s] for f, s in missed]),
        "photos_both_hands_found": len(both),
        "fingertip_mm_21pt_both_found": mean([f["fingertip_mm_21pt"][s] for f in both for s in HAND_SIDES]),
        "fingertip_mm_21pt_all": mean([f["fingertip_mm_21pt"][s] for f, s in hands]),
        "fingertip_mm_21pt_found_hands": mean([f["fingertip_mm_21pt"][s] for f, s in found]),
        "landmark_mm_21pt_all": mean([f["landmark_mm_21pt"] for f in frames]),
        "pa11_mm": mean([f["pa11_mm"] for f in frames]),
        "surface_mm": mean([f["surface_mm"] for f in frames]),
        "hand_surface_mm": mean([f["hand_surface_mm"] for f in frames]),
    }


def table(label: str, s: dict, spacing_mm: float, extra: list[str], wall: float | None, machine_line: str) -> str:
    rows = [
        ("hands found", f"{s['hands_found']} / {s['hands_total']} ({s['hands_found_on_wrong_side']} on the wrong side)"),
        ("fingertip 2D error, hands found (px)", s["fingertip_px_found"]),
        ("fingertip 2D error, hands missed: the mesh's default hand (px)", s["fingertip_px_missed"]),
        (f"fingertips 3D after 21-pt similarity, photos with both hands found ({s['photos_both_hands_found']}) (mm)",
         s["fingertip_mm_21pt_both_found"]),
        (f"fingertips 3D after 21-pt similarity, all {s['people_scored']} photos, whatever hands (mm)",
         s["fingertip_mm_21pt_all"]),
        ("fingertips 3D after 21-pt similarity, hands found only (mm)", s["fingertip_mm_21pt_found_hands"]),
        ("11 face/foot landmarks after the 21-pt similarity (mm)", s["landmark_mm_21pt_all"]),
        ("11-point PA error (mm)", s["pa11_mm"]),
        ("mesh vertices to GT surface (nearest GT vertex) after 21-pt similarity, whole body (mm)", s["surface_mm"]),
        ("the same, hand vertices alone (mm)", s["hand_surface_mm"]),
        ("GT mean nearest-neighbour vertex spacing (bound on the nearest-vertex overestimate) (mm)", round(spacing_mm, 1)),
        ("seconds per person, whole `hmrkit run` wall time", "n/a (reused outputs)" if wall is None else
         round(wall / max(s["people_scored"], 1), 2)),
    ]
    lines = [f"# ehf_dev whole-body benchmark: {label}", "",
             f"`python benchmarks/bench_ehf.py --label {label}" + (" -- " + " ".join(extra) if extra else "") + "`",
             f"(`hmrkit run` on the {s['photos']} photos of ../shared/data/ehf_dev with their true intrinsics; "
             "see the script's docstring for each figure's definition).", "",
             "| figure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", f"Code: {code_version()}. Machine: {machine_line}.", ""]
    return "\n".join(lines)


def main() -> None:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="default", help="results file benchmarks/results/ehf_<label>.json/.md")
    parser.add_argument("--out", type=Path, default=None, help="keep hmrkit's outputs here (default: a temporary folder)")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="score the outputs already in this folder instead of running hmrkit (no timing; not written as results)")
    args = parser.parse_args(argv)
    if not (EHF / "annotations.npz").exists():
        print(f"skipped: {EHF} is absent (the ehf_dev development set)")
        return
    gt = dict(np.load(EHF / "annotations.npz"))
    cam = gt["cam_fx_fy_cx_cy"].astype(np.float64)
    names = [str(n) for n in gt["image_names"]]
    wall = None
    with tempfile.TemporaryDirectory() as tmp:
        out = args.reuse or args.out or Path(tmp)
        load_before = os.getloadavg()[0]
        if args.reuse is None:
            wall = run_hmrkit(EHF / "images", out, cam, extra)
        frames = []
        for k, name in enumerate(names):
            stem = Path(name).stem
            json_path, npz_path = out / f"{stem}.json", out / f"{stem}.npz"
            if not json_path.exists() or not npz_path.exists():
                raise SystemExit(f"no results for {name} in {out}")
            frame = score_photo(json.loads(json_path.read_text()), np.load(npz_path), gt, k, cam)
            if frame is not None:
                frames.append(frame)
    summary = summarise(frames, len(names))
    spacing = float(np.mean([vertex_spacing(v) for v in gt["vertices_cam_m"]]) * 1000)
    machine_line = machine(with_load=True) + f"; load {load_before:.1f} at the start"
    text = table(args.label, summary, spacing, extra, wall, machine_line)
    if args.reuse is not None:
        print(text)
        return
    payload = {"label": args.label, "command": " ".join(["python benchmarks/bench_ehf.py", "--label", args.label]
                                                       + (["--", *extra] if extra else [])),
               "hmrkit_run_extra_args": extra, "code": code_version(), "machine": machine_line, "wall_s": round(wall, 2),
               "seconds_per_person": round(wall / max(len(frames), 1), 2),
               "gt_vertex_spacing_mm": round(spacing, 2),
               "surface_distance": "nearest ground-truth vertex (cKDTree): the GT has no faces; overestimates the "
                                   "point-to-surface distance by up to about half the GT vertex spacing",
               "alignment": "Umeyama similarity on 21 points (11 face/foot landmarks + 10 fingertips), also used for "
                            "the mesh distance; pa11: similarity on the 11 landmarks alone",
               "summary": summary, "frames": frames}
    write(f"ehf_{args.label}", payload, text)


if __name__ == "__main__":
    main()
