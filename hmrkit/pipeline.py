"""The end-to-end pipeline: an RGB image in, typed people (Anny pose, shape, mesh, hands) out.

    from hmrkit import Pipeline
    people = Pipeline().run(image).people
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

from hmrkit.body.amputation import absent_joints
from hmrkit.body.base import BodyModel
from hmrkit.body.conventions import BODY_OUTPUT
from hmrkit.body.limbs import LimbStatus, removed_keypoints
from hmrkit.body.selection import BodyModelChoice, load_body
from hmrkit.estimators import HkmrEstimator
from hmrkit.fitting.body_fit import BodyEstimator, BodyFit, BodyFitConfig, BodyFitter
from hmrkit.fitting.targets import HAND_SLICES, targets_from_detections
from hmrkit.geometry.cameras import DEFAULT_FOV_DEGREES, CameraIntrinsics, PerspectiveCamera, perspective_project
from hmrkit.models.pose_prior import load_pose_prior
from hmrkit.io.images import LoadedImage, ensure_rgb_uint8, load_image
from hmrkit.perception.backend import PerceptionBackend
from hmrkit.perception.mediapipe_backend import MediaPipeBackend, MediaPipeConfig
from hmrkit.perception.types import Perception
from hmrkit.fitting.hands import HandSolver, PlacedHand, angle_dict
from hmrkit.hand_adapter_stage import AdapterPaths, HandAdapterStage, NoHandAdapter
from hmrkit.hand_estimator_stage import HandChoice
from hmrkit.limb_stage import LimbChoice, PeopleWithLimbs, TrackedLimbs, decide_limbs
from hmrkit.results import HandResult, ImageResult, PersonResult


@contextmanager
def compute_threads(count: int, limit_blas: bool = True):
    """Threads of PyTorch (and, ``limit_blas``, of numpy's BLAS) while classifying limbs and fitting
    (and running the Lite I2L hand network). Small-batch work
    is bound by per-op overhead: one torch thread is fastest, and far faster than two when the
    other core is busy (measured: 1.8 s vs 13 s for one fit under load; BPAC-Net on the sample
    video's people, the other core busy: 14 vs 66 ms a person, ``limb_threads.md``). BLAS's second thread
    spins for work: in video mode, with perception's look-ahead thread on the other core,
    limiting BLAS to one thread took the sample video from ~100 to ~68 ms per person-frame; on
    photos, where the fit runs alone, two BLAS threads fitted 8 people ~10 % faster (development
    A/B runs; the committed figures are in ``hkmr_speed.md``)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with _blas_threads().limit(limits=count, user_api="blas") if limit_blas else nullcontext():
            yield
    finally:
        torch.set_num_threads(previous)


def _load_bpac():
    from hmrkit.models.bpac_net import BpacClassifier  # only when limbs are classified

    return BpacClassifier.load()


@lru_cache(maxsize=1)
def _blas_threads() -> ThreadpoolController:
    """The process's BLAS thread pools (found once: scanning the loaded libraries takes ~0.1 s)."""
    return ThreadpoolController()


@dataclass
class PipelineConfig:
    # the camera, first of: ``intrinsics`` (pixels of the original image), ``fov_degrees`` (along the
    # long image side, principal point at the centre), the photo's EXIF focal length, DEFAULT_FOV_DEGREES
    intrinsics: CameraIntrinsics | None = None
    fov_degrees: float | None = None
    max_people: int = 64  # high: the search stops when nobody new is found; the notes say when it is reached
    with_vertices: bool = True
    hands: bool = True
    fit_threads: int = 1
    # the body estimator: HKMR's regressor gives the starting pose, then (``refine``) a short
    # Levenberg-Marquardt fit to the landmarks follows (HKMR's "MF": regressor + optimizer).
    # None: optimization only, from MediaPipe's 3D landmarks -- the one choice for SMPL-family
    # bodies, since HKMR predicts Anny poses.
    estimator: BodyEstimator | None = field(default_factory=HkmrEstimator.load)
    refine: bool = True
    # LM steps after the regressor: (3D stage, 2D stage); on LSPET (2, 15) matches the
    # optimization's (4, 20) within 0.003 PCK, (0, 10) is 0.01 below (docs/hkmr.md)
    refine_iterations: tuple[int, int] = (2, 15)
    fit: BodyFitConfig = field(default_factory=BodyFitConfig)
    # Adam steps of the hand post-optimization after the IK net (Lite I2L MeshNet's second stage);
    # 0: the IK net's answer. On real hands (benchmarks/results/hands.md) 20 steps moved PA-MPJPE
    # 9.12 -> 8.93 mm and root-relative MPJPE 23.11 -> 23.63 mm, and took 138 ms per demo photo with
    # hands against 6 for the IK net alone (benchmarks/results/speed_parts.md)
    hand_refine_iterations: int = 0
    # Anny (default) or the user's SMPL / SMPL-X files (hmrkit.body.selection)
    body_model: BodyModelChoice = field(default_factory=BodyModelChoice)
    # limb differences (hmrkit.limb_stage): None: BPAC-Net decides per person (its threshold keeps
    # false amputations of real intact people rare: benchmarks/results/ajahr_real.md); or one status
    # for everyone (the user's statement, or LimbStatus.intact() to draw every limb)
    limbs: LimbStatus | None = None
    # with limbs=None: a limb is absent when BPAC-Net's P(present) is below this; None: the model's
    # calibrated threshold. Higher finds more absent limbs and flags more intact people (the measured
    # trade-off: benchmarks/results/bpac_operating.md, docs/ajahr.md)
    limb_threshold: float | None = None
    # AJAHR's dual-codebook pose tokenizer (hmrkit.models.pose_tokenizer): the regressor's guess is
    # replaced by its tokenized version, from the amputee codebook for people with an absent limb,
    # before the refinement. Off by default: on held-out synthetic people it moved HKMR's guess away
    # from the truth (benchmarks/results/tokenizer.md, ajahr_synthetic.md)
    pose_tokenizer: bool = False
    # HMR-Adapter (hmrkit.hand_adapter_stage) between HKMR's guess and the fit: the body path turns
    # elbows and wrists by the hands' features; hands MediaPipe missed get the hand path's fingers and
    # wrist. Only with the learned estimator (it adapts HKMR's guess). docs/hmr_adapter.md
    hand_adapter: bool = False
    hand_adapter_paths: AdapterPaths = field(default_factory=AdapterPaths)  # which paths it applies
    # where hand landmarks come from (hmrkit.hand_estimator_stage): MediaPipe Hands on wrist crops, or
    # the Lite I2L MeshNet trained on synthetic hands (on every seen wrist, or as the fallback where
    # MediaPipe found no hand). Default MediaPipe, no fallback: on real hands the network measured far
    # worse (docs/lite_i2l.md)
    hand_choice: HandChoice = field(default_factory=HandChoice)

    def camera(self, width: int, height: int, loaded: LoadedImage | None = None) -> tuple[PerspectiveCamera, str]:
        """The camera of a ``width`` x ``height`` picture (``loaded``'s, when given: its scale and
        EXIF), and where it came from: "user" (intrinsics or field of view), "exif" or "default".
        Intrinsics and EXIF focal lengths are in original pixels: they are scaled to the picture."""
        scale = 1.0 if loaded is None else loaded.scale
        if self.intrinsics is not None:
            return self.intrinsics.for_scale(scale), "user"
        if self.fov_degrees is not None:
            return PerspectiveCamera.from_image_size(height, width, self.fov_degrees), "user"
        exif = None if loaded is None else loaded.exif_focal
        if exif is not None:
            return CameraIntrinsics.centred(exif.fx, exif.fy, *loaded.original_size).for_scale(scale), "exif"
        return PerspectiveCamera.from_image_size(height, width, DEFAULT_FOV_DEGREES), "default"


class Pipeline:
    """Perception -> body fit (-> hands) -> results. Reuse one instance: models load once."""

    def __init__(self, config: PipelineConfig | None = None, video: bool = False):
        self.config = config or PipelineConfig()
        if self.config.limb_threshold is not None:  # before anything loads
            if self.config.limbs is not None:
                raise ValueError("limb_threshold applies to classified limbs (limbs=None), not to a stated status")
            if not 0.0 < self.config.limb_threshold < 1.0:
                raise ValueError(f"limb_threshold must lie between 0 and 1, got {self.config.limb_threshold}")
        self.body = load_body(self.config.body_model)  # first: a missing SMPL folder fails before anything loads
        if self.config.estimator is not None and self.body.name != "anny":
            raise ValueError(f"the learned estimator predicts Anny poses; with the {self.body.name} body model use the optimization (PipelineConfig(estimator=None))")
        # numpy's BLAS held to one thread during fits: set when perception runs alongside them (video
        # look-ahead, photo batches; see compute_threads)
        self.limit_blas = video
        self.backend: PerceptionBackend = MediaPipeBackend(MediaPipeConfig(video=video, max_people=self.config.max_people, hands=self.config.hands))
        self.model: BodyModel = self.body.model
        self.fit_keypoints = self.body.fit_keypoints
        self.output_keypoints = self.body.output_keypoints
        self.fitter = BodyFitter(self.model, self.fit_keypoints, self.config.fit,
                                 load_pose_prior() if self.body.use_pose_prior else None)
        if self.config.hand_refine_iterations < 0:
            raise ValueError(f"hand_refine_iterations must be >= 0, got {self.config.hand_refine_iterations}")
        self.hand_solver = HandSolver(refine=self.config.hand_refine_iterations > 0, iterations=self.config.hand_refine_iterations)
        self.network_hands = self.config.hand_choice.stage() if self.config.hands else None
        if self.config.intrinsics is not None and self.config.fov_degrees is not None:
            raise ValueError("give the camera's intrinsics or its field of view, not both")
        self.tokenizer = None
        if self.config.pose_tokenizer:
            if self.config.estimator is None:
                raise ValueError("the pose tokenizer reshapes the learned estimator's guess: it needs the HKMR estimator")
            from hmrkit.models.pose_tokenizer import load_pose_tokenizer

            self.tokenizer = load_pose_tokenizer()
        use_adapter = self.config.hand_adapter and self.config.estimator is not None
        self.hand_adapter = HandAdapterStage(paths=self.config.hand_adapter_paths) if use_adapter else NoHandAdapter()
        if self.config.limbs is not None:
            self.limbs = LimbChoice(self.config.limbs)
        else:  # in videos each track's limbs are decided on all its frames so far
            bpac = _load_bpac()
            if self.config.limb_threshold is not None:
                bpac = bpac.at_threshold(self.config.limb_threshold)
            self.limbs = LimbChoice(classifier=TrackedLimbs(bpac) if video else bpac)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def camera(self, width: int, height: int, loaded: LoadedImage | None = None) -> PerspectiveCamera:
        """The camera of a ``width`` x ``height`` picture (``loaded``'s, when given: its scale and EXIF)."""
        return self.config.camera(width, height, loaded)[0]

    def run(self, image: np.ndarray | str | Path | LoadedImage, source: str = "<array>") -> ImageResult:
        """Reconstruct everyone in ``image`` (RGB uint8 array, a path, or a :class:`LoadedImage`).

        Returns an :class:`ImageResult`; ``people`` is empty (with a note) when nobody is found.
        """
        return self.run_with_fit(image, source)[0]

    def run_with_fit(self, image: np.ndarray | str | Path | LoadedImage, source: str = "<array>",
                     frame_index: int | None = None, init: BodyFit | None = None,
                     smoother: Callable[[BodyFit], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None,
                     perception: Perception | None = None) -> tuple[ImageResult, BodyFit | None]:
        """:meth:`run`, also returning the batched fit. For video: ``init`` warm-starts the fit
        (the previous frame's), ``smoother`` maps a fit to filtered (rotations, shape, translation).
        ``perception``: this image's detections, already made (e.g. to compare fit settings on
        the same landmarks); None runs the perception backend."""
        if isinstance(image, (str, Path)):
            source = str(image)
            image = load_image(image)
        loaded = image if isinstance(image, LoadedImage) else LoadedImage(ensure_rgb_uint8(image), 1.0, image.shape[1::-1])
        rgb = loaded.rgb
        height, width = rgb.shape[:2]
        timings: dict[str, float] = {}
        if perception is None:
            start = time.perf_counter()
            perception = self.backend.detect(rgb)
            timings["perception"] = (time.perf_counter() - start) * 1000
        if self.network_hands is not None:
            start = time.perf_counter()
            with compute_threads(self.config.fit_threads, limit_blas=self.limit_blas):
                perception = self.network_hands(rgb, perception)
            timings["lite_i2l"] = (time.perf_counter() - start) * 1000
        camera, camera_source = self.config.camera(width, height, loaded)
        notes = list(loaded.notes) + list(perception.notes)
        if self.config.intrinsics is not None and not self.config.intrinsics.inside(*loaded.original_size):
            notes.append("the given principal point lies outside the image")
        people_in = [p for p in perception.people if p.body is not None]
        lone_hands = [h for p in perception.people if p.body is None for h in p.hands.values()]
        hands_only = []
        if lone_hands and self.config.hands:
            start = time.perf_counter()
            with compute_threads(self.config.fit_threads, limit_blas=self.limit_blas):
                placed = self.hand_solver.place_alone(lone_hands, camera)
            hands_only = [self._hand_alone(h, loaded.scale) for h in placed]
            timings["hands_only"] = (time.perf_counter() - start) * 1000
        people: list[PersonResult] = []
        fit = None
        if people_in:
            # the limb classifier and the fit: small batches, one torch thread (perception may run meanwhile)
            with compute_threads(self.config.fit_threads, limit_blas=self.limit_blas):
                start = time.perf_counter()
                limbs = decide_limbs(rgb, people_in, self.limbs)
                timings["limbs"] = (time.perf_counter() - start) * 1000
                people, fit = self._fit_people(limbs, camera, loaded.scale, init, smoother, timings)
        elif not hands_only:
            notes.append("no person found")
        scale = loaded.scale
        cam = {"fx": float(camera.fx) / scale, "fy": float(camera.fy) / scale, "cx": (float(camera.cx) + 0.5) / scale - 0.5,
               "cy": (float(camera.cy) + 0.5) / scale - 0.5}
        result = ImageResult(source, loaded.original_size[0], loaded.original_size[1], cam, self.body.name, people,
                             self.model.faces.numpy(), notes, timings, frame_index, people_in, hands_only, self.estimator_label,
                             camera_source=camera_source)
        return result, fit

    @property
    def estimator_label(self) -> str:
        """How the body is estimated, as written to the results: "hkmr+refine", "hkmr", "optimization"."""
        estimator = self.config.estimator
        if estimator is None:
            return "optimization"
        return estimator.name + ("+refine" if self.config.refine else "")

    def _fit_people(self, limbs: PeopleWithLimbs, camera, scale, init, smoother, timings) -> tuple[list[PersonResult], BodyFit]:
        start = time.perf_counter()
        detections = limbs.people
        targets = targets_from_detections(detections, self.config.fit.weigh_unseen, self.config.fit.pose_hand_point_weight)
        targets.collapse = limbs.collapse(self.model.skeleton)
        solved = self.hand_solver.solve_people(detections) if self.config.hands else [{} for _ in detections]
        fixed = self.hand_solver.fixed_fingers(self.model, solved)
        timings["hands"] = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        track_ids = tuple(d.track_id for d in detections)
        warm = None if init is None else init.warm_start_for(track_ids)
        estimator = self.config.estimator
        if warm is not None:
            fit = self.fitter.fit(targets, camera, warm, fixed=fixed)
        elif estimator is None:
            fit = self.fitter.fit(targets, camera, fixed=fixed)
        else:
            guess = estimator(targets, camera)
            if self.tokenizer is not None:  # AJAHR: the guess through the codebook of the person's limb status
                with torch.no_grad():
                    guess.rotations = self.tokenizer.project(guess.rotations, limbs.status)
            adapted = self.hand_adapter(detections, guess, fixed, self.model)
            guess, fixed = adapted.guess, adapted.fixed
            if fixed is not None:
                guess.rotations = torch.where(fixed.mask[..., None, None], fixed.rotations, guess.rotations)
            if self.config.refine:
                fit = self.fitter.fit(targets, camera, guess, iterations=self.config.refine_iterations, fixed=fixed)
            else:
                translation = guess.translation
                if translation is None:
                    translation = self.fitter.solve_translation(guess.rotations, guess.shape, targets, camera)
                fit = self.fitter.evaluate(guess.rotations, guess.shape, translation, targets, camera)
        fit.track_ids = track_ids
        if smoother is not None:
            fit = self.fitter.evaluate(*smoother(fit), targets, camera, fit.scales)
            fit.track_ids = track_ids
        timings["fit"] = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        people = self._people(limbs, fit, camera, scale, solved)
        timings["mesh"] = (time.perf_counter() - start) * 1000
        return people, fit

    def _hand_alone(self, placed: PlacedHand, scale: float) -> HandResult:
        xy = (placed.joints2d.numpy() + 0.5) / scale - 0.5
        return HandResult(placed.side, xy, placed.fit.joints[0].numpy(), placed.landmarks.score, placed.landmarks.side_source,
                          angle_dict(placed.fit), placed.fit.vertices[0].numpy(), placed.faces.numpy())

    def _people(self, limbs: PeopleWithLimbs, fit: BodyFit, camera: PerspectiveCamera, scale: float,
                solved: list[dict]) -> list[PersonResult]:
        with torch.no_grad():
            out = self.model(fit.rotations, fit.shape, fit.translation, with_vertices=self.config.with_vertices,
                             keypoints=self.output_keypoints, scales=fit.scales)
            joints2d = perspective_project(out.keypoints, camera)
        to_original = lambda xy: (xy + 0.5) / scale - 0.5  # noqa: E731 - pixel centres at integers
        people = []
        for i, (det, status) in enumerate(zip(limbs.people, limbs.status)):
            gone = removed_keypoints(BODY_OUTPUT.names, status)
            hands = {}
            for side, hand in det.hands.items():
                part = HAND_SLICES[side]
                angles = angle_dict(solved[i][side]) if side in solved[i] else None
                hands[side] = HandResult(side, to_original(fit.keypoints2d[i, part].numpy()), fit.keypoints[i, part].numpy(),
                                         hand.score, hand.side_source, angles)
            box = tuple(float(to_original(np.float64(v))) for v in det.box)
            people.append(PersonResult(
                box=box,
                confidence=det.score,
                joint_names=BODY_OUTPUT.names,
                joints2d=np.where(gone[:, None], np.nan, to_original(joints2d[i].numpy())),
                joints3d=np.where(gone[:, None], np.nan, out.keypoints[i].numpy()),
                pose_names=self.model.skeleton.names,
                pose=fit.rotations[i].numpy(),
                shape_names=self.model.shape_names,
                shape=fit.shape[i].numpy(),
                translation=fit.translation[i].numpy(),
                reprojection_error=float(fit.reprojection_error[i]) / scale,
                hands=hands,
                absent_joints=absent_joints(self.model.skeleton, status.losses),
                limbs=status,
                vertices=None if out.vertices is None else out.vertices[i].numpy(),
                track_id=det.track_id,
                bone_scales={} if fit.scales is None else {  # a collapsed joint (scale 0) is a limb difference, not a bone scale
                    n: float(s) for n in self.config.fit.bone_scale_joints if (s := fit.scales[i, self.model.skeleton.index(n)]) > 0},
            ))
        return people

