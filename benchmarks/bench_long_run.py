"""Memory over a long video: ``hmrkit run`` on the sample video looped, its resident memory sampled.

    python benchmarks/bench_long_run.py [--loops 5] [--every 1.0]

The sample video (257 frames, 1280 x 720) is written ``--loops`` times end to end into one file
(OpenCV, mp4v), then ``hmrkit run`` (JSON only and the overlay video: ``--no-npz --mesh-format
none``) runs on it in a fresh process while this script reads its VmRSS from /proc every
``--every`` seconds. Bounded memory shows as a flat curve after the first frames: the table gives
the resident memory at each tenth of the run and the peak. Results:
benchmarks/results/long_video_memory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import DATA, ROOT, machine, write  # the script's own folder

SAMPLE = DATA / "demo_images" / "sample_video.mp4"


def video_fps(source: Path) -> float:
    import cv2

    reader = cv2.VideoCapture(str(source))
    fps = reader.get(cv2.CAP_PROP_FPS) or 30.0
    reader.release()
    return fps


def looped(source: Path, loops: int, target: Path) -> int:
    import cv2

    fps = video_fps(source)
    reader = cv2.VideoCapture(str(source))
    frames = []
    while True:
        ok, frame = reader.read()
        if not ok:
            break
        frames.append(frame)
    reader.release()
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for _ in range(loops):
        for frame in frames:
            writer.write(frame)
    writer.release()
    return len(frames) * loops


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=5)
    parser.add_argument("--every", type=float, default=1.0)
    parser.add_argument("--render", action="store_true", help="only rewrite the markdown from the committed JSON")
    args = parser.parse_args(argv)
    if args.render:
        path = ROOT / "benchmarks" / "results" / "long_video_memory.json"
        payload = json.loads(path.read_text())
        payload.setdefault("loops", args.loops)
        payload.setdefault("every_s", args.every)
        payload.setdefault("fps", video_fps(SAMPLE))
        (path.with_suffix(".md")).write_text(render(payload))
        return
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "long.mp4"
        frames = looped(SAMPLE, args.loops, clip)
        command = [sys.executable, "-m", "hmrkit.cli", "run", str(clip), "--out", f"{folder}/out", "--no-npz", "--mesh-format", "none"]
        start = time.perf_counter()
        # stderr to a file, not a pipe: the progress bar of a long run fills a pipe's buffer and blocks hmrkit
        log = Path(folder) / "stderr.txt"
        with log.open("wb") as err_file:
            run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err_file)
            samples: list[tuple[float, float, int]] = []  # seconds, MB, frames written so far
            frames_dir = Path(folder) / "out" / "long"
            while run.poll() is None:
                mb = rss_mb(run.pid)
                if mb is not None:
                    done = len(list(frames_dir.glob("frame_*.json"))) if frames_dir.is_dir() else 0
                    samples.append((round(time.perf_counter() - start, 2), round(mb, 1), done))
                time.sleep(args.every)
        seconds = time.perf_counter() - start
        err = log.read_text(errors="replace")
        if run.returncode != 0:
            raise SystemExit(f"hmrkit run failed: {err.strip().splitlines()[-1:]}")
    payload = {"machine": machine(with_load=True), "command": f"python benchmarks/bench_long_run.py --loops {args.loops} --every {args.every}",
               "loops": args.loops, "every_s": args.every, "frames": frames, "fps": video_fps(SAMPLE), "seconds": round(seconds, 1),
               "peak_rss_mb": max(mb for _, mb, _ in samples), "samples_seconds_mb_frames": samples}
    write("long_video_memory", payload, render(payload))


def render(payload: dict) -> str:
    """The markdown of a payload (``--render`` redoes it from the committed JSON); adds the growth to it."""
    frames, seconds, samples, peak = payload["frames"], payload["seconds"], payload["samples_seconds_mb_frames"], payload["peak_rss_mb"]
    lines = ["# Memory over a long video", "",
             f"Machine: {payload['machine']}. Command: `{payload['command']}`. The sample video looped {payload['loops']} times "
             f"({frames} frames, 1280 x 720, {payload['fps']:g} frames/s: {frames / payload['fps'] / 60:.1f} minutes), `hmrkit run --no-npz --mesh-format none` in a fresh process: {seconds:.0f} s, "
             f"{frames / seconds:.1f} frames/s. Resident memory (VmRSS) read every {payload['every_s']} s.", "",
             "| share of the frames written | frames | seconds | RSS (MB) |", "|---|---|---|---|"]
    for tenth in range(1, 11):
        target = frames * tenth / 10
        sample = next((s for s in samples if s[2] >= target), samples[-1])
        lines.append(f"| {tenth * 10} % | {sample[2]} | {sample[0]:.0f} | {sample[1]:.0f} |")
    first_tenth = next((s for s in samples if s[2] >= frames / 10), samples[-1])
    later = [mb for _, mb, done in samples if done >= first_tenth[2]]
    payload["growth_after_first_tenth_mb"] = round(max(later) - first_tenth[1], 1)
    lines += ["", f"Peak: {peak:.0f} MB. Once a tenth of the frames was written ({first_tenth[1]:.0f} MB then), the "
              f"resident memory rose by {payload['growth_after_first_tenth_mb']:.0f} MB at most over the rest of the run."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
