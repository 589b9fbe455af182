"""``hmrkit run --body-model smpl|smplx --model-dir DIR``: bad folders and files fail in one line;
a synthesized person-like SMPL-X runs end to end on the bundled photo."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from PIL import Image
from smpl_fixtures import synth_model, write_npz
from smpl_humanoid import write_humanoid_folder

from conftest import ROOT, assert_joints3d_project_onto_joints2d
from hmrkit.body.conventions import BODY_OUTPUT
from hmrkit.body.selection import BodyModelChoice, BodyModelKind, load_body
from hmrkit.body.smpl_family import SMPLX_SKELETON, ModelFileError
from hmrkit.cli import main

SAMPLE = ROOT / "assets" / "samples" / "astronaut.png"


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("hmrkit: error: ")
    return err[0]


def test_missing_model_folder_is_one_line_and_fails(tmp_path, capsys):
    code = main(["run", str(SAMPLE), "--out", str(tmp_path / "out"), "--body-model", "smplx", "--model-dir", str(tmp_path / "nope")])
    assert code == 1
    line = _one_error_line(capsys)
    assert "does not exist" in line and "SMPLX_NEUTRAL" in line
    assert not list((tmp_path / "out").glob("astronaut*"))


def test_smpl_without_model_dir_says_what_to_pass(tmp_path, capsys):
    assert main(["run", str(SAMPLE), "--out", str(tmp_path), "--body-model", "smpl"]) == 1
    assert "--model-dir" in _one_error_line(capsys)


def test_folder_without_the_file_and_a_malformed_file(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["run", str(SAMPLE), "--out", str(tmp_path / "o1"), "--body-model", "smpl", "--model-dir", str(tmp_path / "empty")]) == 1
    assert "no neutral SMPL model" in _one_error_line(capsys)
    bad = tmp_path / "bad" / "smplx"
    bad.mkdir(parents=True)
    (bad / "SMPLX_NEUTRAL.npz").write_bytes(b"not a zip file")
    assert main(["run", str(SAMPLE), "--out", str(tmp_path / "o2"), "--body-model", "smplx", "--model-dir", str(tmp_path / "bad")]) == 1
    assert "cannot read" in _one_error_line(capsys)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    write_npz(synth_model("smpl", seed=1), wrong / "SMPLX_NEUTRAL.npz")  # an SMPL file under an SMPL-X name
    assert main(["run", str(SAMPLE), "--out", str(tmp_path / "o3"), "--body-model", "smplx", "--model-dir", str(wrong)]) == 1
    assert "is it a SMPL-X file?" in _one_error_line(capsys)


def test_usage_errors(tmp_path, capsys):
    assert main(["run", str(SAMPLE), "--out", str(tmp_path), "--model-dir", str(tmp_path)]) == 2
    assert "--model-dir is for" in _one_error_line(capsys)
    assert main(["run", str(SAMPLE), "--out", str(tmp_path), "--body-model", "smpl", "--model-dir", str(tmp_path),
                 "--estimator", "hkmr"]) == 2
    assert "Anny poses" in _one_error_line(capsys)


def test_selection_loads_smpl_and_smplx_maps(tmp_path):
    write_npz(synth_model("smpl", seed=2), tmp_path / "SMPL_NEUTRAL.npz")
    write_humanoid_folder(tmp_path, SMPLX_SKELETON.names)
    for kind, joints in ((BodyModelKind.SMPL, 24), (BodyModelKind.SMPLX, 55)):
        body = load_body(BodyModelChoice(kind, tmp_path))
        assert body.name == kind.value and body.model.num_joints == joints and not body.use_pose_prior
        assert body.output_keypoints.names == BODY_OUTPUT.names and body.fit_keypoints.skinned_base is not None
    with pytest.raises(ModelFileError, match="needs --model-dir"):
        load_body(BodyModelChoice(BodyModelKind.SMPL))


@pytest.mark.slow
def test_smplx_end_to_end_on_the_sample_photo(tmp_path):
    models = write_humanoid_folder(tmp_path / "models", SMPLX_SKELETON.names)
    out = tmp_path / "out"
    assert main(["run", str(SAMPLE), "--out", str(out), "--body-model", "smplx", "--model-dir", str(models)]) == 0
    data = json.loads((out / "astronaut.json").read_text())
    assert data["body_model"] == "smplx"
    (person,) = data["people"]
    assert list(person["joints2d"]) == list(BODY_OUTPUT.names) == list(person["joints3d"])
    assert len(person["pose"]["matrices"]) == 55 and len(person["shape"]) == 10
    assert_joints3d_project_onto_joints2d(data, person)
    # the synthetic body is person-shaped: its face lands on the astronaut's face
    assert 150 < person["joints2d"]["nose"][0] < 300 and 60 < person["joints2d"]["nose"][1] < 200
    assert person["reprojection_error_px"] < 40
    npz = np.load(out / "astronaut.npz")
    assert npz["vertices"].shape == (1, 10475, 3)
    mesh = trimesh.load(out / "astronaut.glb", force="mesh", process=False)
    assert len(mesh.vertices) == 10475
    assert Image.open(out / "astronaut_overlay.png").size == (512, 512)
