"""Camera-frame accuracy with the true intrinsics, the default field of view and EXIF (issue 20).

    python benchmarks/bench_intrinsics.py [--name intrinsics] [--estimator hkmr|optimization]

On ``../shared/data/ehf_dev`` (20 studio photos, 1600 x 1200, one person; SMPL-X pseudo ground truth
in the camera frame, the photos' intrinsics in ``annotations.npz``) every photo goes through the
pipeline as ``hmrkit run`` runs it (load_image, MediaPipe, HKMR + refinement), once per camera:

- ``true``: the true intrinsics as the user gives them (``--intrinsics fx,fy,cx,cy``);
- ``default``: nothing given (the photos carry no EXIF): hmrkit's 60 degree field of view;
- ``exif``: the photo re-saved (to a temporary folder, losslessly as PNG) with the true focal
  length written as EXIF FocalLengthIn35mmFilm in whole millimetres, as cameras write it.

MediaPipe runs once per photo; each camera fits the same detections (the camera does not enter
perception). Compared: the 11 face/foot surface points of the ground truth (nose, eyes, ears, big
and small toes, heels: published SMPL-X landmark vertices) against the result's ``joints3d`` of the
same names -- Anny's COCO-WholeBody face and foot points (the Anny package's own keypoint
regressor: surface points at the same anatomical places; hmrkit/body/anny_keypoints.py). Per photo:
mean 3D distance without alignment, after translation alignment (centroids matched), after a
similarity alignment (for reference: the shape alone), the depth offset (mean z, ours - true;
negative = too near), the size ratio (RMS distance of the 11 points from their centroid, ours /
true) and the head-to-foot ratio (|mean of the 5 head points - mean of the 6 foot points|), and the
2D error of the 11 points in pixels, and the pitch error (the lean of the head-to-foot line towards
the camera, ours - true). To find what limits the error, two more fits of the same detections with
the true intrinsics: a longer refinement (``--refine-steps 4,40``; the default camera too), and an
oracle with MediaPipe's metric 3D landmarks scaled to the true body size before the fit; and
MediaPipe's own 2D landmarks against the truth's 2D points (where their definitions differ).

Then every photo under ``../shared/data`` is scanned for EXIF focal lengths: which carry one, what
hmrkit reads from it, and what it changes against the default camera.
Results: benchmarks/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_common import DATA, ROOT, machine, write  # the script's own folder

sys.path.insert(0, str(ROOT))

from hmrkit.body.conventions import MEDIAPIPE33  # noqa: E402
from hmrkit.estimators import HkmrEstimator  # noqa: E402
from hmrkit.eval.metrics import mpjpe, pa_mpjpe  # noqa: E402
from hmrkit.geometry.cameras import CameraIntrinsics  # noqa: E402
from hmrkit.io.images import _UNIT_MM, FILM_DIAGONAL_MM, load_image  # noqa: E402
from hmrkit.pipeline import Pipeline, PipelineConfig  # noqa: E402

EHF = DATA / "ehf_dev"
HEAD = ("nose", "right_eye", "left_eye", "right_ear", "left_ear")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")
MP_HEAD = [MEDIAPIPE33.index(n) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]
MP_FOOT = [MEDIAPIPE33.index(n) for n in ("left_heel", "right_heel", "left_foot_index", "right_foot_index")]
# MediaPipe's landmarks at the ground truth's points (foot_index taken as the big toe)
MP_AT = {"nose": "nose", "right_eye": "right_eye", "left_eye": "left_eye", "right_ear": "right_ear", "left_ear": "left_ear",
         "left_big_toe": "left_foot_index", "left_heel": "left_heel", "right_big_toe": "right_foot_index", "right_heel": "right_heel"}
LONG = (4, 40)  # a longer refinement than the default (2, 15): what more Levenberg-Marquardt steps change


def surface_points(person, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The result's (11, 3) joints3d and (11, 2) joints2d for the ground truth's landmark names."""
    index = [person.joint_names.index(n) for n in names]
    return person.joints3d[index].astype(np.float64), person.joints2d[index].astype(np.float64)


def spread(points: np.ndarray) -> float:
    return float(np.sqrt(((points - points.mean(0)) ** 2).sum(1).mean()))


def head_to_foot(points: np.ndarray, names: list[str]) -> float:
    head = [names.index(n) for n in HEAD]
    foot = [i for i in range(len(names)) if i not in head]
    return float(np.linalg.norm(points[head].mean(0) - points[foot].mean(0)))


def pitch(points: np.ndarray, names: list[str]) -> float:
    head = [names.index(n) for n in HEAD]
    foot = [i for i in range(len(names)) if i not in head]
    v = points[head].mean(0) - points[foot].mean(0)
    return math.degrees(math.atan2(v[2], -v[1]))


def at_true_size(perception, truth: np.ndarray, names: list[str]):
    """``perception`` with MediaPipe's metric 3D landmarks scaled to the true body's head-to-foot
    length (an oracle: what the fit makes of a known body size)."""
    people = []
    for person in perception.people:
        if person.body is not None:
            world = np.asarray(person.body.world, dtype=np.float64)
            length = float(np.linalg.norm(world[MP_HEAD].mean(0) - world[MP_FOOT].mean(0)))
            person = replace(person, body=replace(person.body, world=(world * head_to_foot(truth, names) / length).astype(np.float32)))
        people.append(person)
    return replace(perception, people=people)


def measures(ours: np.ndarray, truth: np.ndarray, ours2d: np.ndarray, truth2d: np.ndarray, names: list[str]) -> dict:
    """The per-photo figures (mm, ratios, px) described in the module notes."""
    p, t = torch.from_numpy(ours[None]), torch.from_numpy(truth[None])
    size = spread(ours) / spread(truth)
    return {
        "error_mm": 1000 * float(mpjpe(p, t)[0]),
        "error_translation_aligned_mm": 1000 * float(mpjpe(p, t, root=list(range(len(names))))[0]),
        "error_similarity_aligned_mm": 1000 * float(pa_mpjpe(p, t)[0]),
        "depth_offset_mm": 1000 * float(ours[:, 2].mean() - truth[:, 2].mean()),
        "true_depth_m": float(truth[:, 2].mean()),
        "size_ratio": size,
        "head_to_foot_ratio": head_to_foot(ours, names) / head_to_foot(truth, names),
        # the head-to-foot direction's lean towards the camera (degrees; negative: head nearer than feet)
        "pitch_deg": pitch(ours, names),
        "pitch_error_deg": pitch(ours, names) - pitch(truth, names),
        "error_2d_px": float(np.linalg.norm(ours2d - truth2d, axis=1).mean()),
    }


def with_exif_focal(photo: Path, folder: Path, equivalent_mm: int) -> Path:
    """``photo`` re-saved losslessly (PNG) with EXIF FocalLengthIn35mmFilm = ``equivalent_mm``."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = equivalent_mm
    out = folder / f"{photo.stem}.png"
    with Image.open(photo) as im:
        im.save(out, exif=exif.tobytes())  # PNG: an Exif object without IFD0 tags is not written
    return out


def ehf(pipeline: Pipeline, true: CameraIntrinsics) -> dict:
    data = np.load(EHF / "annotations.npz")
    names = [str(n) for n in data["landmark_names"]]
    width, height = 1600, 1200
    equivalent = round(true.fx * FILM_DIAGONAL_MM / math.hypot(width, height))  # as a camera writes the tag
    settings = [("true", "true", None), ("default", "default", None), ("exif", "exif", None),
                (f"true, --refine-steps {LONG[0]},{LONG[1]}", "true", LONG), (f"default, --refine-steps {LONG[0]},{LONG[1]}", "default", LONG),
                ("true, oracle: MediaPipe 3D at the true size", "oracle", None)]
    mediapipe_offsets: dict[str, list] = {n: [] for n in MP_AT}
    lengths: dict[str, list] = {"true_3d_m": [], "mediapipe_world_m": [], "true_2d_px": [], "mediapipe_2d_px": []}
    rows: dict[str, list[dict]] = {label: [] for label, _, _ in settings}
    default_steps = pipeline.config.refine_iterations
    cameras: dict[str, dict] = {}
    missed: dict[str, list[str]] = {k: [] for k in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for k, image_name in enumerate(data["image_names"]):
            photo = EHF / "images" / str(image_name)
            loaded = load_image(photo)
            perception = pipeline.backend.detect(loaded.rgb)
            exif_loaded = load_image(with_exif_focal(photo, Path(tmp), equivalent))
            truth3d = data["landmarks3d_cam_m"][k].astype(np.float64)
            body = max((p for p in perception.people if p.body is not None), key=lambda p: (p.box[2] - p.box[0]) * (p.box[3] - p.box[1]))
            world, xy = np.asarray(body.body.world, np.float64), np.asarray(body.body.xy, np.float64)
            lengths["true_3d_m"].append(head_to_foot(truth3d, names))
            lengths["mediapipe_world_m"].append(float(np.linalg.norm(world[MP_HEAD].mean(0) - world[MP_FOOT].mean(0))))
            lengths["true_2d_px"].append(head_to_foot(data["landmarks2d_px"][k].astype(np.float64), names))
            lengths["mediapipe_2d_px"].append(float(np.linalg.norm(xy[MP_HEAD].mean(0) - xy[MP_FOOT].mean(0))))
            for name, mp_name in MP_AT.items():
                mediapipe_offsets[name].append((np.asarray(body.body.xy[MEDIAPIPE33.index(mp_name)], np.float64)
                                                - data["landmarks2d_px"][k][names.index(name)]).tolist())
            for setting, camera, steps in settings:
                image = exif_loaded if camera == "exif" else loaded
                pipeline.config.intrinsics = true if camera in ("true", "oracle") else None
                pipeline.config.refine_iterations = steps or default_steps
                seen = at_true_size(perception, truth3d, names) if camera == "oracle" else perception
                result = pipeline.run_with_fit(image, str(photo), perception=seen)[0]
                cameras[setting] = {**result.camera, "source": result.camera_source}
                if not result.people:
                    missed[setting].append(str(image_name))
                    continue
                person = max(result.people, key=lambda p: (p.box[2] - p.box[0]) * (p.box[3] - p.box[1]))
                ours, ours2d = surface_points(person, names)
                row = measures(ours, truth3d, ours2d,
                               data["landmarks2d_px"][k].astype(np.float64), names)
                rows[setting].append({"image": str(image_name), **row})
            print(image_name, {s: round(r[-1]["error_mm"], 1) for s, r in rows.items() if r}, flush=True)
    pipeline.config.intrinsics, pipeline.config.refine_iterations = None, default_steps
    summary = {}
    for setting, per in rows.items():
        keys = [k for k in per[0] if k != "image"] if per else []
        summary[setting] = {"photos": len(per), "missed": missed[setting], "camera": cameras.get(setting),
                            "mean": {k: float(np.mean([r[k] for r in per])) for k in keys},
                            "median": {k: float(np.median([r[k] for r in per])) for k in keys}}
    offsets = {n: np.mean(v, axis=0).round(1).tolist() for n, v in mediapipe_offsets.items()}
    true_pitch = float(np.mean([pitch(data["landmarks3d_cam_m"][k].astype(np.float64), names) for k in range(len(data["image_names"]))]))
    return {"landmarks": names, "exif_tag_written_mm": equivalent, "summary": summary, "per_photo": rows,
            "mediapipe_2d_offset_px": offsets, "true_pitch_deg": true_pitch,
            "head_to_foot_lengths": {k: float(np.mean(v)) for k, v in lengths.items()}}


def exif_scan(pipeline: Pipeline) -> dict:
    """Every photo under ``../shared/data`` with an EXIF focal length: what hmrkit makes of it."""
    found = []
    for path in sorted(DATA.rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        with Image.open(path) as im:
            tags = dict(im.getexif().get_ifd(0x8769))
        if 0x920A not in tags and 0xA405 not in tags:
            continue
        loaded = load_image(path)
        entry = {"photo": str(path.relative_to(DATA)), "size": list(loaded.original_size),
                 "FocalLength_mm": None if 0x920A not in tags else float(tags[0x920A]),
                 "FocalLengthIn35mmFilm": None if 0xA405 not in tags else int(tags[0xA405]),
                 "FocalPlaneXResolution": None if 0xA20E not in tags else float(tags[0xA20E]),
                 "FocalPlaneResolutionUnit": tags.get(0xA210), "PixelXDimension": tags.get(0xA002),
                 "used": loaded.exif_focal is not None, "notes": list(loaded.notes)}
        if entry["FocalLength_mm"] and entry["FocalPlaneXResolution"] and tags.get(0xA210) in _UNIT_MM:
            # read as if the sensor resolution referred to this picture's pixels (what hmrkit refuses without PixelXDimension)
            naive = entry["FocalLength_mm"] * entry["FocalPlaneXResolution"] / _UNIT_MM[tags[0xA210]]
            entry["naive_fx_px"] = naive
            entry["naive_fov_long_side_deg"] = math.degrees(2 * math.atan(max(loaded.original_size) / 2 / naive))
        results = {}
        for setting, image in (("exif", loaded), ("default", replace(loaded, exif_focal=None))):
            result = pipeline.run(image, str(path))
            results[setting] = {"camera": {**result.camera, "source": result.camera_source},
                                "people": len(result.people), "hands_only": len(result.hands_only),
                                "translation": [p.translation.round(3).tolist() for p in result.people]}
        entry["results"] = results
        found.append(entry)
    return {"photos_scanned": sum(1 for p in DATA.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES), "with_focal_length": found}


def table(payload: dict) -> str:
    ehf_part = payload["ehf"]
    lines = [f"# Camera intrinsics: camera-frame accuracy on ehf_dev ({payload['estimator']})", "",
             f"`python benchmarks/bench_intrinsics.py{payload['flags']}`; {payload['machine']}; {payload['seconds']:.0f} s.", "",
             "The 11 face/foot surface points (ground truth: SMPL-X landmark vertices; ours: the result's joints3d of the "
             "same names, Anny's COCO-WholeBody face and foot points) on the 20 ehf_dev photos, mean over photos (median in "
             "brackets). `true`: `--intrinsics` with the photos' true intrinsics; `default`: nothing given (no EXIF: 60 deg "
             f"along the long side); `exif`: the photo re-saved with the true focal length as EXIF FocalLengthIn35mmFilm = "
             f"{ehf_part['exif_tag_written_mm']} mm (whole mm, as cameras write it); `--refine-steps {LONG[0]},{LONG[1]}`: a "
             "longer refinement than the default 2,15; `oracle`: MediaPipe's metric 3D landmarks scaled to the true body's "
             "head-to-foot length before the fit (a diagnostic: the body's size given).", "",
             "| camera | fx used | error mm | after translation mm | after similarity mm | depth offset mm | size ratio "
             "| head-to-foot ratio | pitch error deg | 2D px |", "|---|---|---|---|---|---|---|---|---|---|"]
    keys = ("error_mm", "error_translation_aligned_mm", "error_similarity_aligned_mm", "depth_offset_mm", "size_ratio",
            "head_to_foot_ratio", "pitch_error_deg", "error_2d_px")
    for setting, s in ehf_part["summary"].items():
        cells = []
        for k in keys:
            digits = 3 if "ratio" in k else 1
            cells.append(f"{s['mean'][k]:.{digits}f} ({s['median'][k]:.{digits}f})")
        lines.append(f"| {setting} | {s['camera']['fx']:.1f} | " + " | ".join(cells) + " |")
    lines += ["", f"True depth of the points: {np.mean([r['true_depth_m'] for r in ehf_part['per_photo']['true']]):.2f} m on average. "
              "Size ratio: RMS distance of our 11 points from their centroid / the truth's. Pitch: the lean of the line from "
              "the 6 foot points' mean to the 5 head points' mean towards the camera (the truth's: "
              f"{ehf_part['true_pitch_deg']:.1f} deg on average, the head nearer); its error: ours - true.", "",
              "Head-to-foot length (5 head points' mean to the 6 foot points' mean; MediaPipe: its nose, eyes, ears to its heels "
              "and foot_index), mean over photos: truth {true_3d_m:.3f} m, MediaPipe's metric 3D landmarks {mediapipe_world_m:.3f} m; "
              "in the image: truth {true_2d_px:.1f} px, MediaPipe's 2D landmarks {mediapipe_2d_px:.1f} px.".format(**ehf_part["head_to_foot_lengths"]),
              "",
              "MediaPipe's own 2D landmarks minus the truth's 2D points, mean over the 20 photos (px, x right, y down): " + ", ".join(f"{n} ({v[0]:+.1f}, {v[1]:+.1f})" for n, v in ehf_part["mediapipe_2d_offset_px"].items()) + ".", "",
              "## Photos in ../shared/data with an EXIF focal length", "",
              f"{payload['exif']['photos_scanned']} photos scanned."]
    for e in payload["exif"]["with_focal_length"]:
        r = e["results"]
        lines.append(f"- `{e['photo']}` ({e['size'][0]} x {e['size'][1]}): FocalLength {e['FocalLength_mm']} mm, "
                     f"FocalLengthIn35mmFilm {e['FocalLengthIn35mmFilm']}, FocalPlaneXResolution {e['FocalPlaneXResolution']} "
                     f"(unit {e['FocalPlaneResolutionUnit']}), PixelXDimension {e['PixelXDimension']}: used {e['used']}; "
                     f"read naively (sensor resolution as this picture's): fx {e.get('naive_fx_px', float('nan')):.0f} px, "
                     f"{e.get('naive_fov_long_side_deg', float('nan')):.1f} deg along the long side; "
                     f"notes {e['notes']}; camera with EXIF {r['exif']['camera']} vs without {r['default']['camera']}; "
                     f"people {r['exif']['people']} / {r['default']['people']}, lone hands {r['exif']['hands_only']} / "
                     f"{r['default']['hands_only']}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="intrinsics")
    parser.add_argument("--estimator", choices=["hkmr", "optimization"], default="hkmr")
    args = parser.parse_args()
    if not EHF.exists():
        sys.exit(f"development data not found: {EHF} (see ../shared/data/README.md)")
    start = time.perf_counter()
    data = np.load(EHF / "annotations.npz")
    true = CameraIntrinsics(*(float(v) for v in data["cam_fx_fy_cx_cy"]))
    config = PipelineConfig(estimator=HkmrEstimator.load() if args.estimator == "hkmr" else None)
    with Pipeline(config) as pipeline:
        payload = {"estimator": pipeline.estimator_label, "true_intrinsics": asdict(true), "ehf": ehf(pipeline, true),
                   "exif": exif_scan(pipeline)}
    payload["seconds"] = time.perf_counter() - start
    payload["machine"] = machine(with_load=True)
    payload["flags"] = "" if args.name == "intrinsics" and args.estimator == "hkmr" else f" --name {args.name} --estimator {args.estimator}"
    write(args.name, payload, table(payload))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
