"""Who perception finds, through the whole pipeline (issue 15): everyone, and no one invented.

    python benchmarks/bench_people.py --name before [--lsp 200] [--sections hands,groups,lsp,coco,speed]

Sections (each skipped with a note when its data is absent):
- hands: the 100 real hand close-ups of hands_ge2019_dev through ``Pipeline.run`` (what
  ``hmrkit run`` computes, without writing files): how many give a hand result on its own
  (``hands_only``, the hand within half a hand size of its label), how many give a body
  instead or as well, and the PA-MPJPE (mm) of the hands found (``joints3d`` against the 3D labels).
- groups: the demo photos with several people against a manual count (benchmarks/people_counts.json:
  one point per person, how they were made is written there). A found person is matched to the
  nearest counted point inside their box, grown by 10 % of its size on each side (distance from the head landmarks' mean; each point
  matched once); a found person with no point left in their box is *invented* (a ghost or a
  duplicate). Also perception and total time per person found.
- lsp: the first N photos of lspet_dev (one labelled person each) through the pipeline: the
  share of labelled people found, and PCK@0.1 / @0.2 (torso) of the 12 limb joints for the
  mesh's lsp14 joints and for MediaPipe's raw landmarks (the matching and PCK of
  bench_pipeline.py, missed people counted wrong).
- coco: the 80 photos of coco_mini_dev through the pipeline, 44 of them with no person in COCO's
  labels (COCO means its person labels to be complete; a crowd is one labelled region): bodies
  reported, and *invented* ones, whose box centre lies in no COCO person box grown by 10 % of
  its size on each side (things the pose model took for a person: furniture, animals, toys);
  COCO people with a reported body inside their box (each body counts for one person).
- speed: perception alone (``MediaPipeBackend.detect``; the fit per person does not change) on the
  demo photos and on the sample video's first frames, the configuration as it was before issue
  15 (``max_people=8``, no screening: ``MediaPipeConfig(max_people=8, plausibility=None)``)
  and the current default without the face ROIs, as it is, without the refinement of the
  landmarks of photos of one or two people (``refine_passes=0``), and without the second
  opinion on bodies (``PlausibilityConfig(min_silhouette=0)``), runs
  alternating on the same machine state; ms per person found (photos: sum over photos / people
  found; video: per person-frame, tracking mode).
Results: benchmarks/results/people_<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np
import torch

from bench_common import DATA, ROOT, machine, write  # the script's own folder
from bench_pipeline import LIMBS, labelled_people, load_lsp

sys.path.insert(0, str(ROOT))

from hmrkit.body.anny_keypoints import anny_keypoint_map  # noqa: E402
from hmrkit.body.conventions import MEDIAPIPE33  # noqa: E402
from hmrkit.eval.metrics import pa_mpjpe  # noqa: E402
from hmrkit.io.images import VideoReader, load_image  # noqa: E402
from hmrkit.perception import MediaPipeBackend, MediaPipeConfig  # noqa: E402
from hmrkit.perception.plausibility import PlausibilityConfig  # noqa: E402
from hmrkit.pipeline import Pipeline, PipelineConfig  # noqa: E402

COUNTS = ROOT / "benchmarks" / "people_counts.json"
HEAD = list(range(11))  # MediaPipe's face landmarks (nose, eyes, ears, mouth)


def bench_hands(pipeline: Pipeline) -> dict:
    folder = DATA / "hands_ge2019_dev"
    ann = np.load(folder / "annotations.npz")
    found, bodies, any_body, errors, rows = 0, 0, 0, [], []
    for name, xyz, box, cam in zip(ann["image_names"], ann["joints_cam_mm"], ann["bbox_xywh_in_frame"], ann["cam_fx_fy_cx_cy"]):
        loaded = load_image(folder / "images" / str(name))
        fx, fy, cx, cy = cam
        h, w = loaded.rgb.shape[:2]
        uv = np.stack([(fx * xyz[:, 0] / xyz[:, 2] + cx - box[0]) * w / box[2],
                       (fy * xyz[:, 1] / xyz[:, 2] + cy - box[1]) * h / box[3]], axis=1)
        size = float(np.linalg.norm(uv.max(axis=0) - uv.min(axis=0)))
        result = pipeline.run(loaded, str(name))
        near = [hd for hd in result.hands_only if np.linalg.norm(hd.joints2d - uv, axis=1).mean() < 0.5 * size]
        bodies += len(result.people)
        any_body += bool(result.people)
        if near:
            found += 1
            hand = min(near, key=lambda hd: np.linalg.norm(hd.joints2d - uv, axis=1).mean())
            errors.append(float(pa_mpjpe(torch.tensor(hand.joints3d[None] * 1000.0), torch.tensor(xyz[None], dtype=torch.float32))))
        rows.append({"image": str(name), "hand": bool(near), "bodies": len(result.people), "lone_hands": len(result.hands_only)})
    n = len(ann["image_names"])
    return {"crops": n, "hands_found_as_hands": found, "crops_giving_a_body": any_body, "bodies_produced": bodies,
            "pa_mpjpe_mm_hands_found": round(float(np.mean(errors)), 2) if errors else None, "per_image": rows}


def match_people(result, points: np.ndarray) -> tuple[int, int]:
    """(counted people found, found people invented): see the module notes."""
    taken = np.zeros(len(points), bool)
    invented = 0
    candidates = []
    for k, (det, person) in enumerate(zip(result.detections, result.people)):
        x0, y0, x1, y1 = person.box
        mx, my = 0.1 * (x1 - x0), 0.1 * (y1 - y0)  # boxes come from landmarks: a head point may lie just outside
        inside = (points[:, 0] >= x0 - mx) & (points[:, 0] <= x1 + mx) & (points[:, 1] >= y0 - my) & (points[:, 1] <= y1 + my)
        head = det.body.xy[HEAD].mean(axis=0)
        for j in np.flatnonzero(inside):
            candidates.append((float(np.linalg.norm(points[j] - head)), k, j))
    matched: set[int] = set()
    for _, k, j in sorted(candidates):
        if k not in matched and not taken[j]:
            matched.add(k)
            taken[j] = True
    invented = len(result.people) - len(matched)
    return int(taken.sum()), invented


def bench_groups(pipeline: Pipeline) -> dict:
    counts = json.loads(COUNTS.read_text())["photos"]
    rows = []
    for name, entry in counts.items():
        path = DATA / "demo_images" / name
        loaded = load_image(path)
        pipeline.run(loaded, name) if not rows else None  # warm-up on the first photo
        start = time.perf_counter()
        result = pipeline.run(loaded, name)
        total = (time.perf_counter() - start) * 1000
        points = np.asarray(entry["points"], np.float64)
        found, invented = match_people(result, points)
        people = len(result.people)
        rows.append({"image": name, "counted": entry["count"], "reported": people, "found": found, "invented": invented,
                     "lone_hands": len(result.hands_only), "notes": result.notes,
                     "perception_ms_per_person": round(result.timings_ms.get("perception", 0.0) / max(people, 1), 1),
                     "total_ms_per_person": round(total / max(people, 1), 1)})
        print(rows[-1], flush=True)
    counted = sum(r["counted"] for r in rows)
    found = sum(r["found"] for r in rows)
    reported = sum(r["reported"] for r in rows)
    return {"photos": len(rows), "counted": counted, "found": found, "recall": round(found / counted, 3),
            "invented": sum(r["invented"] for r in rows),
            "total_ms_per_person_overall": round(sum(r["total_ms_per_person"] * max(r["reported"], 1) for r in rows) / max(reported, 1), 1),
            "per_image": rows}


def bench_coco(pipeline: Pipeline) -> dict:
    folder = DATA / "coco_mini_dev"
    meta = json.loads((folder / "person_keypoints_train2017.json").read_text())
    boxes: dict[int, list] = {}
    for a in meta["annotations"]:
        x, y, w, h = a["bbox"]
        boxes.setdefault(a["image_id"], []).append((x - 0.1 * w, y - 0.1 * h, x + 1.1 * w, y + 1.1 * h))
    reported = invented = invented_empty = people = found = empty = 0
    rows = []
    for image in meta["images"]:
        result = pipeline.run(folder / "images" / image["file_name"], image["file_name"])
        gt = boxes.get(image["id"], [])
        empty += not gt
        people += len(gt)
        taken: set[int] = set()
        wrong = 0
        for person in result.people:
            x0, y0, x1, y1 = person.box
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            inside = [j for j, b in enumerate(gt) if b[0] <= cx <= b[2] and b[1] <= cy <= b[3]]
            if not inside:
                wrong += 1
            free = [j for j in inside if j not in taken]
            if free:
                taken.add(free[0])
        reported += len(result.people)
        invented += wrong
        invented_empty += wrong if not gt else 0
        found += len(taken)
        rows.append({"image": image["file_name"], "coco_people": len(gt), "reported": len(result.people), "invented": wrong})
    return {"photos": len(rows), "photos_without_people": empty, "coco_people": people, "coco_people_with_a_body": found,
            "reported": reported, "invented": invented, "invented_on_photos_without_people": invented_empty, "per_image": rows}


def bench_lsp(pipeline: Pipeline, limit: int) -> dict:
    conv, items = load_lsp(limit)
    kmap = anny_keypoint_map(pipeline.model, conv)
    limbs = [conv.index(n) for n in LIMBS]
    hits = {(m, a): 0 for m in ("mesh", "mediapipe") for a in (0.1, 0.2)}
    total = people = found = 0
    start = time.time()
    for person in labelled_people(pipeline, conv, items):
        people += 1
        lab = person.labelled[limbs]
        total += int(lab.sum())
        if person.fit is None:
            continue
        found += 1
        points = {"mesh": person.keypoints2d(pipeline.model, kmap), "mediapipe": person.mediapipe}
        for (m, a) in hits:
            err = np.linalg.norm(points[m][limbs] - person.gt[limbs], axis=1)
            hits[m, a] += int((lab & (err <= a * person.torso)).sum())
    return {"images": len(items), "people_labelled": people, "people_found": found,
            "detection_rate": round(found / max(people, 1), 3),
            **{f"pck@{a}_limbs12_{m}": round(v / max(total, 1), 3) for (m, a), v in hits.items()},
            "seconds": round(time.time() - start)}


def bench_speed(repeats: int, frames: int) -> dict:
    from bench_common import DEMO_PHOTOS

    ways = {"before (max_people=8, no screening)": {"max_people": 8, "plausibility": None},
            "current default without the face ROIs": {"face_rois": ()}, "current default": {},
            "current default without the refinement": {"refine_passes": 0},
            "current default without the second opinion": {"plausibility": PlausibilityConfig(min_silhouette=0.0)}}
    photos = [load_image(p).rgb for p in DEMO_PHOTOS]
    out: dict = {"photos": len(photos), "repeats": repeats}
    backends = {way: MediaPipeBackend(MediaPipeConfig(**kw)) for way, kw in ways.items()}
    for be in backends.values():
        be.detect(photos[0])  # graphs built outside the timings
    ms = {way: np.zeros((repeats, len(photos))) for way in ways}
    people = {way: np.zeros(len(photos), int) for way in ways}
    for r in range(repeats):
        for i, rgb in enumerate(photos):
            for way, be in backends.items():  # alternating: both see the same machine state
                start = time.perf_counter()
                found = be.detect(rgb)
                ms[way][r, i] = (time.perf_counter() - start) * 1000
                people[way][i] = sum(p.body is not None for p in found.people)
    for be in backends.values():
        be.close()
    out["photo_perception_ms_per_person"] = {way: round(float(np.median(ms[way], axis=0).sum() / max(people[way].sum(), 1)), 1) for way in ways}
    out["photo_people_found"] = {way: int(people[way].sum()) for way in ways}
    out["photo_perception_ms_median_photo"] = {way: round(float(np.median(np.median(ms[way], axis=0))), 1) for way in ways}
    video = DATA / "demo_images" / "sample_video.mp4"
    if video.is_file():
        frames_rgb = []
        with VideoReader(video) as reader:
            for frame in reader:
                frames_rgb.append(frame.rgb)
                if len(frames_rgb) == frames:
                    break
        per = {way: [] for way in ways}
        for _ in range(repeats):
            for way, kw in ways.items():
                with MediaPipeBackend(MediaPipeConfig(video=True, **kw)) as be:
                    be.detect(frames_rgb[0])
                    total, count = 0.0, 0
                    for rgb in frames_rgb[1:]:
                        start = time.perf_counter()
                        count += len(be.detect(rgb).people)
                        total += time.perf_counter() - start
                    per[way].append((1000 * total / max(count, 1), count))
        out["video_frames"] = len(frames_rgb) - 1
        out["video_perception_ms_per_person_frame"] = {way: round(float(np.median([v[0] for v in per[way]])), 1) for way in ways}
        out["video_person_frames"] = {way: [v[1] for v in per[way]] for way in ways}
    return out


def markdown(payload: dict) -> str:
    lines = [f"# Who perception finds, through the pipeline ({payload['name']})", "",
             f"Machine: {payload['machine']}. Code: {payload['code']}. Command: `{payload['command']}`.", ""]
    if "hands" in payload:
        h = payload["hands"]
        lines += ["## Hand close-ups (hands_ge2019_dev, 100 real crops, Pipeline.run = `hmrkit run` without files)", "",
                  "| crops | found as a hand | crops giving a body | bodies produced | PA-MPJPE of hands found (mm) |",
                  "|---|---|---|---|---|",
                  f"| {h['crops']} | {h['hands_found_as_hands']} | {h['crops_giving_a_body']} | {h['bodies_produced']} | {h['pa_mpjpe_mm_hands_found']} |", ""]
    if "groups" in payload:
        g = payload["groups"]
        lines += ["## Photos of several people, against a manual count (benchmarks/people_counts.json)", "",
                  f"Overall: {g['found']} of {g['counted']} counted people found ({g['recall']}), {g['invented']} invented; "
                  f"{g['total_ms_per_person_overall']} ms per person reported (whole pipeline, one run after a warm-up).", "",
                  "| photo | counted | reported | found | invented | lone hands | perception ms / person | total ms / person |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['image']} | {r['counted']} | {r['reported']} | {r['found']} | {r['invented']} | {r['lone_hands']} | "
                  f"{r['perception_ms_per_person']} | {r['total_ms_per_person']} |" for r in g["per_image"]]
        lines.append("")
    if "coco" in payload:
        c = payload["coco"]
        lines += ["## coco_mini_dev (80 photos, every person labelled; Pipeline.run)", "",
                  "| photos (without people) | COCO people | COCO people with a body | bodies reported | invented (on photos without people) |",
                  "|---|---|---|---|---|",
                  f"| {c['photos']} ({c['photos_without_people']}) | {c['coco_people']} | {c['coco_people_with_a_body']} | {c['reported']} | "
                  f"{c['invented']} ({c['invented_on_photos_without_people']}) |", ""]
    if "lsp" in payload:
        s = payload["lsp"]
        lines += [f"## LSPET, first {s['images']} photos (lspet_dev)", "",
                  "| labelled people | found | detection | mesh PCK@0.1 / @0.2 (12 limbs) | MediaPipe PCK@0.1 / @0.2 |",
                  "|---|---|---|---|---|",
                  f"| {s['people_labelled']} | {s['people_found']} | {s['detection_rate']} | {s['pck@0.1_limbs12_mesh']} / "
                  f"{s['pck@0.2_limbs12_mesh']} | {s['pck@0.1_limbs12_mediapipe']} / {s['pck@0.2_limbs12_mediapipe']} |", ""]
    if "speed" in payload:
        s = payload["speed"]
        lines += [f"## Perception time, before issue 15's changes vs now (same process, runs alternating, median of {s['repeats']})", "",
                  "| configuration | photos: ms per person found | photos: people found | median photo ms | video: ms per person-frame |",
                  "|---|---|---|---|---|"]
        for way in s["photo_perception_ms_per_person"]:
            lines.append(f"| {way} | {s['photo_perception_ms_per_person'][way]} | {s['photo_people_found'][way]} | "
                         f"{s['photo_perception_ms_median_photo'][way]} | {s.get('video_perception_ms_per_person_frame', {}).get(way)} |")
        lines += ["", f"Photos: the {s['photos']} demo photos; video: the sample video's first {s.get('video_frames')} frames after one, tracking mode.", ""]
    if payload.get("skipped"):
        lines += ["Skipped: " + "; ".join(payload["skipped"]), ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True, help="results file: people_<name>")
    ap.add_argument("--lsp", type=int, default=200, help="how many lspet_dev photos (from the first)")
    ap.add_argument("--sections", default="hands,groups,lsp")
    ap.add_argument("--code", default="", help="what code this measures (e.g. a commit), for the results")
    ap.add_argument("--face-detector", action="store_true",
                    help="perception with MediaPipeConfig(face_detector=True): the person detector under faces the pose window misses")
    ap.add_argument("--no-turned-search", action="store_true",
                    help="perception with MediaPipeConfig(turned_search=False): as before the person detector on turned photos")
    ap.add_argument("--no-face-rois", action="store_true",
                    help="perception with MediaPipeConfig(face_rois=()): as before the landmark model on ROIs under faces")
    ap.add_argument("--no-second-opinion", action="store_true",
                    help="perception with PlausibilityConfig(min_silhouette=0): as before, no segmentation / person-flag check on bodies")
    ap.add_argument("--repeats", type=int, default=3, help="speed: alternating runs of each configuration")
    ap.add_argument("--frames", type=int, default=61, help="speed: video frames read (the first one warms up)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    sections = args.sections.split(",")
    payload: dict = {"name": args.name, "code": args.code or "working tree",
                     "command": f"python benchmarks/bench_people.py --name {args.name} --lsp {args.lsp} --sections {args.sections}"
                     + (f" --repeats {args.repeats} --frames {args.frames}" if "speed" in sections else "")
                     + (" --face-detector" if args.face_detector else "")
                     + (" --no-turned-search" if args.no_turned_search else "")
                     + (" --no-face-rois" if args.no_face_rois else "")
                     + (" --no-second-opinion" if args.no_second_opinion else ""),
                     "skipped": []}
    pipeline = Pipeline(PipelineConfig(with_vertices=False)) if set(sections) - {"speed"} else None
    changed = {**({"face_detector": True} if args.face_detector else {}),
               **({"turned_search": False} if args.no_turned_search else {}),
               **({"face_rois": ()} if args.no_face_rois else {}),
               **({"plausibility": PlausibilityConfig(min_silhouette=0.0)} if args.no_second_opinion else {})}
    if pipeline is not None and changed:  # the pipeline's own backend, with these settings changed
        pipeline.backend.close()
        pipeline.backend = MediaPipeBackend(replace(pipeline.backend.config, **changed))
    need = {"hands": DATA / "hands_ge2019_dev", "groups": DATA / "demo_images", "lsp": DATA / "lspet_dev", "coco": DATA / "coco_mini_dev",
            "speed": DATA / "demo_images"}
    for key in sections:
        if not need[key].is_dir():
            payload["skipped"].append(f"{key}: {need[key]} absent")
            continue
        start = time.time()
        payload[key] = {"hands": lambda: bench_hands(pipeline), "groups": lambda: bench_groups(pipeline),
                        "lsp": lambda: bench_lsp(pipeline, args.lsp), "coco": lambda: bench_coco(pipeline), "speed": lambda: bench_speed(args.repeats, args.frames)}[key]()
        payload[key]["section_s"] = round(time.time() - start)
        print(key, {k: v for k, v in payload[key].items() if k != "per_image"}, flush=True)
    if pipeline is not None:
        pipeline.close()
    payload["machine"] = machine(with_load=True)
    write(f"people_{args.name}", payload, markdown(payload))


if __name__ == "__main__":
    main()
