"""The pipeline's HMR-Adapter stage: what it hands the fit, with a freshly built (untrained) adapter."""

from __future__ import annotations

import numpy as np
import pytest
import roma
import torch

from hmrkit.body.anny_model import load_anny_body
from hmrkit.data.retarget import CORE_NAMES
from hmrkit.fitting.body_fit import FitInit
from hmrkit.hand_adapter_stage import HandAdapterStage, NoHandAdapter, hand_inputs
from hmrkit.hands.hand_model import load_biomech_hand, mirror_points, mirror_rotation
from hmrkit.models.hmr_adapter import AdapterConfig, HMRAdapter, global_rotations
from hmrkit.perception.types import HandLandmarks, PersonDetection


@pytest.fixture(scope="module")
def body():
    return load_anny_body()


def person(hands: dict[str, np.ndarray]) -> PersonDetection:
    found = {side: HandLandmarks(side, np.zeros((21, 2)), world, 0.9, "pose") for side, world in hands.items()}
    return PersonDetection((0.0, 0.0, 10.0, 10.0), 1.0, None, found)


def guess_for(body, batch: int, seed: int = 0) -> FitInit:
    g = torch.Generator().manual_seed(seed)
    rotations = body.identity_pose(batch).clone()
    rotations[:, :22] = roma.rotvec_to_rotmat(0.4 * torch.randn(batch, 22, 3, generator=g))
    return FitInit(rotations, torch.full((batch, 6), 0.5))


def test_inputs_mirror_right_hands_and_mask_missing_ones(body):
    world = np.random.default_rng(0).normal(size=(21, 3)).astype(np.float32) * 0.03
    people = [person({"right": world}), person({})]
    guess = guess_for(body, 2)
    inputs = hand_inputs(people, guess.rotations[:, :22])
    assert inputs.missing[0].all() and not inputs.missing[1].any() and inputs.missing[2:].all()
    expected = mirror_points(torch.from_numpy(world - world[:1]))
    assert torch.allclose(inputs.points[1], expected, atol=1e-6)
    assert (inputs.confidence[1] == pytest.approx(0.9)) and (inputs.confidence[[0, 2, 3]] == 0).all()


def test_stage_hand_off(body):
    torch.manual_seed(0)
    hand = load_biomech_hand("left")
    model = HMRAdapter(AdapterConfig(width=32, heads=4, encoder_layers=1, decoder_layers=1, ffn=64), hand.axes.lower, hand.axes.upper).eval()
    stage = HandAdapterStage(model)
    world = (0.03 * torch.randn(21, 3)).numpy()
    people = [person({"left": world, "right": world}), person({"left": world})]
    guess = guess_for(body, 2, seed=1)
    off = NoHandAdapter()(people, guess, None, body)
    assert off.guess is guess and off.fixed is None

    out = stage(people, guess, None, body)
    # untrained body path = identity offsets; found hands keep their (absent here) fixed fingers
    assert torch.allclose(out.guess.rotations[0], guess.rotations[0], atol=1e-6)
    # the second person's right hand was not found: its fingers are fixed to the hand path's, and its
    # wrist is turned so that its camera-frame orientation is the hand path's (mirrored back)
    inputs = hand_inputs(people, guess.rotations[:, :22])
    with torch.no_grad():
        estimate = model.hand(inputs)
    right = load_biomech_hand("right")
    index = [body.skeleton.index(n) for n in right.model.skeleton.names[1:]]
    assert out.fixed is not None and out.fixed.mask[1, index].all() and not out.fixed.mask[0].any()
    assert torch.allclose(out.fixed.rotations[1, index], right.rotations(estimate.angles[3:4])[0, 1:], atol=1e-6)
    wrist = CORE_NAMES.index("right_wrist")
    orientation = global_rotations(out.guess.rotations[:, :22])[1, wrist]
    assert torch.allclose(orientation, mirror_rotation(estimate.rotation[3]), atol=1e-5)
    untouched = [i for i, n in enumerate(CORE_NAMES) if not n.endswith(("_elbow", "_wrist"))]
    assert torch.allclose(out.guess.rotations[:, untouched], guess.rotations[:, untouched])


@pytest.mark.slow
def test_pipeline_with_the_stage_moves_only_arms_and_unseen_hands():
    """Through the pipeline (no refinement, so the result is the start pose): the shipped adapter
    changes elbows and wrists of HKMR's guess and nothing else of the core body, and gives the
    fingers of every hand perception did not find; with the switch off the guess is HKMR's."""
    from conftest import ROOT

    from hmrkit.body.limbs import LimbStatus
    from hmrkit.io.images import load_image
    from hmrkit.pipeline import Pipeline, PipelineConfig

    image = load_image(ROOT / "assets" / "samples" / "astronaut.png")
    with Pipeline(PipelineConfig(limbs=LimbStatus.intact(), refine=False)) as plain:
        perception = plain.backend.detect(image.rgb)
        off = plain.run_with_fit(image, perception=perception)[0].people
    with Pipeline(PipelineConfig(limbs=LimbStatus.intact(), refine=False, hand_adapter=True)) as adapted:
        assert isinstance(adapted.hand_adapter, HandAdapterStage)
        on = adapted.run_with_fit(image, perception=perception)[0].people
    assert len(on) == len(off) >= 1
    arms = [i for i, n in enumerate(CORE_NAMES) if n.endswith(("_elbow", "_wrist"))]
    rest = [i for i in range(22) if i not in arms]
    for a, b in zip(off, on):
        np.testing.assert_allclose(a.pose[rest], b.pose[rest], atol=1e-5)
        assert np.abs(a.pose[arms] - b.pose[arms]).max() > 1e-3
        np.testing.assert_allclose(b.pose @ np.swapaxes(b.pose, 1, 2), np.broadcast_to(np.eye(3), b.pose.shape), atol=1e-4)
        names = list(b.pose_names)
        for side in ("left", "right"):
            fingers = [names.index(f"{side}_{f}{k}") for f in ("index", "middle", "pinky", "ring", "thumb") for k in (1, 2, 3)]
            if side not in b.hands:  # not found: the hand path's fingers, not the rest pose
                assert np.abs(b.pose[fingers] - np.eye(3)).max() > 1e-3
                assert np.abs(a.pose[fingers] - np.eye(3)).max() < 1e-6
            else:  # found: the IK net's fingers either way
                np.testing.assert_allclose(a.pose[fingers], b.pose[fingers], atol=1e-6)


def test_paths_can_be_turned_off_one_by_one(body):
    from hmrkit.hand_adapter_stage import AdapterPaths

    assert AdapterPaths.parse("body") == AdapterPaths(body=True, hands=False)
    assert AdapterPaths.parse(" hands ") == AdapterPaths(body=False, hands=True)
    assert AdapterPaths.parse("hands,body") == AdapterPaths()
    for bad in ("", "arms", "body,arms"):
        with pytest.raises(ValueError):
            AdapterPaths.parse(bad)
    torch.manual_seed(0)
    hand = load_biomech_hand("left")
    model = HMRAdapter(AdapterConfig(width=32, heads=4, encoder_layers=1, decoder_layers=1, ffn=64), hand.axes.lower, hand.axes.upper).eval()
    with torch.no_grad():  # a body path that moves the arms
        model.body_adapter.out[-1].bias.fill_(0.3)
    world = (0.03 * torch.randn(21, 3)).numpy()
    people = [person({"left": world})]
    guess = guess_for(body, 1, seed=2)
    body_only = HandAdapterStage(model, AdapterPaths(body=True, hands=False))(people, guess, None, body)
    hands_only = HandAdapterStage(model, AdapterPaths(body=False, hands=True))(people, guess, None, body)
    arms = [i for i, n in enumerate(CORE_NAMES) if n.endswith(("_elbow", "_wrist"))]
    assert body_only.fixed is None and (body_only.guess.rotations[0, arms] - guess.rotations[0, arms]).abs().max() > 0.1
    left = [CORE_NAMES.index("left_elbow"), CORE_NAMES.index("left_wrist"), CORE_NAMES.index("right_elbow")]
    assert torch.allclose(hands_only.guess.rotations[0, left], guess.rotations[0, left])  # only the unseen right wrist turns
    assert hands_only.fixed is not None and hands_only.fixed.mask[0].sum() == 15
