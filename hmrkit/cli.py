"""The ``hmrkit`` command: a thin layer over :class:`hmrkit.Pipeline`.

    hmrkit run PATH... --out DIR     photos, folders (recursive) and videos
    hmrkit export DIR [--format glb,bvh,fbx]   rigged, animated files from the results in DIR
    hmrkit doctor                    check the installation, model assets and cache
    hmrkit train hkmr|hand-ik|pose-prior|tokenizer|bpac [OPTIONS]   retrain a shipped model (options: --help)
    hmrkit --version

Every failure is one line on stderr; the batch goes on; the exit status is 1 if any input
failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import NoReturn

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def _quiet_native_logs() -> None:
    """MediaPipe/TensorFlow-Lite print setup chatter from native code straight to file
    descriptor 2; users want hmrkit's lines only. Python's ``sys.stderr`` moves to a copy of
    the terminal's descriptor and descriptor 2 goes to /dev/null (``HMRKIT_VERBOSE=1`` keeps all)."""
    warnings.filterwarnings("ignore")
    if os.environ.get("HMRKIT_VERBOSE"):
        return
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    sys.stderr = os.fdopen(terminal, "w", buffering=1)
    os.dup2(devnull, 2)
    os.close(devnull)


def _say(message: str) -> None:
    """A line on stderr that does not tear a progress bar."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def _refine_steps(text: str | None) -> tuple[int, int] | None:
    """``"A,B"`` -> (A, B), each a whole number from 0 to 100; None when absent or malformed."""
    parts = [] if text is None else text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) <= 100 for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def _limbs(text: str):
    """``--limbs``: "auto" -> None (classified), "intact" or a statement like ``left_leg=lower_leg`` -> a LimbStatus."""
    from hmrkit.body.limbs import LimbStatus, parse_limbs

    text = text.strip()
    return None if text == "auto" else LimbStatus.intact() if text == "intact" else parse_limbs(text)


def _error(message: str) -> None:
    _say(f"hmrkit: error: {message}")


def _input_error(path: Path, error: Exception) -> str:
    text = str(error)
    text = text if str(path) in text else f"{path}: {text}"
    _error(text)
    return text


def build_parser() -> argparse.ArgumentParser:
    from hmrkit import __version__
    from hmrkit.hand_estimator_stage import HandEstimator

    parser = argparse.ArgumentParser(prog="hmrkit", description="3D human meshes from photos and videos, offline on a CPU.")
    parser.add_argument("--version", action="version", version=f"hmrkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="reconstruct people in images, folders and videos")
    run.add_argument("paths", nargs="+", type=Path, help="image files, folders (searched recursively) or video files")
    run.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: out)")
    run.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip inputs already done)")
    run.add_argument("--mesh-format", choices=["glb", "obj", "ply", "none"], default="glb", help="mesh file format (default glb)")
    run.add_argument("--no-json", action="store_true", help="do not write <stem>.json")
    run.add_argument("--no-npz", action="store_true", help="do not write <stem>.npz")
    run.add_argument("--no-overlay", action="store_true", help="do not render the overlay PNG")
    run.add_argument("--side-view", action="store_true", help="also render a side view PNG")
    run.add_argument("--max-people", type=int, default=64, help="most people per image (default 64; the result notes when it is reached)")
    run.add_argument("--fov", type=float, default=None,
                     help="camera field of view along the long side, degrees (default: the photo's EXIF focal length, else 60)")
    run.add_argument("--intrinsics", default=None, metavar="FX,FY,CX,CY",
                     help="the camera's focal lengths and principal point in pixels of the original image(s) and video "
                          "frames (default: the photo's EXIF focal length, else a 60 degree field of view)")
    run.add_argument("--body-model", choices=["anny", "smpl", "smplx"], default="anny",
                     help="body model (anny: embedded, free for any use; smpl/smplx: your own licensed files, "
                          "with --model-dir)")
    run.add_argument("--model-dir", type=Path, default=None,
                     help="folder holding your SMPL or SMPL-X files (e.g. SMPL_NEUTRAL.pkl, smplx/SMPLX_NEUTRAL.npz); "
                          "hmrkit never ships or downloads them")
    run.add_argument("--estimator", choices=["optimization", "hkmr"], default=None,
                     help="body estimator: the learned HKMR regressor then a short refinement (default with "
                          "Anny), or the optimization from MediaPipe's 3D landmarks (default with smpl/smplx)")
    run.add_argument("--no-refine", action="store_true", help="with --estimator hkmr: skip the refinement (faster)")
    run.add_argument("--refine-steps", default=None, metavar="A,B",
                     help="with --estimator hkmr: Levenberg-Marquardt steps of the refinement's 3D and 2D stages "
                          "(default 2,15; fewer are faster and less accurate: docs/hkmr.md, Speed)")
    run.add_argument("--hand-refine", type=int, default=0, metavar="STEPS",
                     help="hand post-optimization steps after the IK net (default 0: the IK net alone; 20 in the paper)")
    run.add_argument("--hand-estimator", choices=[e.value for e in HandEstimator], default=HandEstimator.MEDIAPIPE.value,
                     help="hand landmarks from MediaPipe Hands (default) or the Lite I2L MeshNet trained on synthetic hands "
                          "(far less accurate on real hands so far: docs/lite_i2l.md)")
    run.add_argument("--hand-fallback", action="store_true",
                     help="with mediapipe: the Lite I2L network on the wrists where MediaPipe finds no hand (off by default)")
    run.add_argument("--limbs", default="auto", metavar="auto|intact|LIMB=LEVEL,...",
                     help="limb differences: auto (default: BPAC-Net decides per person), intact (every limb drawn), "
                          "or what you know for everyone in the inputs, e.g. left_leg=lower_leg,right_arm=hand (limbs: left_arm, right_arm, left_leg, "
                          "right_leg; arm levels hand, forearm, arm; leg levels foot, lower_leg, leg)")
    run.add_argument("--limb-threshold", type=float, default=None, metavar="P",
                     help="with --limbs auto: call a limb absent when BPAC-Net's P(present) is below P, between 0 and 1 "
                          "(default: the model's calibrated threshold, 0.0767; higher finds more absent limbs and calls more "
                          "intact people amputees: the measured trade-off is in docs/ajahr.md)")
    run.add_argument("--pose-tokenizer", action="store_true",
                     help="with --estimator hkmr: pass HKMR's guess through AJAHR's pose tokenizer (the amputee codebook for "
                          "people with an absent limb) before the refinement (off by default: docs/ajahr.md)")
    run.add_argument("--hand-adapter", action=argparse.BooleanOptionalAction, default=None,
                     help="with --estimator hkmr: HMR-Adapter between HKMR's guess and the fit (body path on elbows and "
                          "wrists; fingers and wrist of hands MediaPipe missed); default: PipelineConfig's (docs/hmr_adapter.md)")
    run.add_argument("--hand-adapter-paths", default="body,hands", metavar="body,hands",
                     help="with --hand-adapter: the paths it applies, body and/or hands (default both)")
    run.add_argument("--device", default="cpu", help="torch device (default cpu)")
    run.add_argument("--max-frames", type=int, default=None, help="videos: stop after this many frames")
    run.add_argument("--report", type=Path, default=None, metavar="FILE",
                     help="write a JSON report: every input's status (done, skipped, failed with its error, not_run "
                          "when interrupted), also after Ctrl-C")
    run.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                     help="spread the inputs over Ray workers: a local cluster (no ADDRESS), or the cluster at ADDRESS "
                          "(auto, host:port, ray://host:port); needs pip install ray; same files and skip rules")
    run.add_argument("--ray-workers", type=int, default=None, metavar="N",
                     help="with --ray: workers (default: one per CPU of the cluster)")

    export = sub.add_parser("export", help="rigged and animated files (glTF, BVH, FBX) of the people in the results of hmrkit run",
                            description="Per person of a photo and per track of a video: a skinned glTF with the 52-joint "
                                        "skeleton and the motion, a BVH, an FBX (needs Blender's bpy); see docs/output.md.")
    export.add_argument("out_dir", type=Path, help="the --out folder of hmrkit run (read recursively)")
    export.add_argument("--format", default="glb,bvh", metavar="glb,bvh,fbx",
                        help="comma-separated formats (default glb,bvh; fbx needs pip install bpy)")
    export.add_argument("--fps", type=float, default=None, help="videos: frame rate (default: read from the video file)")
    export.add_argument("--overwrite", action="store_true", help="replace existing rigged files")
    view = sub.add_parser("view", help="look at the results of hmrkit run in the browser (needs pip install viser)",
                          description="Meshes over the photo, the camera, a frame slider for videos, each person's "
                                      "parameters and hand angles, served by viser until Ctrl-C.")
    view.add_argument("out_dir", type=Path, help="the --out folder of hmrkit run (read recursively)")
    view.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    view.add_argument("--port", type=int, default=8080, help="port (default 8080; the next free one if taken)")
    sub.add_parser("doctor", help="check the installation, the model assets and the cache")
    train = sub.add_parser("train", help="retrain a shipped model on this machine (see its model card)")
    models = train.add_subparsers(dest="model", required=True)
    for name, what in (("hkmr", "the HKMR body regressor (or --model flat)"), ("hand-ik", "the 23-DoF hand IK net"),
                       ("pose-prior", "the VAE pose prior"), ("tokenizer", "AJAHR's dual-codebook pose tokenizer"),
                       ("bpac", "BPAC-Net, AJAHR's limb classifier (--a3d DIR)"),
                       ("adapter", "HMR-Adapter: the hand expert, then its body/hand adapters"),
                       ("lite-i2l", "Lite I2L MeshNet, the image-to-lixel hand network (--data DIR)")):
        models.add_parser(name, help=what, add_help=False)  # every option, --help too, goes to the trainer
    synth = sub.add_parser("synth", help="generate a synthetic training set (see docs/synthesis.md)")
    sets = synth.add_subparsers(dest="set", required=True)
    sets.add_parser("a3d", help="AJAHR's A3D: people with limb differences over real backgrounds", add_help=False)
    sets.add_parser("hands", help="hand crops for Lite I2L MeshNet (ManoRender / AngRender poses and views)", add_help=False)
    return parser


def _collect(paths: list[Path]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(input, relative output stem) pairs; folders recursively; unknown paths are errors."""
    items: list[tuple[Path, Path]] = []
    problems: list[str] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            if not found:
                problems.append(f"{path}: folder holds no image or video files")
            items += [(p, p.relative_to(path).with_suffix("")) for p in found]
        elif path.exists():
            items.append((path, Path(path.stem)))
        else:
            problems.append(f"{path}: no such file or folder")
    return items, problems


def _check_out_dir(out: Path) -> str | None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".hmrkit-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        return f"cannot write to output folder {out}: {error.strerror or error}"
    return None


def command_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hmrkit.body.selection import BodyModelChoice, BodyModelKind, load_body
    from hmrkit.errors import HmrkitError
    from hmrkit.estimators import HkmrEstimator
    from hmrkit.geometry.cameras import CameraIntrinsics
    from hmrkit.hand_adapter_stage import AdapterPaths
    from hmrkit.hand_estimator_stage import HandChoice, HandEstimator
    from hmrkit.photos import INPUT_ERRORS, detected_ahead, fit_and_write
    from hmrkit.run_report import RunReport
    from hmrkit.pipeline import Pipeline, PipelineConfig
    from hmrkit.video import overlay_video_path, run_video
    from hmrkit.writers import OutputOptions, output_paths

    if args.device != "cpu":
        _error("only --device cpu is supported in this version (the pipeline runs on CPU)")
        return 2
    if args.max_people < 1:
        _error("--max-people must be at least 1")
        return 2
    items, problems = _collect(args.paths)
    for problem in problems:
        _error(problem)
    report = args.run_report = RunReport(problems=list(problems))
    out_problem = _check_out_dir(args.out)
    if out_problem:
        _error(out_problem)
        return 1
    options = OutputOptions(
        json=not args.no_json, npz=not args.no_npz, mesh_format=None if args.mesh_format == "none" else args.mesh_format,
        overlay=not args.no_overlay, side_view=args.side_view, overwrite=args.overwrite,
    )
    if args.body_model == "anny" and args.model_dir is not None:
        _error("--model-dir is for --body-model smpl or smplx (Anny is embedded)")
        return 2
    if args.body_model != "anny" and args.estimator == "hkmr":
        _error(f"--estimator hkmr predicts Anny poses; use --estimator optimization with --body-model {args.body_model}")
        return 2
    if args.no_refine and args.estimator == "optimization":
        _error("--no-refine is for --estimator hkmr (the optimization is the refinement)")
        return 2
    refine_steps = _refine_steps(args.refine_steps)
    if args.refine_steps is not None and refine_steps is None:
        _error("--refine-steps takes two whole numbers from 0 to 100, like 2,15")
        return 2
    if refine_steps is not None and (args.no_refine or args.estimator == "optimization" or args.body_model != "anny"):
        _error("--refine-steps is for the HKMR refinement (the default with Anny, without --no-refine)")
        return 2
    if not 0 <= args.hand_refine <= 1000:
        _error("--hand-refine must lie between 0 and 1000 steps")
        return 2
    intrinsics = None
    if args.intrinsics is not None:
        if args.fov is not None:
            _error("give --intrinsics or --fov, not both (--intrinsics already sets the field of view)")
            return 2
        try:
            intrinsics = CameraIntrinsics.parse(args.intrinsics)
        except ValueError as error:
            _error(f"--intrinsics: {error}")
            return 2
    try:
        limbs = _limbs(args.limbs)
    except ValueError as error:
        _error(f"--limbs: {error}")
        return 2
    if args.limb_threshold is not None and limbs is not None:
        _error(f"--limb-threshold applies to classified limbs (--limbs auto), not to --limbs {args.limbs}")
        return 2
    if args.limb_threshold is not None and not 0.0 < args.limb_threshold < 1.0:
        _error(f"--limb-threshold must lie between 0 and 1, got {args.limb_threshold}")
        return 2
    try:
        adapter_paths = AdapterPaths.parse(args.hand_adapter_paths)
    except ValueError as error:
        _error(f"--hand-adapter-paths: {error}")
        return 2
    estimator = args.estimator or ("hkmr" if args.body_model == "anny" else "optimization")
    if args.pose_tokenizer and estimator != "hkmr":
        _error("--pose-tokenizer reshapes HKMR's guess: it needs --estimator hkmr (the default with Anny)")
        return 2
    body = BodyModelChoice(BodyModelKind(args.body_model), args.model_dir)
    try:
        config = PipelineConfig(max_people=args.max_people, refine=not args.no_refine, body_model=body,
                                estimator=HkmrEstimator.load() if estimator == "hkmr" else None,
                                hand_refine_iterations=args.hand_refine, limbs=limbs, limb_threshold=args.limb_threshold,
                                pose_tokenizer=args.pose_tokenizer,
                                hand_choice=HandChoice(HandEstimator(args.hand_estimator), args.hand_fallback))
        config.hand_choice.stage()  # the Lite I2L network's weights, if used, checked before any input is read
        if refine_steps is not None:
            config.refine_iterations = refine_steps
        if args.hand_adapter is not None:
            config.hand_adapter = args.hand_adapter
        config.hand_adapter_paths = adapter_paths
    except HmrkitError as error:  # the shipped weights are missing or damaged
        _error(str(error))
        return 1
    if body.kind is not BodyModelKind.ANNY:
        try:  # check the user's files first: one clear line, before any input is read
            load_body(body)
        except (HmrkitError, ValueError) as error:
            _error(str(error))
            return 1
    if args.fov is not None:
        if not 1.0 < args.fov < 179.0:
            _error("--fov must lie between 1 and 179 degrees")
            return 2
        config.fov_degrees = args.fov
    config.intrinsics = intrinsics
    failed = len(problems)
    images = [(p, s) for p, s in items if p.suffix.lower() not in VIDEO_SUFFIXES]
    videos = [(p, s) for p, s in items if p.suffix.lower() in VIDEO_SUFFIXES]
    todo = [(p, s) for p, s in images if args.overwrite or not all(q.exists() for q in output_paths(args.out / s.parent, s.name, options).values())]
    # a video is done when its overlay video exists; one stopped part-way is resumed (hmrkit.video)
    all_videos = videos
    videos = [(p, s) for p, s in all_videos if args.overwrite or not overlay_video_path(args.out / s.parent, s.name).exists()]
    report.expect([p for p, _ in images + all_videos])
    for item in (set(images) - set(todo)) | (set(all_videos) - set(videos)):
        report.skipped(item[0])
    if len(todo) < len(images):
        print(f"hmrkit: skipping {len(images) - len(todo)} image(s) already done in {args.out} (--overwrite redoes them)", file=sys.stderr)
    if len(videos) < len(all_videos):
        print(f"hmrkit: skipping {len(all_videos) - len(videos)} video(s) already done in {args.out} (--overwrite redoes them)", file=sys.stderr)
    if args.ray is not None:
        from hmrkit.batch_ray import Job, RayUnavailable, run_on_ray

        if args.ray_workers is not None and args.ray_workers < 1:
            _error("--ray-workers must be at least 1")
            return 2

        jobs = [Job(p, s) for p, s in todo] + [Job(p, s, video=True) for p, s in videos]
        try:
            outcomes = run_on_ray(jobs, config, options, args.out, args.ray, args.ray_workers, args.max_frames, report=_say,
                                  on_outcome=lambda o: report.done(o.job.path) if o.error is None else report.failed(o.job.path, o.error))
        except RayUnavailable as error:
            _error(str(error))
            return 1
        failed += sum(outcome.error is not None for outcome in outcomes)
        _write_report(args)
        return 1 if failed else 0
    if todo:
        pipeline = Pipeline(config)
        # the next photo's perception runs while this one is fitted: numpy's BLAS must not spin on its core
        pipeline.limit_blas = len(todo) > 1
        bar = tqdm(detected_ahead([p for p, _ in todo], pipeline.backend), total=len(todo), unit="image",
                   disable=len(todo) < 2, file=sys.stderr)
        for (path, stem), (_, detected) in zip(todo, bar):
            bar.set_postfix_str(path.name)
            try:
                if isinstance(detected, Exception):
                    raise detected
                loaded = detected.loaded
                for note in loaded.notes:
                    _say(f"hmrkit: {path}: {note}")
                result, written = fit_and_write(pipeline, loaded, path, args.out, stem, options,
                                                detected.perception, detected.perception_ms)
                if len(todo) < 2:
                    _say(f"hmrkit: {path}: {len(result.people)} person(s), {len(result.hands_only)} lone hand(s) -> {', '.join(str(p) for p in written.values())}")
                report.done(path, list(written.values()))
            except INPUT_ERRORS as error:
                failed += 1
                report.failed(path, _input_error(path, error))
        pipeline.close()
    for path, stem in videos:
        try:
            run_video(path, args.out / stem.parent, stem.name, config, options, max_frames=args.max_frames)
            report.done(path)
        except INPUT_ERRORS as error:
            failed += 1
            report.failed(path, _input_error(path, error))
    _write_report(args)
    return 1 if failed else 0


def _write_report(args: argparse.Namespace, interrupted: bool = False) -> None:
    """``--report FILE``: the run's report (hmrkit.run_report), at its end or when it is interrupted."""
    report = getattr(args, "run_report", None)
    if report is None or getattr(args, "report", None) is None:
        return
    report.interrupted = interrupted
    try:
        report.write(args.report)
    except OSError as error:
        _error(f"cannot write the report {args.report}: {error.strerror or error}")


def command_train(args: argparse.Namespace, options: list[str]) -> int:
    """Hand the options to the trainer's own command line (the same as ``python -m hmrkit.train.<model>``)."""
    if args.model == "hkmr":
        from hmrkit.train.hkmr import main as train
    elif args.model == "hand-ik":
        from hmrkit.train.hand_ik import main as train
    elif args.model == "bpac":
        from hmrkit.train.bpac import main as train
    elif args.model == "tokenizer":
        from hmrkit.train.tokenizer import main as train
    elif args.model == "adapter":
        from hmrkit.train.adapter import main as train
    elif args.model == "lite-i2l":
        from hmrkit.train.lite_i2l import main as train
    else:
        from hmrkit.train.pose_prior import main as train
    status = train(options)
    return int(status or 0)


def command_export(args: argparse.Namespace) -> int:
    from hmrkit.render.motion_export import FORMATS, run_export

    formats = tuple(dict.fromkeys(f.strip().lower() for f in args.format.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        _error(f"--format: use one or more of {', '.join(FORMATS)} (got {args.format!r})")
        return 2
    return run_export(args.out_dir, formats, args.fps, args.overwrite, log=lambda line: print(f"hmrkit: {line}", file=sys.stderr))


def command_view(args: argparse.Namespace) -> int:
    import time

    from hmrkit.viewer import ViewerUnavailable, start_viewer

    try:
        server, viewer = start_viewer(args.out_dir, args.host, args.port)
    except ViewerUnavailable as error:
        _error(str(error))
        return 1
    _say(f"hmrkit: showing {len(viewer.results)} result(s) of {args.out_dir} at http://{args.host}:{server.get_port()} (Ctrl-C stops)")
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        server.stop()
    return 0


def command_doctor(args: argparse.Namespace) -> int:
    from hmrkit.doctor import run_checks

    return run_checks()


def _ray_without_address(argv: list[str]) -> list[str]:
    """``--ray PATH...``: the word after ``--ray`` is an address only if it looks like one
    (hmrkit.batch_ray.looks_like_address); otherwise ``--ray`` stands alone and the word is an input."""
    from hmrkit.batch_ray import LOCAL, looks_like_address

    if "--ray" not in argv or "--" in argv[: argv.index("--ray")]:
        return argv
    at = argv.index("--ray")
    following = argv[at + 1] if at + 1 < len(argv) else None
    if following is None or following.startswith("-") or not looks_like_address(following):
        return argv[:at] + [f"--ray={LOCAL}"] + argv[at + 1:]
    return argv


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the console script; in-process callers keep their own stderr
        _quiet_native_logs()
    parser = build_parser()
    args, extra = parser.parse_known_args(_ray_without_address(sys.argv[1:] if argv is None else argv))
    if extra and args.command not in ("train", "synth"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "run":
            return command_run(args)
        if args.command == "view":
            return command_view(args)
        if args.command == "doctor":
            return command_doctor(args)
        if args.command == "export":
            return command_export(args)
        if args.command == "train":
            return command_train(args, extra)
        if args.command == "synth":
            if args.set == "hands":  # each set's own options go to its generator
                from hmrkit.synth.hands import main as synth
            else:
                from hmrkit.synth.a3d import main as synth

            return int(synth(extra) or 0)
    except KeyboardInterrupt:
        _write_report(args, interrupted=True)
        _error("interrupted")
        return 130
    except Exception as error:  # the last guard: one line, never a traceback
        from hmrkit.errors import HmrkitError

        kind = "" if isinstance(error, HmrkitError) else f"{type(error).__name__}: "
        _error(f"{kind}{error}")
        return 1
    parser.error(f"unknown command {args.command}")
    return 2


def console_main() -> NoReturn:
    """The ``hmrkit`` command: :func:`main`, then a quick exit. The interpreter's own shutdown
    unloads torch's and MediaPipe's thousands of modules, ~1 s that a finished command does
    not need (benchmarks/results/pipeline_startup.md): by the time ``main`` returns every output
    file is written and closed and the thread pools are shut down, so only the standard streams
    and logging are flushed before the process ends with ``main``'s status."""
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(status)


if __name__ == "__main__":
    console_main()
