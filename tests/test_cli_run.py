"""``hmrkit run`` end to end on the bundled photo, and every kind of bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from hmrkit.cli import main
from hmrkit.io.images import load_image

from conftest import ROOT, assert_joints3d_project_onto_joints2d

SAMPLE = ROOT / "assets" / "samples" / "astronaut.png"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    assert main(["run", str(SAMPLE), "--out", str(out), "--side-view"]) == 0
    return out


def test_outputs_exist_and_agree(sample_run):
    data = json.loads((sample_run / "astronaut.json").read_text())
    assert data["schema"] == "hmrkit.result" and data["image"] == {"width": 512, "height": 512}
    assert data["estimator"] == "hkmr+refine"  # the default: HKMR's regressor, then the refinement
    (person,) = data["people"]
    for name in ("nose", "left_eye", "right_ear", "left_shoulder", "right_elbow", "left_wrist", "right_hip", "left_knee",
                 "right_ankle", "left_heel", "right_big_toe", "neck", "head_top", "pelvis"):
        assert name in person["joints2d"] and name in person["joints3d"]
    # joints3d projected with the written camera land on joints2d
    assert_joints3d_project_onto_joints2d(data, person)
    # the face is in the upper half of the portrait, where the astronaut's face is
    assert 150 < person["joints2d"]["nose"][0] < 300 and 60 < person["joints2d"]["nose"][1] < 200
    assert person["reprojection_error_px"] < 25
    # axis-angle and matrices agree; matrices are rotations
    mats = np.array(person["pose"]["matrices"])
    np.testing.assert_allclose(mats @ mats.transpose(0, 2, 1), np.broadcast_to(np.eye(3), mats.shape), atol=1e-4)
    npz = np.load(sample_run / "astronaut.npz")
    assert npz["vertices"].shape == (1, 13718, 3) and npz["faces"].shape[1] == 3
    mesh = trimesh.load(sample_run / "astronaut.glb", force="mesh", process=False)
    assert len(mesh.vertices) == 13718
    for picture in ("astronaut_overlay.png", "astronaut_side.png"):
        assert Image.open(sample_run / picture).size == (512, 512)


def test_rerun_skips_and_never_overwrites(sample_run, capsys):
    before = (sample_run / "astronaut.json").stat().st_mtime_ns
    assert main(["run", str(SAMPLE), "--out", str(sample_run)]) == 0
    assert "skipping 1 image" in capsys.readouterr().err
    assert (sample_run / "astronaut.json").stat().st_mtime_ns == before


def test_bad_inputs_fail_one_line_each_and_the_batch_goes_on(tmp_path, capsys):
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "text.png").write_text("not an image")
    jpeg = bad / "truncated.jpg"
    Image.open(SAMPLE).convert("RGB").save(jpeg, quality=90)
    jpeg.write_bytes(jpeg.read_bytes()[:3000])
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(bad / "nobody.png")
    Image.open(SAMPLE).convert("L").save(bad / "gray.png")
    out = tmp_path / "out"
    code = main(["run", str(bad), str(tmp_path / "missing.jpg"), "--out", str(out), "--mesh-format", "none", "--no-overlay"])
    err = capsys.readouterr().err
    assert code == 1
    lines = [l for l in err.splitlines() if l.startswith("hmrkit: error:")]
    assert len(lines) == 5, err
    assert any("empty.jpg" in l and "empty" in l for l in lines)
    assert any("text.png" in l and "not an image" in l for l in lines)
    assert any("truncated.jpg" in l for l in lines)
    assert any("nobody.png" in l and "no person found" in l for l in lines)
    assert any("missing.jpg" in l and "no such file" in l for l in lines)
    assert "Traceback" not in err
    assert (out / "gray.json").exists()  # a grayscale photo works, and the batch went on


def test_each_estimator_lines_up_and_says_which_it_was(sample_run, tmp_path, capsys):
    """The optimization alone and the regressor alone land on the photo like the default does."""
    (default,) = json.loads((sample_run / "astronaut.json").read_text())["people"]
    for flags, label in ((["--estimator", "optimization"], "optimization"), (["--no-refine"], "hkmr")):
        out = tmp_path / label
        assert main(["run", str(SAMPLE), "--out", str(out), "--no-overlay", "--mesh-format", "none", *flags]) == 0
        data = json.loads((out / "astronaut.json").read_text())
        (person,) = data["people"]
        assert data["estimator"] == label
        assert_joints3d_project_onto_joints2d(data, person)
        nose = np.subtract(person["joints2d"]["nose"], default["joints2d"]["nose"])
        assert np.linalg.norm(nose) < 30  # px on a 512 px photo: the same face
    assert person["reprojection_error_px"] > default["reprojection_error_px"]  # the refinement is what fits the landmarks
    capsys.readouterr()
    assert main(["run", str(SAMPLE), "--out", str(tmp_path / "x"), "--estimator", "optimization", "--no-refine"]) == 2
    err = capsys.readouterr().err
    assert "--no-refine is for --estimator hkmr" in err and len(err.strip().splitlines()) == 1


def test_fewer_refinement_steps_fit_the_landmarks_between_none_and_the_default(sample_run, tmp_path, capsys):
    errors = {}
    for label, flags in (("default", []), ("few", ["--refine-steps", "0,3"]), ("none", ["--no-refine"])):
        out = sample_run if label == "default" else tmp_path / label
        if label != "default":
            assert main(["run", str(SAMPLE), "--out", str(out), "--no-overlay", "--mesh-format", "none", *flags]) == 0
        (person,) = json.loads((out / "astronaut.json").read_text())["people"]
        errors[label] = person["reprojection_error_px"]
    assert errors["default"] < errors["few"] < errors["none"]
    capsys.readouterr()
    for flags, message in ((["--refine-steps", "2"], "--refine-steps takes two whole numbers"),
                           (["--refine-steps", "2,-1"], "--refine-steps takes two whole numbers"),
                           (["--refine-steps", "2,15", "--no-refine"], "--refine-steps is for the HKMR refinement")):
        assert main(["run", str(SAMPLE), "--out", str(tmp_path / "x"), *flags]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", str(SAMPLE), "--out", str(blocker / "sub")]) == 1
    err = capsys.readouterr().err
    assert "cannot write to output folder" in err and len(err.strip().splitlines()) == 1


def test_console_script_version_and_quiet_errors(tmp_path):
    exe = [sys.executable, "-m", "hmrkit.cli"]
    version = subprocess.run(exe + ["--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("hmrkit ")
    (tmp_path / "x.jpg").write_bytes(b"")
    run = subprocess.run(exe + ["run", str(tmp_path / "x.jpg"), "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [f"hmrkit: error: image file is empty (0 bytes): {tmp_path / 'x.jpg'}"]


def test_console_script_quick_exit_leaves_every_file_whole(tmp_path, sample_run):
    """The command ends with os._exit (no interpreter shutdown): its files must be complete and
    the same as an in-process run's, its summary line printed."""
    exe = [sys.executable, "-m", "hmrkit.cli"]
    run = subprocess.run(exe + ["run", str(SAMPLE), "--out", str(tmp_path), "--side-view"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "1 person(s)" in run.stderr.strip().splitlines()[-1]
    written, expected = (json.loads((folder / "astronaut.json").read_text()) for folder in (tmp_path, sample_run))
    assert written["people"] == expected["people"]  # (timings differ)
    np.testing.assert_array_equal(np.load(tmp_path / "astronaut.npz")["vertices"], np.load(sample_run / "astronaut.npz")["vertices"])
    mesh = trimesh.load(tmp_path / "astronaut.glb", force="mesh", process=False)
    assert len(mesh.vertices) == len(trimesh.load(sample_run / "astronaut.glb", force="mesh", process=False).vertices)
    assert (tmp_path / "astronaut_overlay.png").read_bytes() == (sample_run / "astronaut_overlay.png").read_bytes()


def test_json_parameters_rebuild_the_written_mesh(sample_run, anny_body):
    """The documented way of reading the pose back (docs/output.md) gives the .npz mesh."""
    person = json.loads((sample_run / "astronaut.json").read_text())["people"][0]
    assert set(person["bone_scales"]) == {f"{s}_{j}" for s in ("left", "right") for j in ("shoulder", "elbow", "hip", "knee")}
    scales = torch.ones(1, anny_body.num_joints)
    for name, value in person["bone_scales"].items():
        scales[0, anny_body.skeleton.index(name)] = value
    out = anny_body(torch.tensor(person["pose"]["matrices"])[None].float(),
                    torch.tensor([list(person["shape"].values())]).float(),
                    torch.tensor([person["translation"]]).float(), scales=scales)
    written = np.load(sample_run / "astronaut.npz")["vertices"][0]
    assert np.abs(out.vertices[0].numpy() - written).max() < 2e-3  # JSON rounds rotations to 1e-5


def test_hands_come_from_the_ik_path_with_named_feasible_angles(tmp_path):
    from conftest import shared_data
    from hmrkit.hands.biomech import ANGLE_NAMES
    from hmrkit.pipeline import Pipeline

    photo = shared_data("demo_images", "hands", "test5.jpg")  # a woman's two hands over her face
    result = Pipeline().run(photo)
    (person,) = result.people
    assert set(person.hands) == {"left", "right"}
    for hand in person.hands.values():
        assert list(hand.angles) == list(ANGLE_NAMES)
        assert all(np.isfinite(v) for v in hand.angles.values())
        # the fused hand's 2D joints lie on MediaPipe's hand landmarks: mean error under 15% of the
        # hand's size (measured: 12% on this photo; the body's phenotypes, not the hand's, set its size)
        det = result.detections[0].hands[hand.side]
        size = np.ptp(det.xy, axis=0).max()
        assert np.linalg.norm(hand.joints2d - det.xy, axis=1).mean() < 0.15 * size


def test_hand_post_optimization_is_a_pipeline_choice(tmp_path, capsys):
    """Default: the IK net's hands; ``hand_refine_iterations`` runs the post-optimization, whose
    hands lie closer to MediaPipe's 3D hand landmarks than the IK net's."""
    from conftest import shared_data
    from hmrkit.pipeline import Pipeline, PipelineConfig

    photo = shared_data("demo_images", "hands", "test5.jpg")
    pipeline = Pipeline()
    detections = pipeline.backend.detect(load_image(photo).rgb).people
    errors = {}
    for steps in (0, 20):
        solver = Pipeline(PipelineConfig(hand_refine_iterations=steps, estimator=None)).hand_solver
        solved = solver.solve_people(detections)[0]
        assert set(solved) == {"left", "right"}
        errors[steps] = np.mean([np.linalg.norm(fit.joints[0].numpy() - fit.joints[0].numpy().mean(0)
                                                - (detections[0].hands[side].world - detections[0].hands[side].world.mean(0)), axis=1).mean()
                                 for side, fit in solved.items()])
    assert pipeline.hand_solver.refine is False
    assert errors[20] < errors[0]
    assert main(["run", str(SAMPLE), "--out", str(tmp_path / "o"), "--hand-refine", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--hand-refine must lie between" in err and len(err.strip().splitlines()) == 1


def test_a_hand_without_a_body_gets_its_own_mesh(tmp_path):
    from conftest import shared_data

    crop = shared_data("hands_ge2019_dev", "images", "00000.jpg")
    out = tmp_path / "out"
    assert main(["run", str(crop), "--out", str(out)]) == 0
    data = json.loads((out / "00000.json").read_text())
    assert data["people"] == [] and len(data["hands_only"]) >= 1
    hand = data["hands_only"][0]
    assert hand["side_source"] == "hand_model" and len(hand["angles"]) == 23
    assert np.array(hand["joints3d"])[:, 2].min() > 0  # in front of the camera
    npz = np.load(out / "00000.npz")
    assert any(k.endswith("_vertices") for k in npz.files)


def test_npz_holds_every_result_array_exactly_deflated(tmp_path):
    """writers._save_npz (zlib level 1): np.load, without pickles, gives back each array of
    result_arrays bit for bit, every member deflated."""
    import zipfile

    from hmrkit.pipeline import Pipeline
    from hmrkit.writers import OutputOptions, result_arrays, write_result

    with Pipeline() as pipeline:
        result = pipeline.run(SAMPLE)
    rgb = np.asarray(Image.open(SAMPLE).convert("RGB"))
    write_result(result, rgb, tmp_path, "a", OutputOptions(json=False, mesh_format=None, overlay=False))
    expected = result_arrays(result)
    with np.load(tmp_path / "a.npz", allow_pickle=False) as written:
        assert sorted(written.files) == sorted(expected)
        for name, array in expected.items():
            assert written[name].dtype == np.asarray(array).dtype
            np.testing.assert_array_equal(written[name], array)
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
