"""The shipped HKMR weights as the pipeline's BodyEstimator (needs CMU data and the Anny body)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hmrkit.paths import weights_dir

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not (DATA / "cmu_mocap").is_dir(), reason="../shared/data/cmu_mocap is absent")

# The shipped weights' own record: the trainer's validation MPJPE on held-out CMU poses with the
# training noise (benchmarks/results/hkmr_train.json, hkmr_flat_train.json; hmrkit/weights/hkmr.md).
# This smaller draw of the same kind may be up to a fifth worse.
TRAIN_RECORDS = {"hkmr.safetensors": "hkmr_train.json", "hmr_flat.safetensors": "hkmr_flat_train.json"}
MAX_MPJPE_MM = {weights: 1.2 * json.loads((ROOT / "benchmarks" / "results" / record).read_text())["val"]["mpjpe_mm"]
                for weights, record in TRAIN_RECORDS.items()}


@pytest.fixture(scope="module")
def body():
    from hmrkit.body.anny_model import load_anny_body

    return load_anny_body()


@pytest.fixture(scope="module")
def held_out(body):
    from hmrkit.data.synth_keypoints import SynthConfig, SynthKeypoints

    # the noise model the shipped weights trained on and were validated with (hkmr_train.json: v1_noise false)
    return SynthKeypoints(body, "test", stride=4, config=SynthConfig()).sample(64, torch.Generator().manual_seed(7))


def _orthonormal(r: torch.Tensor) -> bool:
    eye = torch.eye(3).expand_as(r)
    return bool(torch.allclose(r.transpose(-1, -2) @ r, eye, atol=1e-4) and torch.allclose(torch.linalg.det(r), torch.ones(r.shape[:-2]), atol=1e-4))


@pytest.mark.parametrize("weights", sorted(MAX_MPJPE_MM))
def test_shipped_weights_accuracy_and_fit_init(body, held_out, weights):
    from hmrkit.data.synth_keypoints import fit_targets
    from hmrkit.estimators import FlatEstimator, HkmrEstimator
    from hmrkit.eval.metrics import mpjpe
    from hmrkit.geometry.cameras import perspective_project
    from hmrkit.models.encoders import person_box

    if not (weights_dir() / weights).is_file():
        pytest.skip(f"{weights} not trained yet")
    cls = HkmrEstimator if weights.startswith("hkmr") else FlatEstimator
    b = held_out
    assert cls.load(body=body)(fit_targets(b), b.camera).translation is None  # default: the pipeline solves it
    estimator = cls.load(body=body, weak_translation=True)
    init = estimator(fit_targets(b), b.camera)
    assert init.rotations.shape == (64, body.num_joints, 3, 3) and _orthonormal(init.rotations)
    assert torch.equal(init.rotations[:, 22:], torch.eye(3).expand(64, 30, 3, 3))  # fingers at rest
    assert init.shape.shape == (64, 6) and ((init.shape >= 0) & (init.shape <= 1)).all()
    assert init.translation is not None and (init.translation[:, 2] > 0).all()

    out = body(init.rotations, init.shape, init.translation, with_vertices=False)
    pred = out.joints[:, :22] - out.joints[:, :1]
    error_mm = float(mpjpe(pred, b.joints - b.joints[:, :1]).mean()) * 1000
    assert error_mm < MAX_MPJPE_MM[weights]
    # the translation puts the body where the landmarks are: pelvis within a fifth of the box
    pelvis_px = perspective_project(out.joints[:, :1], b.camera)[:, 0]
    true_px = perspective_project(b.joints[:, :1], b.camera)[:, 0]
    off = (pelvis_px - true_px).norm(dim=-1) / person_box(b.observed).size
    assert off.median() < 0.2


def test_shipped_hkmr_beats_the_flat_baseline(body, held_out):
    """The issue's bar, as a regression check on this batch (their training records: 62.2 vs 75.2 mm)."""
    from hmrkit.estimators import FlatEstimator, HkmrEstimator
    from hmrkit.eval.metrics import mpjpe

    b = held_out
    errors = {}
    for cls in (HkmrEstimator, FlatEstimator):
        if not (weights_dir() / cls.DEFAULT_WEIGHTS).is_file():
            pytest.skip(f"{cls.DEFAULT_WEIGHTS} not trained yet")
        out = cls.load(body=body).predict(b.observed)
        full = torch.eye(3).expand(b.batch, body.num_joints, 3, 3).clone()
        full[:, :22] = out.rotations[-1]
        joints = body(full, out.shape[-1], with_vertices=False).joints[:, :22]
        errors[cls.__name__] = float(mpjpe(joints - joints[:, :1], b.joints - b.joints[:, :1]).mean())
    assert errors["HkmrEstimator"] < errors["FlatEstimator"] - 0.005


def test_weak_camera_to_translation_roundtrip(body, held_out):
    """Ground-truth pose, shape and the weak camera of the true pelvis position give back the
    true translation of the model's origin."""
    from hmrkit.estimators import fit_init_from_output
    from hmrkit.geometry.cameras import perspective_to_weak
    from hmrkit.models.encoders import person_box
    from hmrkit.models.hkmr import RegressorOutput

    b = held_out
    box = person_box(b.observed)
    weak = perspective_to_weak(b.joints[:, 0], box, b.camera)
    out = RegressorOutput([b.rotations], [b.shape], [torch.stack([weak.s, weak.tx, weak.ty], -1)])
    init = fit_init_from_output(out, b.observed, b.camera, body)
    assert torch.allclose(init.translation, b.translation, atol=1e-4)
    assert fit_init_from_output(out, b.observed, b.camera, body, weak_translation=False).translation is None


def test_estimator_names_come_from_the_weights_file():
    """The name written to the results says which regressor ran, whichever class loaded it."""
    from hmrkit.estimators import FlatEstimator, HkmrEstimator
    from hmrkit.paths import weights_dir

    assert HkmrEstimator.load().name == "hkmr" and FlatEstimator.load().name == "flat"
    assert HkmrEstimator.load(weights_dir() / "hmr_flat.safetensors").name == "flat"
