"""Where the time of one person goes: the pieces behind the speed notes in docs/hkmr.md.

    python benchmarks/bench_speed_parts.py

(a) MediaPipe Hands on the wrist crops of the demo photos: ms per crop one at a time, and two
    at a time on two threads (each with its own graph), as the backend's workers run them.
(b) The body fit: the pipeline's refinement after HKMR for one person (astronaut.png): ms, tensor
    calls (profiler, top-level aten calls: what is left in PyTorch, mostly the shape blend; the
    keypoints and Jacobians run in numba) and ms per Levenberg-Marquardt step.
(c) The hand post-optimization the pipeline skips by default: ``HandSolver.solve_people`` with
    20 steps vs the IK net alone, ms per demo photo with hands.
(d) Video: ``MediaPipeConfig.hand_retry_every`` 1-4 on the first 60 frames of the sample video:
    wrist searches made and finding a hand, hands kept, perception ms per person-frame.
(e) The first fit of a fresh process, with numba's cache empty and then filled (subprocesses).
(f) The chain of one-person photos (demo photos and demo hands): the pose call that finds the
    person, then the slower of the two wrist searches (they need the pose's wrists; on two
    cores they run side by side), then hand IK + body fit + mesh (the fit needs the hands: their
    landmarks are fit targets), each timed alone, one at a time, against the pipeline's whole
    run() of the photo (median of 3). The chain's sum is a floor for the photo however the
    work is spread over cores; the search for anyone else and the face search run beside it.
Results: benchmarks/results/speed_parts.{json,md}.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from bench_common import DATA, DEMO_PHOTOS, ROOT, machine, write  # the script's own folder

sys.path.insert(0, str(ROOT))

from hmrkit.fitting.hands import HandSolver  # noqa: E402
from hmrkit.fitting.targets import targets_from_detections  # noqa: E402
from hmrkit.io.images import VideoReader, load_image  # noqa: E402
from hmrkit.perception.geometry import Crop  # noqa: E402
from hmrkit.perception.mediapipe_backend import MediaPipeBackend, MediaPipeConfig, _HandSearches  # noqa: E402
from hmrkit.pipeline import Pipeline, compute_threads  # noqa: E402

HAND_PHOTOS = sorted((DATA / "demo_images" / "hands").glob("*.jpg"))


def wrist_crops(backend: MediaPipeBackend) -> list[tuple[np.ndarray, Crop]]:
    """Every wrist crop the backend searches on the demo photos, with its photo."""
    crops = []
    for path in DEMO_PHOTOS:
        image = load_image(path).rgb
        searches = _HandSearches(backend, image)
        for person in backend.detect_pose(image):
            searches.start(person)  # the crops the backend picks (the searches themselves are not timed)
        for _, started in searches.started:
            crops += [(image, crop) for crop, hits in started.values() if hits.result() is not None]
    return crops


def hand_crops() -> dict:
    """(a): every wrist crop the backend would search on the demo photos, timed alone and in pairs."""
    with MediaPipeBackend(MediaPipeConfig(hands=False)) as backend:
        crops = wrist_crops(backend)
        backend._hands_in(*crops[0])  # warm-up: the graph
        start = time.perf_counter()
        found = sum(bool(backend._hands_in(image, crop)) for image, crop in crops)
        alone = (time.perf_counter() - start) * 1000 / len(crops)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda c: backend._hands_in(*c), crops[:4]))  # warm-up: a graph per thread
            start = time.perf_counter()
            list(pool.map(lambda c: backend._hands_in(*c), crops))
            paired = (time.perf_counter() - start) * 1000 / len(crops)
    return {"crops": len(crops), "found": found, "ms_per_crop_alone": alone, "ms_per_crop_two_threads": paired}


def body_fit(pipeline: Pipeline) -> dict:
    """(b): the refinement of one person, timed (median of 15) and its tensor calls counted."""
    image = load_image(DATA / "demo_images" / "astronaut.png")
    people = [p for p in pipeline.backend.detect(image.rgb).people if p.body is not None]
    camera = pipeline.camera(image.rgb.shape[1], image.rgb.shape[0])
    targets = targets_from_detections(people, pipeline.config.fit.weigh_unseen, pipeline.config.fit.pose_hand_point_weight)
    steps = pipeline.config.refine_iterations
    with compute_threads(1):
        guess = pipeline.config.estimator(targets, camera)
        times = []
        for _ in range(15):
            start = time.perf_counter()
            pipeline.fitter.fit(targets, camera, guess, iterations=steps)
            times.append((time.perf_counter() - start) * 1000)
        with torch.profiler.profile() as prof:
            pipeline.fitter.fit(targets, camera, guess, iterations=steps)
    calls = sum(1 for e in prof.events() if e.cpu_parent is None and e.name.startswith("aten::"))
    ms = statistics.median(times)
    return {"steps": list(steps), "ms": ms, "ms_per_step": ms / sum(steps), "tensor_calls": calls,
            "tensor_calls_per_step": calls / sum(steps)}


def hand_post_optimization(pipeline: Pipeline) -> dict:
    """(c): all hands of a photo through the IK net alone and with 20 post-optimization steps."""
    photos = []
    for path in DEMO_PHOTOS:
        people = [p for p in pipeline.backend.detect(load_image(path).rgb).people if p.body is not None and p.hands]
        if people:
            photos.append(people)
    result = {"photos_with_hands": len(photos)}
    for steps in (0, 20):
        solver = HandSolver(refine=steps > 0, iterations=steps)
        solver.solve_people(photos[0])  # warm-up: loads the IK nets
        with compute_threads(1):
            start = time.perf_counter()
            for people in photos:
                solver.solve_people(people)
        result[f"ms_per_photo_{steps}_steps"] = (time.perf_counter() - start) * 1000 / len(photos)
    return result


def video_hand_retries(frames: int = 60) -> list[dict]:
    """(d): the wrist-search trade of ``hand_retry_every`` on the sample video."""
    rows = []
    for every in (1, 2, 3, 4):
        searched, hits, hands, people, seconds = 0, 0, 0, 0, 0.0
        lock = threading.Lock()
        with MediaPipeBackend(MediaPipeConfig(video=True, hand_retry_every=every)) as backend, \
                VideoReader(DATA / "demo_images" / "sample_video.mp4") as reader:
            search = backend._hands_in

            def counted(image, crop, search=search):
                nonlocal searched, hits
                found = search(image, crop)
                with lock:
                    searched, hits = searched + 1, hits + bool(found)
                return found

            backend._hands_in = counted
            for frame in reader:
                if frame.index >= frames:
                    break
                start = time.perf_counter()
                found = backend.detect(frame.rgb).people
                seconds += time.perf_counter() - start
                people += len(found)
                hands += sum(len(p.hands) for p in found)
        rows.append({"hand_retry_every": every, "wrist_searches": searched, "searches_finding_a_hand": hits,
                     "hands_kept": hands, "person_frames": people, "perception_ms_per_person_frame": seconds * 1000 / people})
        print(rows[-1], flush=True)
    return rows


def one_person_chain(pipeline: Pipeline, repeats: int = 3, statistic: Callable[[list[float]], float] = statistics.median) -> list[dict]:
    """(f): per one-person photo, the chain pose call -> slower wrist search -> hand IK + fit + mesh,
    each alone, and the pipeline's whole run(); each time the ``statistic`` of ``repeats`` runs."""
    rows = []
    with MediaPipeBackend(MediaPipeConfig(max_people=1, face_seeds=False, hands=False)) as single:
        for path in DEMO_PHOTOS + HAND_PHOTOS:
            image = load_image(path)
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                result = pipeline.run(image)
                runs.append((time.perf_counter() - start) * 1000)
            if len(result.people) != 1:
                continue
            total = statistic(runs)
            pose_ms = statistic([_timed(lambda: single.detect_pose(image.rgb)) for _ in range(repeats)])
            people = single.detect_pose(image.rgb)
            if len(people) != 1:
                continue
            searches = _HandSearches(single, image.rgb)
            searches.start(people[0])
            crops = [crop for crop, hits in searches.started[0][1].values() if hits.result() is not None]
            wrist_ms = max((statistic([_timed(lambda c=c: single._hands_in(image.rgb, c)) for _ in range(repeats)])
                            for c in crops), default=0.0)
            after = hands_fit_mesh_ms(pipeline, image, repeats, statistic)
            rows.append({"photo": path.relative_to(DATA / "demo_images").as_posix(), "pose_ms": pose_ms,
                         "wrist_searches": len(crops), "slower_wrist_search_ms": wrist_ms,
                         "hands_fit_mesh_ms": after, "chain_ms": pose_ms + wrist_ms + after, "pipeline_ms": total,
                         "hands_found": len(result.people[0].hands)})
            print(rows[-1], flush=True)
    return rows


def hands_fit_mesh_ms(pipeline: Pipeline, image, repeats: int, statistic: Callable[[list[float]], float]) -> float:
    """Hand IK + body fit + mesh of the photo's people, after one perception (``statistic`` of ``repeats``)."""
    perception = pipeline.backend.detect(image.rgb)
    timings = [pipeline.run_with_fit(image, perception=perception)[0].timings_ms for _ in range(repeats)]
    return statistic([t["hands"] + t["fit"] + t["mesh"] for t in timings])


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


_FIRST_FIT = """
import time
from hmrkit.fitting.targets import targets_from_detections
from hmrkit.io.images import load_image
from hmrkit.pipeline import Pipeline
pipeline = Pipeline()
image = load_image({path!r})
people = [p for p in pipeline.backend.detect(image.rgb).people if p.body is not None]
targets = targets_from_detections(people)
camera = pipeline.camera(image.rgb.shape[1], image.rgb.shape[0])
guess = pipeline.config.estimator(targets, camera)
for _ in range(2):
    start = time.perf_counter()
    pipeline.fitter.fit(targets, camera, guess, iterations=pipeline.config.refine_iterations)
    print("fit_ms", (time.perf_counter() - start) * 1000)
"""


def first_fit() -> dict:
    """(e): the first fit of a fresh process (ms), with numba's cache empty (the kernels compile)
    and then filled by that run (they load), and the second fit of the same process."""
    code = _FIRST_FIT.format(path=str(DATA / "demo_images" / "astronaut.png"))
    result = {}
    with tempfile.TemporaryDirectory() as cache:
        for name in ("empty_cache", "filled_cache"):
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
            first, second = (float(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("fit_ms "))
            result[f"first_fit_ms_{name}"], result[f"second_fit_ms_{name}"] = first, second
    print(result, flush=True)
    return result


def main() -> None:
    torch.set_num_threads(1)
    compile_times = first_fit()
    crops = hand_crops()
    print(crops, flush=True)
    with Pipeline() as pipeline:
        fit = body_fit(pipeline)
        print(fit, flush=True)
        hands = hand_post_optimization(pipeline)
        print(hands, flush=True)
        chain = one_person_chain(pipeline)
    video = video_hand_retries()
    payload = {"machine": machine(with_load=True), "command": "python benchmarks/bench_speed_parts.py",
               "hand_crops": crops, "body_fit": fit, "hand_post_optimization": hands, "video_hand_retries": video,
               "first_fit": compile_times, "one_person_chain": chain}
    lines = ["# Where the time of one person goes", "", f"Machine: {payload['machine']}. Command: `{payload['command']}`.", "",
             f"(a) MediaPipe Hands on the {crops['crops']} wrist crops of the demo photos ({crops['found']} with a hand): "
             f"{crops['ms_per_crop_alone']:.1f} ms per crop one at a time, {crops['ms_per_crop_two_threads']:.1f} ms per crop "
             "two at a time on two threads.", "",
             f"(b) Body fit, astronaut.png (one person), HKMR's guess + {tuple(fit['steps'])} Levenberg-Marquardt steps: "
             f"{fit['ms']:.0f} ms (median of 15), {fit['ms_per_step']:.1f} ms and {fit['tensor_calls_per_step']:.0f} tensor calls "
             f"per step ({fit['tensor_calls']} in all).", "",
             f"(e) The same fit as the first of a fresh process: {compile_times['first_fit_ms_empty_cache'] / 1000:.1f} s with "
             f"numba's cache empty (the fit's kernels compile, once per machine), {compile_times['first_fit_ms_filled_cache']:.0f} ms "
             f"with it filled; the second fit of the process {compile_times['second_fit_ms_filled_cache']:.0f} ms.", "",
             f"(c) Hand IK of all hands of a photo ({hands['photos_with_hands']} demo photos with hands): IK net alone "
             f"{hands['ms_per_photo_0_steps']:.0f} ms, with 20 post-optimization steps {hands['ms_per_photo_20_steps']:.0f} ms per photo.", "",
             "(d) Video, first 60 frames of sample_video.mp4, `MediaPipeConfig.hand_retry_every`:", "",
             "| hand_retry_every | wrist searches | finding a hand | hands kept | perception ms per person-frame |", "|---|---|---|---|---|"]
    lines += [f"| {r['hand_retry_every']} | {r['wrist_searches']} | {r['searches_finding_a_hand']} | {r['hands_kept']} | "
              f"{r['perception_ms_per_person_frame']:.0f} |" for r in video]
    lines += ["", "(f) Photos of one person: the chain pose call -> slower wrist search -> hand IK + fit + mesh, each "
              "timed alone (median of 3), against the pipeline's whole run (median of 3), ms:", "",
              "| photo | pose call | wrist searches | slower wrist search | hand IK + fit + mesh | chain | pipeline |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['photo']} | {r['pose_ms']:.0f} | {r['wrist_searches']} | {r['slower_wrist_search_ms']:.0f} | "
              f"{r['hands_fit_mesh_ms']:.0f} | {r['chain_ms']:.0f} | {r['pipeline_ms']:.0f} |" for r in chain]
    lines += [f"| median | {statistics.median(r['pose_ms'] for r in chain):.0f} | | "
              f"{statistics.median(r['slower_wrist_search_ms'] for r in chain):.0f} | "
              f"{statistics.median(r['hands_fit_mesh_ms'] for r in chain):.0f} | {statistics.median(r['chain_ms'] for r in chain):.0f} | "
              f"{statistics.median(r['pipeline_ms'] for r in chain):.0f} |"]
    write("speed_parts", payload, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
