"""Learned body estimators for the pipeline: landmarks in, a starting pose for the fit out.

    from hmrkit.estimators import HkmrEstimator
    from hmrkit.pipeline import Pipeline, PipelineConfig
    pipeline = Pipeline(PipelineConfig(estimator=HkmrEstimator.load()))

:class:`HkmrEstimator` (HKMR, :mod:`hmrkit.models.hkmr`) and :class:`FlatEstimator` (the HMR-style
flat baseline, :mod:`hmrkit.models.hmr_flat`) both implement
:class:`hmrkit.fitting.body_fit.BodyEstimator`: ``estimator(targets, camera) -> FitInit`` with
all 52 joint rotations (fingers at rest), phenotypes in (0, 1), and optionally the camera
translation that the regressor's weak-perspective camera implies for the pipeline's pinhole
camera (by default the pipeline solves it from the 2D landmarks: see :class:`RegressorEstimator`).

This module also holds the regressor files' format (:func:`save_regressor`, :func:`load_regressor`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import torch

from hmrkit.body.anny_model import AnnyModel, load_anny_body
from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.errors import ModelAssetError
from hmrkit.weights_file import read_weights
from hmrkit.fitting.body_fit import FitInit
from hmrkit.fitting.targets import FitTargets
from hmrkit.geometry.cameras import PerspectiveCamera, WeakPerspectiveCamera, weak_to_perspective_translation
from hmrkit.models.encoders import BodyKeypoints, KeypointEncoder, KeypointEncoderConfig, person_box
from hmrkit.models.hkmr import BodyRegressor, HkmrConfig, HkmrHead, RegressorOutput
from hmrkit.models.hmr_flat import FlatConfig, FlatHead
from hmrkit.paths import weights_dir

FORMAT = "hmrkit-body-regressor-v1"


@dataclass(frozen=True)
class RegressorSpec:
    """Everything needed to rebuild a keypoint regressor; stored in its weights file."""

    head: Literal["hkmr", "flat"] = "hkmr"
    hkmr: HkmrConfig = field(default_factory=HkmrConfig)
    flat: FlatConfig = field(default_factory=FlatConfig)
    encoder: KeypointEncoderConfig = field(default_factory=KeypointEncoderConfig)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RegressorSpec:
        d = json.loads(text)
        return cls(d["head"], HkmrConfig(**d["hkmr"]), FlatConfig(**d["flat"]), KeypointEncoderConfig(**d["encoder"]))


def build_regressor(spec: RegressorSpec) -> BodyRegressor:
    if spec.head not in ("hkmr", "flat"):
        raise ValueError(f"unknown regressor head {spec.head!r}; use 'hkmr' or 'flat'")
    head_config = spec.hkmr if spec.head == "hkmr" else spec.flat
    if head_config.feature_dim != spec.encoder.feature_dim:
        raise ValueError(f"encoder gives {spec.encoder.feature_dim} features, the head takes {head_config.feature_dim}")
    head = HkmrHead(spec.hkmr) if spec.head == "hkmr" else FlatHead(spec.flat)
    return BodyRegressor(KeypointEncoder(spec.encoder), head)


def save_regressor(regressor: BodyRegressor, spec: RegressorSpec, path: str | Path, extra: dict[str, str] | None = None) -> Path:
    """Write the weights as safetensors with their content digest; the spec (and ``extra`` notes) go in the metadata."""
    from hmrkit.io.integrity import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().contiguous() for k, v in regressor.state_dict().items()}
    save_file(state, str(path), metadata={"format": FORMAT, "spec": spec.to_json(), **(extra or {})})
    return path


def load_regressor(path: str | Path) -> tuple[BodyRegressor, RegressorSpec, dict[str, str]]:
    """A regressor written by :func:`save_regressor`, in eval mode, with its spec and metadata.

    Raises :class:`hmrkit.errors.ModelAssetError` when the file is missing or malformed.
    """
    path = Path(path)
    state, metadata = read_weights(path, "body regressor", FORMAT, "python -m hmrkit.train.hkmr")
    try:
        spec = RegressorSpec.from_json(metadata["spec"])
        regressor = build_regressor(spec)
        regressor.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelAssetError(f"body regressor weights malformed: {path}: {str(error).splitlines()[0]}") from None
    return regressor.eval(), spec, metadata


class RegressorEstimator:
    """A trained keypoint regressor as the pipeline's :class:`~hmrkit.fitting.body_fit.BodyEstimator`.

    ``weak_translation``: convert the regressor's weak-perspective camera into a translation
    for the pinhole camera (:func:`~hmrkit.geometry.cameras.weak_to_perspective_translation`);
    ``False`` (default) leaves it ``None`` so the pipeline solves it in closed form from the 2D
    landmarks with the regressed pose: measured on 30 LSP photos, PCK@0.2 of the regressor alone
    0.388 (closed form) vs 0.340 (weak camera), 0.618 vs 0.615 after 20 refinement steps (previous
    weights and refinement: ``benchmarks/results/hkmr_refine_lsp.md``). The
    weak camera's depth carries the error of the (unobservable) body size.
    """

    DEFAULT_WEIGHTS: ClassVar[str] = "hkmr.safetensors"
    name: str = "hkmr"  # written to the results; ``load`` sets it from the file's regressor head

    def __init__(self, regressor: BodyRegressor, body: AnnyModel | None = None, weak_translation: bool = False):
        self.regressor = regressor.eval()
        self._body = body
        self.weak_translation = weak_translation

    @classmethod
    def load(cls, path: str | Path | None = None, body: AnnyModel | None = None, weak_translation: bool = False):
        """The shipped weights (``hmrkit/weights/<DEFAULT_WEIGHTS>``) or the file at ``path``.
        ``body``: an Anny body to share (else one is loaded on first use, for the translation)."""
        regressor, spec, _ = load_regressor(Path(path) if path is not None else weights_dir() / cls.DEFAULT_WEIGHTS)
        estimator = cls(regressor, body, weak_translation)
        estimator.name = spec.head
        return estimator

    @property
    def body(self) -> AnnyModel:
        if self._body is None:
            self._body = load_anny_body()
        return self._body

    @torch.no_grad()
    def predict(self, keypoints: BodyKeypoints) -> RegressorOutput:
        return self.regressor(keypoints)

    @torch.no_grad()
    def __call__(self, targets: FitTargets, camera: PerspectiveCamera) -> FitInit:
        keypoints = BodyKeypoints.from_targets(targets)
        return fit_init_from_output(self.predict(keypoints), keypoints, camera, self.body, self.weak_translation)


def fit_init_from_output(out: RegressorOutput, keypoints: BodyKeypoints, camera: PerspectiveCamera, body: AnnyModel,
                         weak_translation: bool = True) -> FitInit:
    """The pipeline's start point from a regressor's last iteration: all ``body`` joints (fingers
    at rest), phenotypes, and (``weak_translation``) the pinhole translation of the model's
    origin implied by the weak camera, which places the pelvis in the person box."""
    core, shape = out.rotations[-1], out.shape[-1]
    batch = core.shape[0]
    rotations = torch.eye(3, dtype=core.dtype).expand(batch, body.num_joints, 3, 3).clone()
    rotations[:, :NUM_BODY_CORE] = core
    translation = None
    if weak_translation:
        weak = WeakPerspectiveCamera.from_vector(out.camera[-1])
        pelvis = weak_to_perspective_translation(weak, person_box(keypoints), camera)
        # the root joint turns about itself: the posed pelvis is the rest pelvis plus the translation
        translation = pelvis - body.rest_joints(body.blend_coefficients(shape))[:, 0]
    return FitInit(rotations, shape, translation)


class HkmrEstimator(RegressorEstimator):
    """HKMR (the shipped ``hkmr.safetensors``): hmrkit's default body estimator."""

    DEFAULT_WEIGHTS = "hkmr.safetensors"


class FlatEstimator(RegressorEstimator):
    """The HMR-style flat IEF baseline (the shipped ``hmr_flat.safetensors``), for comparison."""

    DEFAULT_WEIGHTS = "hmr_flat.safetensors"
