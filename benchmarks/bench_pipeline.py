"""Pipeline benchmarks: latency per stage on the demo photos, and 2D accuracy (PCK) on real photos.

    python benchmarks/bench_pipeline.py latency
    python benchmarks/bench_pipeline.py batch     # `hmrkit run` on all demo photos, files written
    python benchmarks/bench_pipeline.py startup   # `hmrkit run` on one photo from a fresh process, by phase
    python benchmarks/bench_pipeline.py video     # `hmrkit run` on the sample video's first 60 frames, files written
    python benchmarks/bench_pipeline.py pck --dataset lsp  [--limit N]
    python benchmarks/bench_pipeline.py pck --dataset coco

PCK compares, on the same images and the same matched person, MediaPipe's raw landmarks and
the fitted mesh's projected joints against the labels. A labelled joint counts as correct
when it lies within alpha x torso (distance from the left shoulder to the right hip label,
the usual LSP convention); people whose torso labels are missing are left out; a labelled
person hmrkit did not find counts as wrong on every joint, for both columns.
*batch*: the demo photos through ``hmrkit run`` with every output file (JSON, NPZ, GLB, overlay
PNG) in one process after a warm-up photo, against the same photos one at a time (read, run,
write: no look-ahead) and the overlays' PNG encoding at PIL's default zlib level; 'repeats'
alternating passes, the median kept.
*video*: ``hmrkit run`` on the sample video's first frames with every output file, and with only
the JSON and the overlay video; runs alternate, the median kept.
*startup*: what a user waits for ``hmrkit run photo.jpg``: a fresh process's wall time, and the
same work split into phases (imports, model loading, the first run, writing), each measured in
fresh processes too.
Results: benchmarks/results/pipeline_latency.{json,md}, pipeline_pck_<dataset>.{json,md},
pipeline_batch.{json,md}, pipeline_startup.{json,md}, pipeline_video.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from bench_common import DATA, DEMO_PHOTOS, ROOT, machine, write  # the script's own folder

sys.path.insert(0, str(ROOT))

from hmrkit.body.anny_keypoints import anny_keypoint_map  # noqa: E402
from hmrkit.body.conventions import COCO17, LSP14, MEDIAPIPE33, Convention  # noqa: E402
from hmrkit.fitting.body_fit import BodyFit  # noqa: E402
from hmrkit.fitting.targets import FIT_KEYPOINTS  # noqa: E402
from hmrkit.geometry.cameras import PerspectiveCamera, perspective_project  # noqa: E402
from hmrkit.io.images import load_image  # noqa: E402
from hmrkit.pipeline import Pipeline, PipelineConfig  # noqa: E402
from hmrkit.writers import render_result_overlay  # noqa: E402

LIMBS = tuple(f"{s}_{j}" for s in ("left", "right") for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"))


# -- batch ---------------------------------------------------------------------------------------
def batch(args) -> None:
    import io
    import statistics
    import tempfile
    from pathlib import Path

    from PIL import Image

    from hmrkit.cli import main as hmrkit_main
    from hmrkit.writers import OutputOptions, write_result

    images = DEMO_PHOTOS
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        assert hmrkit_main(["run", str(images[0]), "--out", str(out / "warm")]) == 0  # files into the OS cache, numba

        def command() -> float:
            start = time.perf_counter()
            assert hmrkit_main(["run", *map(str, images), "--out", str(out / "cli"), "--overwrite"]) == 0
            return time.perf_counter() - start

        def one_at_a_time() -> tuple[float, int, list]:
            start, people, overlays = time.perf_counter(), 0, []
            pipeline = Pipeline(make_config(args))  # as `hmrkit run` makes its own
            (out / "serial").mkdir(exist_ok=True)
            for path in images:
                loaded = load_image(path)
                result = pipeline.run(loaded, str(path))
                people += len(result.people)
                write_result(result, loaded.rgb, out / "serial", path.stem, OutputOptions(overwrite=True))
                overlays.append(out / "serial" / f"{path.stem}_overlay.png")
            pipeline.close()
            return time.perf_counter() - start, people, overlays

        runs_cli, runs_serial = [], []
        for _ in range(args.repeats):
            runs_cli.append(command())
            seconds, people, overlays = one_at_a_time()
            runs_serial.append(seconds)
        pictures = [np.asarray(Image.open(p).convert("RGB")) for p in overlays if p.exists()]
        encode = {}
        for level in (6, 1):
            start = time.perf_counter()
            for picture in pictures:
                Image.fromarray(picture).save(io.BytesIO(), format="PNG", compress_level=level)
            encode[level] = (time.perf_counter() - start) * 1000 / len(pictures)
    cli_s, serial_s = statistics.median(runs_cli), statistics.median(runs_serial)
    payload = {"machine": machine(with_load=True), "command": f"python benchmarks/bench_pipeline.py batch --repeats {args.repeats}",
               "photos": len(images), "people": people, "hmrkit_run_seconds": runs_cli, "one_at_a_time_seconds": runs_serial,
               "png_ms_per_overlay": {"zlib_6_pil_default": encode[6], "zlib_1_hmrkit": encode[1]}}
    lines = ["# Photo batches: `hmrkit run` on the demo photos, every file written", "",
             f"Machine: {payload['machine']}. Command: `{payload['command']}`. {len(images)} photos, {people} people; "
             "outputs JSON, NPZ, GLB and the overlay PNG; each way makes its pipeline (models and MediaPipe graphs) in the "
             "timed span, after a warm-up run of the command on one photo.", "",
             "| how | seconds (median) | ms per photo | ms per person |", "|---|---|---|---|",
             f"| `hmrkit run` (the next photo read and detected while this one is fitted and written; overlays at zlib level 1) | "
             f"{cli_s:.1f} | {cli_s * 1000 / len(images):.0f} | {cli_s * 1000 / people:.0f} |",
             f"| one at a time (read, run, write) | {serial_s:.1f} | {serial_s * 1000 / len(images):.0f} | {serial_s * 1000 / people:.0f} |",
             "", f"Overlay PNG encoding, mean over the {len(pictures)} overlays: {encode[6]:.0f} ms at PIL's default zlib level 6, "
             f"{encode[1]:.0f} ms at level 1 (hmrkit's)."]
    write("pipeline_batch", payload, "\n".join(lines) + "\n")


# -- video -------------------------------------------------------------------------------------
def video(args) -> None:
    """`hmrkit run` on the sample video's first frames, every file written, and with only the JSON
    and the overlay video: what a user waits for per frame."""
    import statistics
    import tempfile

    from hmrkit.cli import main as hmrkit_main

    clip = DATA / "demo_images" / "sample_video.mp4"
    ways = {"every file (per frame JSON, NPZ, GLB; the overlay video)": [],
            "JSON and the overlay video only (`--no-npz --mesh-format none`)": ["--no-npz", "--mesh-format", "none"]}
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    with tempfile.TemporaryDirectory() as folder:
        assert hmrkit_main(["run", str(clip), "--out", folder, "--max-frames", "5", "--overwrite"]) == 0  # warm-up
        for _ in range(args.repeats):
            for way, extra in ways.items():
                start = time.perf_counter()
                assert hmrkit_main(["run", str(clip), "--out", folder, "--max-frames", str(args.frames), "--overwrite", *extra]) == 0
                seconds[way].append(time.perf_counter() - start)
    payload = {"machine": machine(with_load=True),
               "command": f"python benchmarks/bench_pipeline.py video --frames {args.frames} --repeats {args.repeats}",
               "video": clip.name, "frames": args.frames, "seconds": seconds}
    lines = ["# `hmrkit run` on a video, files written", "",
             f"Machine: {payload['machine']}. Command: `{payload['command']}`. The first {args.frames} frames of {clip.name} "
             "(1280 x 720, 3-4 people a frame), in one process after a warm-up run; each run makes its pipeline; runs "
             "alternate, the median kept.", "",
             "| outputs | seconds | ms per frame | frames per second |", "|---|---|---|---|"]
    for way, values in seconds.items():
        median = statistics.median(values)
        lines.append(f"| {way} | {median:.1f} | {median * 1000 / args.frames:.0f} | {args.frames / median:.1f} |")
    write("pipeline_video", payload, "\n".join(lines) + "\n")


# -- startup -----------------------------------------------------------------------------------
_PHASES = """
import sys, tempfile, time
from pathlib import Path
marks = [("start", time.perf_counter())]
import torch
marks.append(("import torch", time.perf_counter()))
import hmrkit.cli
from hmrkit.io.images import load_image
from hmrkit.pipeline import Pipeline
from hmrkit.writers import OutputOptions, write_result
marks.append(("import hmrkit (cv2, numba, its modules)", time.perf_counter()))
pipeline = Pipeline()
marks.append(("Pipeline(): models loaded", time.perf_counter()))
loaded = load_image(sys.argv[1])
result = pipeline.run(loaded, sys.argv[1])
marks.append(("first run() (MediaPipe imported and its graphs made, numba kernels loaded, BPAC-Net, fit)", time.perf_counter()))
with tempfile.TemporaryDirectory() as out:
    write_result(result, loaded.rgb, Path(out), "photo", OutputOptions(overwrite=True))
marks.append(("files written (JSON, NPZ, GLB, overlay PNG)", time.perf_counter()))
for (_, a), (name, b) in zip(marks, marks[1:]):
    print("phase", (b - a) * 1000, name, sep="\t")
left_out = [m for m in ("roma", "torch._dynamo", "matplotlib", "trimesh") if m in sys.modules]
print("loaded", ",".join(left_out) or "-", sep="\t")
for name, statement in (("trimesh", "import trimesh"), ("roma", "import roma")):
    start = time.perf_counter()
    exec(statement)  # what hmrkit no longer imports, timed after everything above is loaded
    print("after", name, (time.perf_counter() - start) * 1000, sep="\t")
"""

# fresh interpreters doing only part of the work: what no change to hmrkit can go below
_FLOORS = {
    "python -c pass (the interpreter)": "pass",
    "import torch": "import torch",
    "import torch, numpy, cv2, numba + MediaPipe's solutions (as hmrkit imports them)":
        "import torch, numpy, cv2, numba; from hmrkit.light_import import import_module_lightly; "
        "[import_module_lightly(f'mediapipe.python.solutions.{n}') for n in ('pose', 'hands', 'face_detection')]",
    "import torch + roma (what hmrkit imported before)": "import torch, roma",
    "import mediapipe (its __init__: matplotlib, audio tasks)": "import mediapipe",
}


def startup(args) -> None:
    """`hmrkit run` on one photo in a fresh process, as a user types it: wall time, its phases, and
    the floors (fresh interpreters that only import what any run needs)."""
    import statistics
    import subprocess
    import tempfile
    from pathlib import Path

    photo = DATA / "demo_images" / "astronaut.png"
    arguments = ["run", str(photo), "--overwrite", "--out"]
    ways = {"quick exit": [sys.executable, "-m", "hmrkit.cli"],  # as the `hmrkit` command ends (cli.console_main)
            "interpreter shutdown": [sys.executable, "-c", "import sys; from hmrkit.cli import main; sys.exit(main())"]}
    walls, phases, after, floors, loaded = {way: [] for way in ways}, {}, {}, {name: [] for name in _FLOORS}, set()
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as old:
        where = {way: ROOT for way in ways}
        if args.baseline:  # the same command on hmrkit as of an earlier commit, alternating with this one
            archive = subprocess.run(["git", "archive", args.baseline, "hmrkit"], check=True, capture_output=True, cwd=ROOT).stdout
            subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
            ways[f"baseline {args.baseline}"], where[f"baseline {args.baseline}"] = ways["quick exit"], Path(old)
            walls[f"baseline {args.baseline}"] = []
        for way in ways:  # warm-up: OS file cache, numba cache
            subprocess.run(ways[way] + arguments + [out], check=True, capture_output=True, cwd=where[way])
        for _ in range(args.repeats):
            for way, command in ways.items():
                start = time.perf_counter()
                subprocess.run(command + arguments + [out], check=True, capture_output=True, cwd=where[way])
                walls[way].append(time.perf_counter() - start)
            for name, code in _FLOORS.items():
                start = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=ROOT)
                floors[name].append(time.perf_counter() - start)
            lines = subprocess.run([sys.executable, "-c", _PHASES, str(photo)], check=True, capture_output=True, text=True,
                                   cwd=ROOT).stdout.splitlines()
            for line in lines:
                fields = line.split("\t")
                if fields[0] == "phase":
                    phases.setdefault(fields[2], []).append(float(fields[1]))
                elif fields[0] == "after":
                    after.setdefault(fields[1], []).append(float(fields[2]))
                elif fields[0] == "loaded" and fields[1] != "-":
                    loaded.update(fields[1].split(","))
    medians = {name: statistics.median(values) for name, values in phases.items()}
    run_s = statistics.median(walls["quick exit"])
    payload = {"machine": machine(with_load=True), "command": f"python benchmarks/bench_pipeline.py startup --repeats {args.repeats}"
               + (f" --baseline {args.baseline}" if args.baseline else ""), "photo": photo.name, "hmrkit_run_seconds": walls, "phases_ms": phases, "floors_seconds": floors,
               "import_after_phases_ms": after, "heavy_modules_loaded_by_the_run": sorted(loaded)}
    lines = ["# `hmrkit run` on one photo, from a fresh process", "",
             f"Machine: {payload['machine']}. Command: `{payload['command']}`. Photo: {photo.name} (one person), every output "
             "file written; after one warm-up run (the OS file cache and numba's kernel cache filled).", "",
             f"`python -m hmrkit.cli run {photo.name}` (what the `hmrkit` command runs): {run_s:.2f} s "
             f"wall (median of {args.repeats}); the same ending with the interpreter's normal shutdown (unloading torch's and "
             f"MediaPipe's modules): {statistics.median(walls['interpreter shutdown']):.2f} s (runs alternate)."
             + "".join(f" The same command on hmrkit as of {way.split()[1]} (before this start-up work; its files extracted with "
                       f"git archive, runs alternating with the above, same load): {statistics.median(v):.2f} s."
                       for way, v in walls.items() if way.startswith("baseline")), "",
             "The same work in phases, each in a fresh process (median ms):", "", "| phase | ms |", "|---|---|"]
    lines += [f"| {name} | {ms:.0f} |" for name, ms in medians.items()]
    lines += [f"| sum | {sum(medians.values()):.0f} |", "",
              "Floors: fresh interpreters that only import, wall time from the same runs (median s); `hmrkit run` cannot "
              "start faster than the third row, whatever hmrkit does, as long as it runs torch and MediaPipe:", "",
              "| fresh process | s |", "|---|---|"]
    lines += [f"| `{name}` | {statistics.median(values):.2f} |" for name, values in floors.items()]
    lines += ["", "Left out of `hmrkit run` (modules loaded by the run of a photo among roma, torch._dynamo, matplotlib, "
              f"trimesh: {', '.join(sorted(loaded)) or 'none'}); what importing them would add after the run's own imports "
              "(median ms, the same processes): " + ", ".join(f"{name} {statistics.median(v):.0f}" for name, v in after.items()) + ". "
              "roma 1.8.0 loads torch._dynamo when imported (hmrkit.geometry.rotations and .procrustes now compute its "
              "conversions themselves; Anny's phenotype table is read without anny's __init__, which imports roma); "
              "mediapipe's __init__ loads matplotlib for its drawing utilities and its audio tasks (hmrkit.light_import "
              "imports the three solutions it uses without it); trimesh is loaded only for --mesh-format obj or ply."]
    write("pipeline_startup", payload, "\n".join(lines) + "\n")


# -- latency -----------------------------------------------------------------------------------
def latency(args) -> None:
    images = DEMO_PHOTOS
    pipeline = Pipeline(make_config(args))
    first = load_image(images[0])
    render_result_overlay(pipeline.run(first), first.rgb)  # warm-up: graphs, numba cache, renderer
    rows = []
    for path in images:
        loaded = load_image(path)
        runs = []
        for _ in range(args.repeats):  # the run with the median total is kept (shared machines are noisy)
            start = time.perf_counter()
            result = pipeline.run(loaded, str(path))
            t_render = time.perf_counter()
            render_result_overlay(result, loaded.rgb)
            end = time.perf_counter()
            n = len(result.people)
            hands = sum(len(p.hands) for p in result.people)
            runs.append({"image": path.name, "size": list(loaded.rgb.shape[1::-1]), "people": n, "hand_count": hands,
                         **{k: round(v, 1) for k, v in result.timings_ms.items()},
                         "render": round((end - t_render) * 1000, 1), "total": round((end - start) * 1000, 1)})
        row = sorted(runs, key=lambda r: r["total"])[len(runs) // 2]
        rows.append(row)
        print(row, flush=True)
    with_people = [r for r in rows if r["people"]]
    per_person = {k: float(np.sum([r.get(k, 0) for r in with_people]) / max(1, sum(r["people"] for r in with_people)))
                  for k in ("perception", "hands", "fit", "mesh", "render", "total")}
    alone = [r for r in rows if r["people"] == 1]
    one_person = {k: float(np.median([r.get(k, 0) for r in alone])) for k in ("perception", "hands", "fit", "mesh", "render", "total")}
    payload = {"machine": machine(with_load=True), "command": f"python benchmarks/bench_pipeline.py{flags(args)} latency", "images": rows,
               "repeats": args.repeats, "per_person_ms": per_person, "one_person_photos_median_ms": one_person}
    lines = [f"# Pipeline latency ({describe(args)})", "", f"Machine: {machine(with_load=True)}. Demo photos in `../shared/data/demo_images`; "
             f"one warm-up image first; each photo run {args.repeats} times, the run with the median total shown; times in ms; "
             "'total' = perception + hand IK + fit + mesh + overlay rendering.", "",
             "| image | px | people | hands found | perception | hand IK | fit | mesh | render | total |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['image']} | {r['size'][0]}x{r['size'][1]} | {r['people']} | {r['hand_count']} | {r.get('perception', 0)} | {r.get('hands', 0)} | "
                     f"{r.get('fit', 0)} | {r.get('mesh', 0)} | {r['render']} | {r['total']} |")
    lines += ["", "Per person (sum over images with people / number of people): " +
              ", ".join(f"{k} {v:.0f} ms" for k, v in per_person.items()), "",
              f"Photos of one person ({len(alone)}), medians: " + ", ".join(f"{k} {v:.0f} ms" for k, v in one_person.items()), ""]
    write(f"pipeline_latency{suffix(args)}", payload, "\n".join(lines))


# -- PCK ---------------------------------------------------------------------------------------
def load_lsp(limit: int | None):
    d = np.load(DATA / "lspet_dev" / "joints.npz")
    names = [str(n) for n in d["joint_names"]]
    assert tuple(names) == LSP14.names, names
    items = []
    for i, name in enumerate(d["image_names"][:limit]):
        joints = d["joints"][i]
        labelled = (joints[:, 2] > 0) & (joints[:, 0] > 0) & (joints[:, 1] > 0)
        items.append((DATA / "lspet_dev" / "images" / str(name), [(joints[:, :2], labelled)]))
    return LSP14, items


def load_coco(limit: int | None):
    meta = json.loads((DATA / "coco_mini_dev" / "person_keypoints_train2017.json").read_text())
    by_image: dict[int, list] = {}
    for a in meta["annotations"]:
        if a["num_keypoints"] > 0 and not a.get("iscrowd"):
            k = np.array(a["keypoints"], np.float32).reshape(17, 3)
            by_image.setdefault(a["image_id"], []).append((k[:, :2], k[:, 2] > 0))
    files = {im["id"]: im["file_name"] for im in meta["images"]}
    items = [(DATA / "coco_mini_dev" / "images" / files[i], people) for i, people in sorted(by_image.items())]
    return COCO17, items[:limit]


def torso(points: np.ndarray, labelled: np.ndarray, conv: Convention) -> float:
    a, b = conv.index("left_shoulder"), conv.index("right_hip")
    return float(np.linalg.norm(points[a] - points[b])) if labelled[a] and labelled[b] else 0.0


@dataclass
class LabelledPerson:
    """A labelled person of a PCK data set (torso labels present) and what hmrkit made of them."""

    image: int  # index of the photo in the data set
    gt: np.ndarray  # (N, 2) labels in original pixels, convention order
    labelled: np.ndarray  # (N,) bool
    torso: float  # pixels
    fit: BodyFit | None = None  # the image's fit; None when nobody matched this person
    index: int = -1  # the matched person in ``fit``
    camera: PerspectiveCamera | None = None
    scale: float = 1.0  # loaded / original pixels
    mediapipe: np.ndarray | None = None  # (N, 2) MediaPipe's landmarks named as ``gt`` (inf where it has none)

    def project(self, points: torch.Tensor) -> np.ndarray:
        """Camera-frame points of this person -> original pixels."""
        return (perspective_project(points, self.camera).numpy() + 0.5) / self.scale - 0.5

    def keypoints2d(self, model, kmap) -> np.ndarray:
        """(K, 2) this person's fitted mesh keypoints of ``kmap``, original pixels."""
        fit, i = self.fit, self.index
        with torch.no_grad():
            out = model(fit.rotations[i : i + 1], fit.shape[i : i + 1], fit.translation[i : i + 1], with_vertices=False,
                        keypoints=kmap, scales=None if fit.scales is None else fit.scales[i : i + 1])
        return self.project(out.keypoints)[0]


def labelled_people(pipeline: Pipeline, conv: Convention, items, progress: bool = True):
    """Run ``pipeline`` on each image of ``items`` and yield every labelled person (see :func:`match_labels`)."""
    start = time.time()
    for n_img, (path, labels) in enumerate(items):
        loaded = load_image(path)
        result, fit = pipeline.run_with_fit(loaded, str(path))
        yield from match_labels(n_img, labels, conv, result, fit, pipeline.camera(loaded.rgb.shape[1], loaded.rgb.shape[0]), loaded.scale)
        if progress and (n_img + 1) % 50 == 0:
            print(f"{n_img + 1}/{len(items)} images, {time.time() - start:.0f} s", flush=True)


def match_labels(n_img: int, labels, conv: Convention, result, fit: BodyFit | None, camera: PerspectiveCamera,
                 scale: float) -> list[LabelledPerson]:
    """Every labelled person of photo ``n_img`` (torso labels present), matched to the found
    person whose MediaPipe landmarks lie nearest their labels (mean distance under one torso,
    each found person matched once)."""
    mp_index = [MEDIAPIPE33.index(n) if n in MEDIAPIPE33.names else -1 for n in conv.names]
    has_mp = np.array(mp_index) >= 0
    mp2d = None if fit is None else (np.stack([d.body.xy for d in result.detections]) + 0.5) / scale - 0.5
    used: set[int] = set()
    people = []
    for gt, labelled in labels:
        size = torso(gt, labelled, conv)
        if size <= 0:
            continue
        person = LabelledPerson(n_img, gt, labelled, size)
        best = None
        for i in range(0 if mp2d is None else len(mp2d)):
            if i in used:
                continue
            ok = labelled & has_mp
            d = np.mean(np.linalg.norm(mp2d[i, np.array(mp_index)[ok]] - gt[ok], axis=1)) / size
            if d < 1.0 and (best is None or d < best[1]):
                best = (i, d)
        if best is not None:
            used.add(best[0])
            named = np.array([mp2d[best[0], j] if j >= 0 else [np.inf, np.inf] for j in mp_index])
            person = LabelledPerson(n_img, gt, labelled, size, fit, best[0], camera, scale, named)
        people.append(person)
    return people


def pck(args) -> None:
    conv, items = (load_lsp if args.dataset == "lsp" else load_coco)(args.limit)
    pipeline = Pipeline(make_config(args, with_vertices=False))
    maps = {"mesh": anny_keypoint_map(pipeline.model, conv), "mesh_fitted": pipeline.fit_keypoints}
    fitted = np.array([n in FIT_KEYPOINTS.names for n in conv.names])
    fitted_index = [FIT_KEYPOINTS.index(n) if n in FIT_KEYPOINTS.names else 0 for n in conv.names]
    alphas = (0.1, 0.2)
    methods = ("mediapipe", "mesh", "mesh_fitted")
    # per photo parity: the LSP hips were calibrated on the even photos (calib_lsp_hips.py)
    correct = {m: {a: np.zeros((2, len(conv))) for a in alphas} for m in methods}
    counted = np.zeros((2, len(conv)))
    people_total = people_found = 0
    start = time.time()
    for person in labelled_people(pipeline, conv, items):
        people_total += 1
        parity = person.image % 2
        counted[parity] += person.labelled
        if person.fit is None:
            continue
        people_found += 1
        points = {m: person.keypoints2d(pipeline.model, kmap) for m, kmap in maps.items()}
        points["mesh_fitted"] = np.where(fitted[:, None], points["mesh_fitted"][fitted_index], np.inf)
        points["mediapipe"] = person.mediapipe
        for m in methods:
            for a in alphas:
                correct[m][a][parity] += person.labelled & (np.linalg.norm(points[m] - person.gt, axis=1) <= a * person.torso)
    limbs = [conv.index(n) for n in LIMBS]
    extra = [j for j, n in enumerate(conv.names) if MEDIAPIPE33.names.count(n) == 0]

    def rate(method: str, a: float, joints: list[int], parities=(0, 1)) -> float:
        hits = correct[method][a][list(parities)].sum(0)
        return float(hits[joints].sum() / max(counted[list(parities)].sum(0)[joints].sum(), 1))

    def per_joint(method: str, a: float) -> dict[str, float]:
        hits, total = correct[method][a].sum(0), counted.sum(0)
        return {n: float(hits[j] / max(total[j], 1)) for j, n in enumerate(conv.names)}

    summary = {
        m: {f"pck@{a}": {"limbs12": rate(m, a, limbs), "limbs12_odd_photos": rate(m, a, limbs, (1,)),
                         **({"others": rate(m, a, extra)} if m == "mesh" and extra else {}), "per_joint": per_joint(m, a)}
            for a in alphas}
        for m in methods
    }
    payload = {"machine": machine(with_load=True), "dataset": args.dataset, "images": len(items), "people_labelled": people_total,
               "people_found": people_found, "command": f"python benchmarks/bench_pipeline.py{flags(args)} pck --dataset {args.dataset}"
               + (f" --limit {args.limit}" if args.limit else ""), "seconds": round(time.time() - start), "results": summary}
    other_names = ", ".join(conv.names[j] for j in extra)
    odd = args.dataset == "lsp"
    lines = [f"# PCK on {args.dataset}, {describe(args)} ({len(items)} images, {people_total} labelled people, {people_found} found)", "",
             f"Machine: {machine(with_load=True)}. Torso-normalized (left shoulder to right hip), labelled joints only; missed people count as wrong.", "",
             "| method | PCK@0.1 (12 limb joints) | PCK@0.2 (12 limb joints) |" + (" odd photos only: @0.1 | @0.2 |" if odd else "")
             + (f" PCK@0.1 ({other_names}) | PCK@0.2 |" if extra else ""),
             "|---|---|---|" + ("---|---|" if odd else "") + ("---|---|" if extra else "")]
    labels = (("mediapipe", "MediaPipe raw landmarks"),
              ("mesh_fitted", "hmrkit mesh, the points fitted to MediaPipe's landmarks"),
              ("mesh", f"hmrkit mesh, {conv.name} joints (projected)"))
    for m, label in labels:
        row = f"| {label} | {summary[m]['pck@0.1']['limbs12']:.3f} | {summary[m]['pck@0.2']['limbs12']:.3f} |"
        if odd:
            row += f" {summary[m]['pck@0.1']['limbs12_odd_photos']:.3f} | {summary[m]['pck@0.2']['limbs12_odd_photos']:.3f} |"
        if extra:
            row += (f" {summary[m]['pck@0.1']['others']:.3f} | {summary[m]['pck@0.2']['others']:.3f} |" if m == "mesh" else " n/a | n/a |")
        lines.append(row)
    lines += ["", "The fitted points are the mesh's MediaPipe-convention keypoints; the projected joints are the mesh's own "
              f"{conv.name} joints" + (" (the hips: a point calibrated to LSP's labels on the even photos, "
              "`benchmarks/calib_lsp_hips.py`; 'odd photos only' leaves those out)" if odd else "") + ".",
              "", f"Command: `{payload['command']}` ({payload['seconds']} s).", ""]
    write(f"pipeline_pck_{args.dataset}{suffix(args)}", payload, "\n".join(lines))


def make_config(args, with_vertices: bool = True) -> PipelineConfig:
    chosen = {} if args.estimator == "hkmr" else {"estimator": None}  # HKMR is PipelineConfig's default
    return PipelineConfig(with_vertices=with_vertices, refine=not args.no_refine, **chosen)


def describe(args) -> str:
    if args.estimator == "hkmr":
        return "HKMR regressor" + (" alone" if args.no_refine else f" + refinement {PipelineConfig.refine_iterations}")
    return "optimization-only body fit"


def flags(args) -> str:
    return (" --estimator optimization" if args.estimator == "optimization" else "") + (" --no-refine" if args.no_refine else "")


def suffix(args) -> str:
    limit = getattr(args, "limit", None)  # a subset gets its own file: the whole-set results stay
    return ("_optimization" if args.estimator == "optimization" else "") + ("_norefine" if args.no_refine else "") + (f"_first{limit}" if limit else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--estimator", choices=["optimization", "hkmr"], default="hkmr")
    parser.add_argument("--no-refine", action="store_true", help="with --estimator hkmr: the regressor alone")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("latency")
    p.add_argument("--repeats", type=int, default=3, help="runs per photo; the one with the median total is kept")
    p = sub.add_parser("batch")
    p.add_argument("--repeats", type=int, default=3, help="alternating passes of each way; the median is kept")
    p = sub.add_parser("video")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--repeats", type=int, default=3, help="alternating runs of each kind; the median is kept")
    p = sub.add_parser("startup")
    p.add_argument("--repeats", type=int, default=5, help="fresh processes of each kind; medians kept")
    p.add_argument("--baseline", default=None, metavar="COMMIT", help="also time hmrkit run as of COMMIT, alternating")
    p = sub.add_parser("pck")
    p.add_argument("--dataset", choices=["lsp", "coco"], required=True)
    p.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    {"latency": latency, "pck": pck, "batch": batch, "startup": startup, "video": video}[args.what](args)


if __name__ == "__main__":
    main()
