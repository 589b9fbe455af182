"""Videos: MediaPipe's tracking mode, fits warm-started from the previous frame, One-Euro
smoothing of the parameters, per-frame results and an overlay video."""

from __future__ import annotations

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
                  max_frames: int | None = None) -> Iterator[tuple[VideoFrame, ImageResult]]:
    """Each frame with its result, in order: ``pipeline`` (made with ``video=True``) tracks people,
    warm-starts each fit from the previous frame's and smooths the parameters (One-Euro).

    The next frame is decoded and its people detected on a second thread while this frame is
    fitted (and while the caller writes it): MediaPipe's tracking needs only the frames in
    order, not the fits, and its calls leave the interpreter free."""
    frames = iter(reader)

    def detect_next() -> tuple[VideoFrame, Perception, float] | None:
        frame = next(frames, None)
        if frame is None:
            return None
        start = time.perf_counter()
        perception = pipeline.backend.detect(frame.rgb)
        return frame, perception, (time.perf_counter() - start) * 1000

    smoother, previous = FitSmoother(), None
    dt = 1.0 / reader.fps
    with ThreadPoolExecutor(1, thread_name_prefix="hmrkit-frames") as ahead:
        upcoming = ahead.submit(detect_next) if max_frames is None or max_frames > 0 else None
        done = 0
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


def run_video(path: Path, out_dir: Path, stem: str, config: PipelineConfig, options: OutputOptions,
              max_frames: int | None = None) -> int:
    """Write ``<out_dir>/<stem>/frame_NNNNNN.*`` and ``<out_dir>/<stem>_overlay.mp4``; return frames done."""
    frames_dir = out_dir / stem
    overlay_path = out_dir / f"{stem}_overlay.mp4"
    if overlay_path.exists() and not options.overwrite:
        raise FileExistsError(f"{overlay_path} already exists (use --overwrite to replace it)")
    frames_dir.mkdir(parents=True, exist_ok=True)
    frame_options = replace(options, overlay=False, side_view=False)
    done = 0
    writer = None
    with VideoReader(path) as reader, Pipeline(config, video=True) as pipeline:
        tmp_overlay = overlay_path.with_name(f".{overlay_path.name}.tmp.mp4")
        try:
            for frame, result in video_results(reader, pipeline, str(path), max_frames):
                write_result(result, frame.rgb, frames_dir, f"frame_{frame.index:06d}", frame_options)
                picture = render_result_overlay(result, frame.rgb)
                if writer is None:
                    h, w = picture.shape[:2]
                    writer = cv2.VideoWriter(str(tmp_overlay), cv2.VideoWriter_fourcc(*"mp4v"), reader.fps, (w, h))
                writer.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
                done += 1
        finally:
            if writer is not None:
                writer.release()
        if writer is not None:
            tmp_overlay.replace(overlay_path)
    print(f"hmrkit: {path}: {done} frame(s) -> {frames_dir}/, {overlay_path}", file=sys.stderr)
    return done
