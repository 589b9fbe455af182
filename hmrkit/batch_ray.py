"""``hmrkit run --ray [ADDRESS]``: the inputs of one run spread over Ray workers.

Each worker is a Ray actor holding one :class:`~hmrkit.pipeline.Pipeline` (the models load once per
worker) and takes inputs one at a time: a photo is fitted and written with the same function as
the serial run (:func:`hmrkit.photos.fit_and_write`), a video with :func:`hmrkit.video.run_video`.
The caller decides what to do (the same skip rules as the serial run), the workers write the same
files under the same ``--out`` folder, which every worker must see (a local cluster does; on a
cluster of several machines, a shared filesystem).

A file that fails is reported in one line and fails alone: input errors come back as messages, and
a worker process that dies on a file (a crash in native code) is replaced by a new one and the
batch goes on. Ray is optional (``pip install "ray==2.60.0"``); without it the run stops with one line.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

LOCAL = "local"  # --ray without an address: a local cluster started for this run
RAY_VERSION = "2.60.0"


HOST_PORT = r"([\w.-]+):(\d+)"  # a cluster address: host name or IP, and port


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached: said in one line."""


def looks_like_address(text: str) -> bool:
    """What ``--ray`` takes as a cluster address rather than as the first input path."""
    return text in (LOCAL, "auto") or text.startswith("ray://") or bool(re.fullmatch(HOST_PORT, text)) and not Path(text).exists()


@dataclass(frozen=True)
class Job:
    """One input: a photo or a video, and where its outputs go (``out / stem``)."""

    path: Path
    stem: Path
    video: bool = False


@dataclass(frozen=True)
class Outcome:
    """What a worker says about one job: ``error`` is the one-line message of a failed input."""

    job: Job
    error: str | None = None
    summary: str = ""


class _Worker:
    """The body of the Ray actor: one pipeline, built from a configuration without its estimator
    (the worker loads the shipped one: weights travel as files, not through Ray's object store)."""

    def __init__(self, config, estimator_class, options, out: str, max_frames: int | None) -> None:
        import torch

        from hmrkit.pipeline import Pipeline

        torch.set_num_threads(1)  # one core a worker: Ray runs one worker per CPU
        self.config = config if estimator_class is None else replace(config, estimator=estimator_class.load())
        self.options, self.out, self.max_frames = options, Path(out), max_frames
        self.pipeline = None  # made at the first photo: a worker given only videos never needs it
        self._pipeline_class = Pipeline

    def run(self, job: Job) -> Outcome:
        from hmrkit.io.images import load_image
        from hmrkit.photos import INPUT_ERRORS, fit_and_write
        from hmrkit.video import run_video

        try:
            if job.video:
                frames = run_video(job.path, self.out / job.stem.parent, job.stem.name, self.config, self.options,
                                   max_frames=self.max_frames)
                return Outcome(job, summary=f"{frames} frame(s)")
            if self.pipeline is None:
                self.pipeline = self._pipeline_class(self.config)
            loaded = load_image(job.path)
            result, written = fit_and_write(self.pipeline, loaded, job.path, self.out, job.stem, self.options)
            return Outcome(job, summary=f"{len(result.people)} person(s), {len(result.hands_only)} lone hand(s) -> "
                                        + ", ".join(str(p) for p in written.values()))
        except INPUT_ERRORS as error:
            text = str(error)
            return Outcome(job, error=text if str(job.path) in text else f"{job.path}: {text}")
        except Exception as error:  # a bug on one input still fails that input only
            return Outcome(job, error=f"{job.path}: {type(error).__name__}: {error}")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable(f'--ray needs Ray: pip install "ray=={RAY_VERSION}"') from None
    return ray


def _unreachable(address: str, timeout: float = 5.0) -> str | None:
    """Why nothing can be reached at a ``host:port`` or ``ray://host:port`` address, else None."""
    match = re.fullmatch(f"(?:ray://)?{HOST_PORT}", address)
    if match is None:
        return None
    try:
        with socket.create_connection((match[1], int(match[2])), timeout):
            return None
    except OSError as error:
        return f"nothing answers at {match[1]}:{match[2]} ({error.strerror or error})"


def start_ray(address: str, workers: int | None):
    """Ray, connected: a local cluster of ``workers`` CPUs (default: this machine's) for ``LOCAL``,
    else the cluster at ``address``. Returns (ray, number of workers to start)."""
    ray = _import_ray()
    logging.getLogger("ray").setLevel(logging.ERROR)  # its start-up notices: hmrkit's lines only
    env = {"env_vars": {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}}
    unreachable = _unreachable(address)
    if unreachable:  # Ray itself retries an address nobody answers at for minutes
        raise RayUnavailable(f"--ray {address}: cannot reach the cluster: {unreachable}")
    try:
        if address == LOCAL:
            ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, runtime_env=env)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False, runtime_env=env)
    except Exception as error:  # ConnectionError, ValueError, RuntimeError, ... by Ray's version
        hint = ""
        if address != LOCAL and os.environ.get("RAY_AUTH_MODE", "disabled") == "disabled":
            hint = ("; a cluster started with token authentication (`ray start`'s default since Ray 2.59) needs "
                    "RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN, or the file ~/.ray/auth_token)")
        raise RayUnavailable(f"--ray {address}: cannot start or reach the cluster: {str(error).splitlines()[0]}{hint}") from None
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return ray, max(1, min(workers or cpus, cpus))


def run_on_ray(jobs: list[Job], config, options, out: Path, address: str = LOCAL, workers: int | None = None,
               max_frames: int | None = None, report: Callable[[str], None] = print, progress: bool = True,
               worker_class: type = None, on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Every job on Ray workers; one Outcome per job, in the order they finished. Failed inputs are
    reported through ``report`` as they come, each outcome to ``on_outcome`` (the run report: exact
    when the run is interrupted); a progress bar counts the inputs done. ``worker_class``:
    :class:`_Worker` or a subclass (the tests make one that dies on a chosen input)."""
    from tqdm import tqdm

    if not jobs:
        return []
    ray, count = start_ray(address, workers)
    try:
        estimator = getattr(config, "estimator", None)
        bare = replace(config, estimator=None)
        actor = ray.remote(num_cpus=1, max_restarts=0)(worker_class or _Worker)
        make = lambda: actor.remote(bare, None if estimator is None else type(estimator), options, str(out), max_frames)  # noqa: E731
        pool = [make() for _ in range(min(count, len(jobs)))]
        queue, running, outcomes = list(reversed(jobs)), {}, []
        for worker in pool:
            if queue:
                job = queue.pop()
                running[worker.run.remote(job)] = (worker, job)
        bar = tqdm(total=len(jobs), unit="input", disable=not progress or len(jobs) < 2, file=sys.stderr)
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            worker, job = running.pop(done[0])
            try:
                outcome = ray.get(done[0])
            except ray.exceptions.RayActorError as error:  # the worker process died on this input
                outcome = Outcome(job, error=f"{job.path}: the worker processing it died ({type(error).__name__})")
                worker = make()
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
            if outcome.error is not None:
                report(f"hmrkit: error: {outcome.error}")
            elif len(jobs) < 2 or job.video:  # as the serial run says it
                report(f"hmrkit: {job.path}: {outcome.summary}")
            bar.update(1)
            if queue:
                job = queue.pop()
                running[worker.run.remote(job)] = (worker, job)
        bar.close()
        return outcomes
    finally:
        ray.shutdown()
