"""VideoReader: RGB frames with index, time and fps; one clear VideoError for a bad file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hmrkit.io import VideoError, VideoReader

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SAMPLE = DATA / "demo_images" / "sample_video.mp4"

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (40, 40, 40)]


def _write_video(path: Path, fps: float = 12.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened(), "OpenCV cannot write MJPG here"
    for rgb in COLOURS:
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:] = rgb[::-1]  # OpenCV writes BGR
        writer.write(frame)
    writer.release()


def test_synthetic_video_frames_are_rgb(tmp_path: Path) -> None:
    p = tmp_path / "v.avi"
    _write_video(p)
    with VideoReader(p) as video:
        assert video.fps == pytest.approx(12.0)
        assert video.size == (64, 48)
        frames = list(video)
    assert [f.index for f in frames] == list(range(len(COLOURS)))
    assert [f.time_s for f in frames] == pytest.approx([i / 12.0 for i in range(len(COLOURS))])
    for f, rgb in zip(frames, COLOURS):
        assert f.rgb.shape == (48, 64, 3) and f.rgb.dtype == np.uint8
        assert np.abs(f.rgb.reshape(-1, 3).mean(axis=0) - rgb).max() < 12


def test_video_max_side(tmp_path: Path) -> None:
    p = tmp_path / "v.avi"
    _write_video(p)
    with VideoReader(p, max_side=32) as video:
        first = next(iter(video))
    assert first.rgb.shape == (24, 32, 3)


def test_video_iterates_once(tmp_path: Path) -> None:
    p = tmp_path / "v.avi"
    _write_video(p)
    video = VideoReader(p)
    assert len(list(video)) == len(COLOURS)
    with pytest.raises(VideoError, match="once"):
        list(video)


def test_missing_and_unreadable_video(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="not found"):
        VideoReader(tmp_path / "none.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="0 bytes"):
        VideoReader(empty)
    text = tmp_path / "text.mp4"
    text.write_text("not a video\n" * 100)
    with pytest.raises(VideoError, match="cannot open|no decodable"):
        VideoReader(text)


def test_sample_video() -> None:
    if not SAMPLE.is_file():
        pytest.skip(f"demo video absent: {SAMPLE} (needs ../shared/data)")
    with VideoReader(SAMPLE) as video:
        assert video.fps > 0 and video.size == (1280, 720)
        frames = []
        for f in video:
            frames.append(f)
            if f.index == 4:
                break
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert all(f.rgb.shape == (720, 1280, 3) for f in frames)
    # a football pitch: green dominates in RGB order (a BGR mix-up would not show this)
    mean = frames[0].rgb.reshape(-1, 3).mean(axis=0)
    assert mean[1] > mean[0] and mean[1] > mean[2]
