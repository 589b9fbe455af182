"""Videos: MediaPipe's tracking mode, fits warm-started from the previous frame, One-Euro
smoothing of the parameters, per-frame results and an overlay video.

A run stopped part-way (Ctrl-C) leaves its frames' results and the overlay of those frames in a
hidden temporary file; the next run without ``--overwrite`` resumes after the last frame whose
overlay was written (:func:`frames_already_done`), keeping every file written before."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import cv2

from hmrkit.io.images import VideoFrame, VideoReader
from hmrkit.perception.types import Perception
from hmrkit.pipeline import Pipeline, PipelineConfig
from hmrkit.results import ImageResult
from hmrkit.smoothing import FitSmoother
from hmrkit.writers import OutputOptions, render_result_overlay, write_result


def video_results(reader: VideoReader, pipeline: Pipeline, source: str,
                  max_frames: int | None = None, start: int = 0) -> Iterator[tuple[VideoFrame, ImageResult]]:
    """Each frame from ``start`` on with its result, in order: ``pipeline`` (made with ``video=True``)
    tracks people, warm-starts each fit from the previous frame's and smooths the parameters
    (One-Euro). Frames before ``start`` are decoded and passed over; ``max_frames`` counts from 0.

    The next frame is decoded and its people detected on a second thread while this frame is
    fitted (and while the caller writes it): MediaPipe's tracking needs only the frames in
    order, not the fits, and its calls leave the interpreter free."""
    frames = iter(reader)

    def detect_next() -> tuple[VideoFrame, Perception, float] | None:
        frame = next(frames, None)
        while frame is not None and frame.index < start:
            frame = next(frames, None)
        if frame is None:
            return None
        began = time.perf_counter()
        perception = pipeline.backend.detect(frame.rgb)
        return frame, perception, (time.perf_counter() - began) * 1000

    smoother, previous = FitSmoother(), None
    dt = 1.0 / reader.fps
    with ThreadPoolExecutor(1, thread_name_prefix="hmrkit-frames") as ahead:
        done = start
        upcoming = ahead.submit(detect_next) if max_frames is None or done < max_frames else None
        while upcoming is not None and (item := upcoming.result()) is not None:
            frame, perception, perception_ms = item
            done += 1
            upcoming = ahead.submit(detect_next) if max_frames is None or done < max_frames else None
            if previous is None:  # nobody tracked: start the filters afresh
                smoother = FitSmoother()
            result, previous = pipeline.run_with_fit(frame.rgb, source, frame.index, init=previous,
                                                     smoother=lambda f: smoother(f, dt), perception=perception)
            result.timings_ms["perception"] = perception_ms
            yield frame, result


def overlay_video_path(out_dir: Path, stem: str) -> Path:
    """The overlay video of a finished run: its existence is what marks the video done."""
    return out_dir / f"{stem}_overlay.mp4"


def _partial_overlay(overlay_path: Path) -> Path:
    return overlay_path.with_name(f".{overlay_path.name}.tmp.mp4")


def _resume_source(overlay_path: Path) -> Path:
    return overlay_path.with_name(f".{overlay_path.name}.resume.mp4")


def frames_already_done(path: Path, out_dir: Path, stem: str) -> int:
    """How many first frames of ``path`` a stopped run finished: each has its overlay frame in the
    hidden partial overlay and its results in ``<stem>/`` (the results are written before the
    overlay frame), and the last one's JSON names this source. 0 when there is nothing to resume."""
    overlay_path = overlay_video_path(out_dir, stem)
    partial = next((p for p in (_resume_source(overlay_path), _partial_overlay(overlay_path)) if p.is_file()), None)
    if partial is None:
        return 0
    capture = cv2.VideoCapture(str(partial))
    frames = 0
    while capture.isOpened() and capture.grab():
        frames += 1
    capture.release()
    last = out_dir / stem / f"frame_{frames - 1:06d}.json"
    try:
        if frames and json.loads(last.read_text()).get("source") == str(path):
            return frames
    except (OSError, ValueError):
        pass
    return 0


def _overlay_writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)


def _carry_over(resume_from: Path, tmp_overlay: Path, fps: float, count: int) -> cv2.VideoWriter:
    """A new partial overlay holding the first ``count`` frames of the stopped run's."""
    capture = cv2.VideoCapture(str(resume_from))
    writer = _overlay_writer(tmp_overlay, fps, (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))))
    for _ in range(count):
        ok, picture = capture.read()
        if not ok:
            break
        writer.write(picture)
    capture.release()
    return writer


def run_video(path: Path, out_dir: Path, stem: str, config: PipelineConfig, options: OutputOptions,
              max_frames: int | None = None) -> int:
    """Write ``<out_dir>/<stem>/frame_NNNNNN.*`` and ``<out_dir>/<stem>_overlay.mp4``; return frames done.

    Without ``options.overwrite``, a run that was stopped part-way is resumed: the frames it
    finished are kept (not fitted again) and their overlay is carried into the new one. People's
    tracks and smoothing start afresh at the resumed frame."""
    frames_dir = out_dir / stem
    overlay_path = overlay_video_path(out_dir, stem)
    if overlay_path.exists() and not options.overwrite:
        raise FileExistsError(f"{overlay_path} already exists (use --overwrite to replace it)")
    frames_dir.mkdir(parents=True, exist_ok=True)
    tmp_overlay, resume_from = _partial_overlay(overlay_path), _resume_source(overlay_path)
    stopped_run = tmp_overlay.exists() or resume_from.exists()
    start = 0 if options.overwrite else frames_already_done(path, out_dir, stem)
    if start and not resume_from.exists():
        tmp_overlay.replace(resume_from)  # kept until its frames are in the new partial overlay
    elif not start and resume_from.exists():
        resume_from.unlink()  # a stopped run's overlay that cannot be resumed (--overwrite, another source)
    # the frames after ``start`` a stopped run left (the one it was writing may be half there) are replaced
    frame_options = replace(options, overlay=False, side_view=False, overwrite=options.overwrite or stopped_run)
    done = start
    writer = None
    with VideoReader(path) as reader, Pipeline(config, video=True) as pipeline:
        try:
            if start:
                writer = _carry_over(resume_from, tmp_overlay, reader.fps, start)
                os.unlink(resume_from)
                print(f"hmrkit: {path}: resuming after frame {start - 1} (the frames before are kept)", file=sys.stderr)
            for frame, result in video_results(reader, pipeline, str(path), max_frames, start=start):
                write_result(result, frame.rgb, frames_dir, f"frame_{frame.index:06d}", frame_options)
                picture = render_result_overlay(result, frame.rgb)
                if writer is None:
                    writer = _overlay_writer(tmp_overlay, reader.fps, (picture.shape[1], picture.shape[0]))
                writer.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
                done += 1
        finally:
            if writer is not None:
                writer.release()  # also when stopped: the partial overlay stays readable for the resume
        if writer is not None:
            tmp_overlay.replace(overlay_path)
    print(f"hmrkit: {path}: {done} frame(s) -> {frames_dir}/, {overlay_path}", file=sys.stderr)
    return done
