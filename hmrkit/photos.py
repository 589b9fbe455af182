"""Many photos through one pipeline: the next photo is read and its people detected on a second
thread while the current one is fitted and written, as video frames are (:mod:`hmrkit.video`).

One photo at a time leaves a core idle during the fit (single-threaded) and the writing;
MediaPipe's calls leave the interpreter free, so the next photo's perception fills it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from hmrkit.errors import HmrkitError
from hmrkit.io.images import ImageError, LoadedImage, VideoError, load_image
from hmrkit.perception.backend import PerceptionBackend
from hmrkit.perception.types import Perception

# what reading, fitting or writing one input (photo or video) may raise without it being a bug:
# reported in one line, and the batch goes on
INPUT_ERRORS = (HmrkitError, ImageError, VideoError, FileExistsError, OSError, ValueError)


@dataclass(frozen=True)
class DetectedPhoto:
    """A photo as read, with the people perception found in it and how long that took."""

    loaded: LoadedImage
    perception: Perception
    perception_ms: float


def detected_ahead(paths: list[Path], backend: PerceptionBackend) -> Iterator[tuple[Path, DetectedPhoto | Exception]]:
    """Each path with its photo read and detected, or with the error that stopped that; the next
    photo is read and detected while the caller handles this one. Other exceptions propagate."""

    def detect(path: Path) -> DetectedPhoto | Exception:
        try:
            loaded = load_image(path)
            start = time.perf_counter()
            perception = backend.detect(loaded.rgb)
            return DetectedPhoto(loaded, perception, (time.perf_counter() - start) * 1000)
        except INPUT_ERRORS as error:
            return error

    with ThreadPoolExecutor(1, thread_name_prefix="hmrkit-photos") as ahead:
        upcoming = ahead.submit(detect, paths[0]) if paths else None
        for k, path in enumerate(paths):
            detected = upcoming.result()
            upcoming = ahead.submit(detect, paths[k + 1]) if k + 1 < len(paths) else None
            yield path, detected


def fit_and_write(pipeline, loaded: LoadedImage, source: Path, out: Path, stem: Path, options,
                  perception: Perception | None = None, perception_ms: float | None = None) -> tuple:
    """One photo fitted and its files written under ``out / stem``, as ``hmrkit run`` does it (in its
    own loop and on Ray workers, :mod:`hmrkit.batch_ray`); (result, written paths). A photo where
    nobody is found raises :class:`HmrkitError` (an input error: the batch goes on).

    While its files are written a marker ``.<stem>.writing`` lies beside them: a run stopped there
    (Ctrl-C) leaves it, and the next run, which redoes the photo since some of its files are
    missing, may then replace the ones it had written (each file is whole: written, then renamed).
    """
    from hmrkit.writers import write_result

    result = pipeline.run_with_fit(loaded, source=str(source), perception=perception)[0]
    if perception_ms is not None:
        result.timings_ms["perception"] = perception_ms
    if not result.people and not result.hands_only:
        raise HmrkitError("no person found")
    target = out / stem.parent
    target.mkdir(parents=True, exist_ok=True)
    marker = target / f".{stem.name}.writing"
    if marker.exists():  # an interrupted run's files of this photo: ours to finish
        options = replace(options, overwrite=True)
    marker.touch()
    try:
        written = write_result(result, loaded.rgb, target, stem.name, options)
    except Exception:  # an error, not an interruption: what exists stays the user's (--overwrite replaces it)
        marker.unlink(missing_ok=True)
        raise
    marker.unlink()
    return result, written
