"""Limb status: its types, which keypoints an absent limb removes, and the pipeline with absent limbs."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from hmrkit.body.amputation import LIMB_LOSSES, collapse_scales
from hmrkit.body.conventions import BODY_OUTPUT, MEDIAPIPE33
from hmrkit.body.limbs import LIMBS, LimbStatus, class_names, parse_limbs, removed_keypoints
from hmrkit.limb_stage import LimbChoice, TrackedLimbs, decide_limbs, without_absent_parts
from hmrkit.models.bpac_net import decide
from hmrkit.perception.types import BodyLandmarks, HandLandmarks, PersonDetection

from conftest import ROOT

SAMPLE = ROOT / "assets" / "samples" / "astronaut.png"


def test_statement_parses_and_maps_to_the_body_layers_collapses():
    status = parse_limbs("left_leg=lower_leg, right_arm=hand")
    assert status.source == "user"
    assert status.classes.tolist() == [0, 1, 2, 0]  # left_arm, right_arm (hand), left_leg (lower_leg), right_leg
    assert [loss.name for loss in status.losses] == ["right_hand", "left_lower_leg"]
    assert [loss.joint for loss in status.losses] == ["right_wrist", "left_knee"]
    assert not parse_limbs("left_arm=present").any_absent
    # every class of every head round-trips through the class indices
    for limb_index, limb in enumerate(LIMBS):
        for c, name in enumerate(class_names(limb)):
            classes = [0, 0, 0, 0]
            classes[limb_index] = c
            back = LimbStatus.from_classes(classes, np.eye(4)[classes])
            assert back.classes.tolist() == classes
            assert back.state(limb).probabilities[name] == 1.0
    # the 12 absence types are exactly the body layer's 12 limb losses
    types = {LimbStatus.from_classes([c if i == k else 0 for i in range(4)]).losses[0].name for k in range(4) for c in (1, 2, 3)}
    assert types == {loss.name for loss in LIMB_LOSSES}


@pytest.mark.parametrize("text", ["left_leg", "left_leg=hand", "tail=arm", "left_arm=hand,left_arm=arm", "", "left_arm=forearm;x"])
def test_bad_statements_are_refused(text):
    with pytest.raises(ValueError):
        parse_limbs(text)


def test_removed_keypoints_grow_level_by_level():
    names = BODY_OUTPUT.names
    removed = lambda text: {n for n, gone in zip(names, removed_keypoints(names, parse_limbs(text))) if gone}  # noqa: E731
    assert removed("left_leg=foot") == {"left_heel", "left_big_toe", "left_small_toe"}
    assert removed("left_leg=lower_leg") == {"left_ankle", "left_heel", "left_big_toe", "left_small_toe"}
    assert removed("left_leg=leg") == {"left_knee", "left_ankle", "left_heel", "left_big_toe", "left_small_toe"}
    assert removed("right_arm=hand") == set()  # body_output has no hand points; the wrist is the stump's end
    assert removed("right_arm=forearm") == {"right_wrist"}
    assert removed("right_arm=arm") == {"right_elbow", "right_wrist"}
    fit_names = ("left_wrist", "left_hand:wrist", "left_hand:index_tip", "right_hand:wrist", "left_index")
    assert removed_keypoints(fit_names, parse_limbs("left_arm=hand")).tolist() == [False, True, True, False, True]


def test_removed_keypoints_are_those_the_collapse_moves(anny_body):
    """Independently of the names: for each of the 12 types, the body_output keypoints the rule removes
    are the ones the body model's collapse carries onto the stump, and every other one stays put --
    but the point named after the cut joint, which is the stump's end (it may move a little onto it)."""
    from hmrkit.body.anny_keypoints import anny_keypoint_map

    model, kmap = anny_body, anny_keypoint_map(anny_body, BODY_OUTPUT)
    rotations = model.identity_pose(1)
    with torch.no_grad():
        intact = model(rotations, keypoints=kmap, with_vertices=False).keypoints[0]
        for loss in LIMB_LOSSES:
            side, part = loss.name.split("_", 1)
            limb = f"{side}_{'arm' if part in ('hand', 'forearm', 'arm') else 'leg'}"
            status = parse_limbs(f"{limb}={part}")
            out = model(rotations, keypoints=kmap, with_vertices=False, scales=collapse_scales(model.skeleton, status.losses))
            cut, stump = out.keypoints[0], out.joints[0, model.skeleton.index(loss.joint)]
            removed = removed_keypoints(BODY_OUTPUT.names, status)
            moved = ((cut - intact).norm(dim=-1) > 0.005).numpy()
            at_stump = ((cut - stump).norm(dim=-1) < 0.01).numpy()
            end = np.array([n == loss.joint for n in BODY_OUTPUT.names])
            assert removed.any() or part == "hand", loss.name  # body_output has no finger points
            assert (moved & at_stump)[removed].all(), loss.name  # removed: carried onto the stump
            assert not moved[~removed & ~end].any(), loss.name  # kept: unmoved but for the stump's end
            assert ((cut - intact).norm(dim=-1) < 0.03).numpy()[end].all(), loss.name


def _person(with_hands: bool = True) -> PersonDetection:
    rng = np.random.default_rng(0)
    body = BodyLandmarks(rng.uniform(0, 100, (33, 2)), np.full(33, 0.9), rng.normal(size=(33, 3)))
    hands = {side: HandLandmarks(side, rng.uniform(0, 100, (21, 2)), rng.normal(size=(21, 3)), 0.9, "pose")
             for side in ("left", "right")} if with_hands else {}
    return PersonDetection((0, 0, 100, 100), 0.9, body, hands)


def test_absent_parts_leave_the_evidence(anny_body):
    person = _person()
    status = parse_limbs("left_arm=forearm,right_leg=foot")
    cleaned = without_absent_parts(person, status)
    gone = {"left_wrist", "left_pinky", "left_index", "left_thumb", "right_heel", "right_foot_index"}
    for i, name in enumerate(MEDIAPIPE33.names):
        assert cleaned.body.visibility[i] == (0.0 if name in gone else person.body.visibility[i]), name
    assert set(cleaned.hands) == {"right"}
    np.testing.assert_array_equal(cleaned.body.xy, person.body.xy)
    assert without_absent_parts(person, LimbStatus.intact()) is person
    decided = decide_limbs(np.zeros((100, 100, 3), np.uint8), [person, person], LimbChoice(status))
    skeleton = anny_body.skeleton
    collapse = decided.collapse(skeleton)
    assert decided.status == [status, status] and collapse.shape == (2, len(skeleton))
    assert {skeleton.names[j] for j in (collapse[0] == 0).nonzero()[:, 0].tolist()} == {"left_elbow", "right_ankle"}
    assert decide_limbs(np.zeros((100, 100, 3), np.uint8), [person], LimbChoice(LimbStatus.intact())).collapse(skeleton) is None


def test_a_choice_needs_a_status_or_a_classifier():
    with pytest.raises(ValueError):
        LimbChoice()


@pytest.mark.slow
def test_pipeline_draws_a_stump_and_ignores_the_absent_limbs_landmarks():
    """With the left lower leg stated absent, moving its landmarks anywhere changes nothing; with the
    leg intact the same move changes the fit (so the invariance is not an accident)."""
    from hmrkit.io.images import load_image
    from hmrkit.pipeline import Pipeline, PipelineConfig
    from hmrkit.writers import result_arrays, result_meshes
    from hmrkit.results import image_to_json

    image = load_image(SAMPLE)
    amputee = parse_limbs("left_leg=lower_leg")
    with Pipeline(PipelineConfig(limbs=amputee)) as pipeline:
        perception = pipeline.backend.detect(image.rgb)
        (person,) = perception.people
        moved_xy = person.body.xy.copy()
        for name in ("left_ankle", "left_heel", "left_foot_index"):
            moved_xy[MEDIAPIPE33.index(name)] += (150.0, -120.0)
        moved = replace(perception, people=[replace(person, body=replace(person.body, xy=moved_xy))])
        cut, _ = pipeline.run_with_fit(image, perception=perception)
        cut_moved, _ = pipeline.run_with_fit(image, perception=moved)
        pipeline.limbs = LimbChoice(LimbStatus.intact())
        whole, _ = pipeline.run_with_fit(image, perception=perception)
        whole_moved, _ = pipeline.run_with_fit(image, perception=moved)
    (p_cut,), (p_cut_moved,), (p_whole,), (p_whole_moved,) = cut.people, cut_moved.people, whole.people, whole_moved.people
    np.testing.assert_allclose(p_cut.vertices, p_cut_moved.vertices, atol=1e-4)
    assert np.abs(p_whole.vertices - p_whole_moved.vertices).max() > 0.01
    # the stump: every vertex the lower leg carried now sits at the knee
    knee = p_cut.joints3d[BODY_OUTPUT.index("left_knee")]
    lower = np.linalg.norm(p_whole.vertices - knee, axis=1) > 0.1  # far from the knee when the leg is whole ...
    ankle_region = np.linalg.norm(p_whole.vertices - p_whole.joints3d[BODY_OUTPUT.index("left_ankle")], axis=1) < 0.05
    assert np.linalg.norm(p_cut.vertices[ankle_region & lower] - knee, axis=1).max() < 0.03  # ... at the knee when cut
    data = image_to_json(cut)["people"][0]
    assert data["limbs"]["left_leg"] == {"status": "absent", "level": "lower_leg", "probabilities": None}
    assert data["limbs"]["right_leg"]["status"] == "present" and data["limbs_source"] == "user"
    assert data["limbs_thresholds"] is None  # stated, not classified
    assert {"left_ankle", "left_heel", "left_big_toe"}.isdisjoint(data["joints2d"]) and "left_knee" in data["joints3d"]
    assert "left_ankle" in data["absent_joints"] and "left_knee" not in data["absent_joints"]
    assert "left_knee" not in data["bone_scales"]
    assert LimbStatus.from_json(data["limbs"]).classes.tolist() == amputee.classes.tolist()
    # docs/output.md's recipe: the JSON's pose, shape, translation and model_scales rebuild the stump mesh
    from hmrkit.results import model_scales

    scales = model_scales(data["pose"]["joint_names"], data["bone_scales"], LimbStatus.from_json(data["limbs"]))
    with torch.no_grad():
        rebuilt = pipeline.model(torch.tensor(data["pose"]["matrices"])[None].float(), torch.tensor([list(data["shape"].values())]).float(),
                                 torch.tensor([data["translation"]]).float(), scales=torch.from_numpy(scales).float()[None]).vertices[0]
    assert np.abs(rebuilt.numpy() - p_cut.vertices).max() < 0.002
    arrays = result_arrays(cut)
    assert arrays["limb_classes"].tolist() == [[0, 0, 2, 0]]
    assert np.isnan(arrays["joints2d"][0, BODY_OUTPUT.index("left_ankle")]).all()
    (vertices, faces, _), = result_meshes(cut)
    (_, all_faces, _), = result_meshes(whole)
    assert len(faces) < len(all_faces) - 100  # the collapsed lower leg's faces are dropped
    json.dumps(image_to_json(cut))  # NaN-free JSON


@pytest.mark.slow
def test_pipeline_calls_absent_exactly_the_limbs_below_a_chosen_threshold():
    """``limb_threshold`` between the classifier's P(present) values of one real person: the limbs
    below it come out absent (status, absent joints, collapsed mesh), the others present."""
    from hmrkit.io.images import load_image
    from hmrkit.pipeline import Pipeline, PipelineConfig
    from hmrkit.results import image_to_json
    from hmrkit.writers import result_meshes

    image = load_image(SAMPLE)
    with Pipeline(PipelineConfig()) as pipeline:
        perception = pipeline.backend.detect(image.rgb)
        default, _ = pipeline.run_with_fit(image, perception=perception)
        shipped = pipeline.limbs.classifier.thresholds
    (person,) = image_to_json(default)["people"]
    present = {limb: state["probabilities"]["present"] for limb, state in person["limbs"].items()}
    assert all(state["status"] == "present" for state in person["limbs"].values())  # an intact astronaut
    values = sorted(set(present.values()))
    assert len(values) >= 2 and values[0] < 1.0
    threshold = (values[0] + values[1]) / 2  # the least sure limb falls below it, the others do not
    with Pipeline(PipelineConfig(limb_threshold=threshold)) as pipeline:
        chosen, _ = pipeline.run_with_fit(image, perception=perception)
    (cut,) = image_to_json(chosen)["people"]
    assert {limb: state["status"] == "absent" for limb, state in cut["limbs"].items()} == {limb: p < threshold for limb, p in present.items()}
    assert cut["absent_joints"] and not person["absent_joints"] and cut["limbs_source"] == "bpac"
    assert cut["limbs_thresholds"] == {limb: round(threshold, 4) for limb in present}  # the result says what decided it
    assert person["limbs_thresholds"] == {limb: round(float(t), 4) for limb, t in zip(present, shipped)} != cut["limbs_thresholds"]
    (_, faces, _), = result_meshes(chosen)
    (_, all_faces, _), = result_meshes(default)
    assert len(faces) < len(all_faces)
    for wrong in (PipelineConfig(limbs=LimbStatus.intact(), limb_threshold=0.3), PipelineConfig(limb_threshold=1.0)):
        with pytest.raises(ValueError):
            Pipeline(wrong)


@pytest.mark.parametrize("args", [["--limb-threshold", "1.5"], ["--limb-threshold", "nan"], ["--limbs", "intact", "--limb-threshold", "0.3"]])
def test_cli_refuses_a_bad_limb_threshold_in_one_line(args, tmp_path, capsys):
    from hmrkit.cli import main

    assert main(["run", str(SAMPLE), "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hmrkit: error: --limb-threshold")
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("text", ["left_arm=wing", "tail=arm", "left_leg"])
def test_cli_refuses_a_bad_limb_statement_in_one_line(text, tmp_path, capsys):
    from hmrkit.cli import main

    assert main(["run", str(SAMPLE), "--out", str(tmp_path), "--limbs", text]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hmrkit: error: --limbs:")
    assert not any(tmp_path.iterdir())  # nothing written


class _FixedProbabilities:
    """Class probabilities handed out frame by frame (the classifier's role), BPAC's decision rule."""

    thresholds = np.full(4, 0.5)

    def __init__(self, frames):
        self.frames = iter(frames)

    def probabilities(self, rgb, people):
        return next(self.frames)

    def decide(self, probabilities):
        return decide(probabilities, self.thresholds)


def test_video_tracks_decide_on_the_average_of_their_frames():
    present = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (4, 1))
    cut_leg = present.copy()
    cut_leg[2] = (0.1, 0.1, 0.7, 0.1)  # left leg: lower_leg
    tracked = replace(_person(False), track_id=3)
    untracked = _person(False)
    frames = [np.stack([present, present]), np.stack([present, present]), np.stack([cut_leg, cut_leg])]
    limbs = TrackedLimbs(_FixedProbabilities(frames))
    rgb = np.zeros((8, 8, 3), np.uint8)
    for _ in range(2):
        assert not any(s.any_absent for s in limbs.classify(rgb, [tracked, untracked]))
    track, alone = limbs.classify(rgb, [tracked, untracked])
    assert not track.any_absent  # one odd frame among three: P(present) of the mean is 0.7
    assert alone.state("left_leg").level == "lower_leg" and alone.source == "bpac"
    np.testing.assert_allclose(track.state("left_leg").probabilities["present"], (1 + 1 + 0.1) / 3)


def test_cli_pose_tokenizer_needs_the_learned_estimator(tmp_path, capsys):
    from hmrkit.cli import main

    assert main(["run", str(SAMPLE), "--out", str(tmp_path), "--pose-tokenizer", "--estimator", "optimization"]) == 2
    assert capsys.readouterr().err.strip().startswith("hmrkit: error: --pose-tokenizer")


@pytest.mark.slow
def test_pose_tokenizer_reshapes_the_guess_by_limb_status():
    """With the tokenizer on, the refinement starts from the tokenized guess (so the result moves),
    and an amputee's guess goes through the other codebook than an intact person's."""
    from hmrkit.io.images import load_image
    from hmrkit.pipeline import Pipeline, PipelineConfig

    image = load_image(SAMPLE)
    amputee = parse_limbs("left_arm=forearm")
    with Pipeline(PipelineConfig(limbs=amputee, refine=False)) as plain:
        perception = plain.backend.detect(image.rgb)
        (without,) = plain.run_with_fit(image, perception=perception)[0].people
    with Pipeline(PipelineConfig(limbs=amputee, refine=False, pose_tokenizer=True)) as tokenized:
        (cut,) = tokenized.run_with_fit(image, perception=perception)[0].people
        tokenized.limbs = LimbChoice(LimbStatus.intact())
        (whole,) = tokenized.run_with_fit(image, perception=perception)[0].people
        body = slice(1, 22)
        with torch.no_grad():
            expected = tokenized.tokenizer.project(torch.from_numpy(without.pose)[None].float(), [amputee])[0].numpy()
    np.testing.assert_allclose(cut.pose[body], expected[body], atol=1e-4)  # no refinement: the guess is the result
    assert np.abs(cut.pose[body] - without.pose[body]).max() > 1e-3
    assert np.abs(cut.pose[body] - whole.pose[body]).max() > 1e-3  # the other codebook
