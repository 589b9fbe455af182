"""The floor of single-photo speed: what no scheduling can beat on this machine, and the lite hand models.

    python benchmarks/bench_speed_floor.py

(a) Photos of one person (demo photos and demo hands): the chain that must run in series -- the
    pose call that finds the person (the wrist crops need its wrists), the slower of the two
    wrist searches (they run side by side; the fit needs the hands, whose landmarks are fit
    targets), then hand IK + HKMR + refinement + mesh -- each stage alone and idle otherwise,
    the FASTEST of 5 runs (``bench_speed_parts.one_person_chain`` with ``statistic=min``), and
    the pipeline's whole run(), also the fastest of 5. The chain's sum is a floor for the photo:
    the search for anyone else and the face search only add to it. The same hand IK + fit + mesh
    without the refinement (``PipelineConfig(refine=False)``), fastest of 5.
(b) MediaPipe Hands' lite models (``MediaPipeConfig(hand_model_complexity=0)``, palm detector and
    hand landmarks, both in the wheel) against the full ones on the demo photos' wrist crops:
    ms per crop one at a time, crops with a hand, and the crops where both found one: whether a
    hand of each is the same hand (mean landmark gap under 15 % of its size; a crop may show two).
(c) The same two on the real hand crops of ../shared/data/hands_ge2019_dev (bench_hands.py (a)):
    hands found and PA-MPJPE (mm) of the raw world landmarks on the crops both found a hand in.
Results: benchmarks/results/speed_floor.{json,md}.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import torch

from bench_common import DATA, DEMO_PHOTOS, ROOT, machine, write  # the script's own folder
from bench_hands import real_hands, run_mediapipe
from bench_speed_parts import HAND_PHOTOS, hands_fit_mesh_ms, one_person_chain, wrist_crops

sys.path.insert(0, str(ROOT))

from hmrkit.eval.metrics import pa_mpjpe  # noqa: E402
from hmrkit.io.images import load_image  # noqa: E402
from hmrkit.perception.mediapipe_backend import MediaPipeBackend, MediaPipeConfig, _same_hand  # noqa: E402
from hmrkit.perception.types import HandLandmarks  # noqa: E402
from hmrkit.pipeline import Pipeline, PipelineConfig  # noqa: E402

REPEATS = 5


def without_refinement(names: list[str]) -> dict[str, float]:
    """Hand IK + HKMR alone + mesh (fastest of 5) for the photos named."""
    out = {}
    with Pipeline(PipelineConfig(refine=False)) as pipeline:
        for path in DEMO_PHOTOS + HAND_PHOTOS:
            name = path.relative_to(DATA / "demo_images").as_posix()
            if name not in names:
                continue
            out[name] = hands_fit_mesh_ms(pipeline, load_image(path), REPEATS, min)
    return out


def lite_on_wrist_crops() -> dict:
    """(b): full vs lite hand models on every wrist crop of the demo photos."""
    with MediaPipeBackend(MediaPipeConfig(hands=False)) as finder:
        crops = wrist_crops(finder)
    found: dict[int, list] = {}
    ms: dict[int, float] = {}
    for complexity in (1, 0):
        with MediaPipeBackend(MediaPipeConfig(hand_model_complexity=complexity)) as backend:
            backend._hands_in(*crops[0])  # warm-up: the graph
            start = time.perf_counter()
            found[complexity] = [backend._hands_in(image, crop) for image, crop in crops]
            ms[complexity] = (time.perf_counter() - start) * 1000 / len(crops)

    def hand(hit) -> HandLandmarks:
        return HandLandmarks(side="left", xy=hit.xy, world=hit.world, score=1.0, side_source="pose")

    both = same = 0
    for full, lite in zip(found[1], found[0]):
        if full and lite:
            both += 1
            same += any(_same_hand(hand(a), hand(b)) for a in full for b in lite)
    return {"crops": len(crops), "ms_per_crop": {"full": ms[1], "lite": ms[0]},
            "with_a_hand": {"full": sum(map(bool, found[1])), "lite": sum(map(bool, found[0]))},
            "both_found": both, "both_found_the_same_hand": same}


def lite_on_real_hands() -> dict:
    """(c): full vs lite hand models on the real hand crops with 3D joints."""
    ann, images = real_hands()
    truth = torch.tensor(ann["joints_cam_mm"], dtype=torch.float32) / 1000.0
    world = {c: run_mediapipe(images, model_complexity=c) for c in (1, 0)}
    found = {c: ~np.isnan(world[c][0][:, 0, 0]) for c in (1, 0)}
    both = found[1] & found[0]
    out = {"crops": len(images), "found": {"full": int(found[1].sum()), "lite": int(found[0].sum())}, "both_found": int(both.sum())}
    for c, name in ((1, "full"), (0, "lite")):
        pred = torch.tensor(world[c][0][both])
        out[f"pa_mpjpe_mm_{name}"] = float(pa_mpjpe(pred, truth[torch.tensor(both)]).mean()) * 1000
        out[f"ms_per_crop_{name}"] = statistics.median(world[c][2])
    return out


def main() -> None:
    torch.set_num_threads(1)
    with Pipeline() as pipeline:
        chain = one_person_chain(pipeline, repeats=REPEATS, statistic=min)
    plain = without_refinement([r["photo"] for r in chain])
    for row in chain:
        row["hands_fit_mesh_no_refine_ms"] = plain[row["photo"]]
    crops = lite_on_wrist_crops()
    print(crops, flush=True)
    real = lite_on_real_hands()
    print(real, flush=True)
    payload = {"machine": machine(with_load=True), "command": "python benchmarks/bench_speed_floor.py",
               "one_person_chain_fastest_of_5": chain, "lite_hands_on_wrist_crops": crops, "lite_hands_on_real_hands": real}
    with_hands = [r for r in chain if r["hands_found"] == 2]
    lines = ["# The floor of single-photo speed", "", f"Machine: {payload['machine']}. Command: `{payload['command']}`.", "",
             "(a) Photos of one person: the chain pose call -> slower wrist search -> hand IK + fit + mesh, each stage "
             "alone, the fastest of 5 runs, against the pipeline's whole run (fastest of 5); ms. 'no refine': hand IK + "
             "HKMR alone + mesh, fastest of 5.", "",
             "| photo | hands found | pose call | wrist searches | slower wrist search | hand IK + fit + mesh | chain | "
             "pipeline | hand IK + HKMR + mesh, no refine |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['photo']} | {r['hands_found']} | {r['pose_ms']:.0f} | {r['wrist_searches']} | {r['slower_wrist_search_ms']:.0f} | "
              f"{r['hands_fit_mesh_ms']:.0f} | {r['chain_ms']:.0f} | {r['pipeline_ms']:.0f} | {r['hands_fit_mesh_no_refine_ms']:.0f} |"
              for r in chain]
    if with_hands:
        lines += ["", f"Photos with both hands found ({len(with_hands)}): chain {min(r['chain_ms'] for r in with_hands):.0f} ms at "
                  f"the least, pipeline {min(r['pipeline_ms'] for r in with_hands):.0f} ms at the least."]
    lines += ["", f"(b) Wrist crops of the demo photos ({crops['crops']}), one at a time: full hand models "
              f"{crops['ms_per_crop']['full']:.1f} ms a crop, {crops['with_a_hand']['full']} with a hand; lite "
              f"{crops['ms_per_crop']['lite']:.1f} ms, {crops['with_a_hand']['lite']} with a hand; both found one in "
              f"{crops['both_found']}, the same hand in {crops['both_found_the_same_hand']}.", "",
              f"(c) Real hand crops (hands_ge2019_dev, {real['crops']}): hands found, full {real['found']['full']}, lite "
              f"{real['found']['lite']}; on the {real['both_found']} both found, PA-MPJPE of the raw world landmarks "
              f"{real['pa_mpjpe_mm_full']:.2f} mm full, {real['pa_mpjpe_mm_lite']:.2f} mm lite; median ms a crop "
              f"{real['ms_per_crop_full']:.1f} full, {real['ms_per_crop_lite']:.1f} lite."]
    write("speed_floor", payload, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
