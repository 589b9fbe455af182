"""SMPL / SMPL-H / SMPL-X / MANO from synthetic files of the real format, against an independent reference."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import roma
import torch
from smpl_fixtures import (
    PARENTS,
    as_official_pickle,
    chumpy_object,
    dump_pickle,
    reference_forward,
    rodrigues,
    synth_model,
    write_npz,
)

from hmrkit.body.safe_pickle import RefusedPickleError
from hmrkit.body.smpl_family import (
    MANO,
    SMPL,
    SMPLX,
    ModelFileError,
    list_smpl_family_files,
    load_smpl_family,
)

SMPL_NAMES = (
    "pelvis left_hip right_hip spine1 left_knee right_knee spine2 left_ankle right_ankle spine3 left_foot right_foot "
    "neck left_collar right_collar head left_shoulder right_shoulder left_elbow right_elbow left_wrist right_wrist "
    "left_hand right_hand"
).split()

# (kind, variant, file written, how, synthetic model) -- every layout and file style people have
LAYOUT = {
    ("smpl", "neutral"): ("smpl/SMPL_NEUTRAL.pkl", "py2", dict(kind="smpl", seed=1)),
    ("smpl", "female"): ("basicModel_f_lbs_10_207_0_v1.0.0.pkl", "py3", dict(kind="smpl", seed=2)),
    ("smplh", "male"): ("smplh/male/model.npz", "npz", dict(kind="smplh", seed=3, num_shape_dirs=16)),
    ("smplx", "neutral"): ("smplx/SMPLX_NEUTRAL.npz", "npz", dict(kind="smplx", seed=4, num_shape_dirs=400)),
    ("mano", "right"): ("mano/MANO_RIGHT.pkl", "py2", dict(kind="mano", seed=5)),
    ("mano", "left"): ("models/MANO_LEFT.pkl", "py2", dict(kind="mano", seed=6)),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The synthetic models, written once into one folder laid out as users lay them out."""
    _loaded.clear()
    root = tmp_path_factory.mktemp("body_models")
    synths = {}
    for key, (name, style, spec) in LAYOUT.items():
        synth = synth_model(**spec)
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if style == "npz":
            write_npz(synth, path)
        else:
            dump_pickle(as_official_pickle(synth), path, style=style, protocol=2)
        synths[key] = synth
    yield root, synths
    _loaded.clear()


_loaded = {}  # models loaded with default options, shared by the tests of this module (never modified)


def _load(root, kind, variant, **options):
    if options or (kind, variant) not in _loaded:
        model = load_smpl_family(kind, root, **({"side": variant} if kind == "mano" else {"gender": variant}), **options)
        if options:
            return model
        _loaded[kind, variant] = model
    return _loaded[kind, variant]


def _random_inputs(model, batch=2, seed=0, dtype=torch.float32):
    rng = np.random.default_rng(seed)
    rotations = rodrigues(rng.normal(scale=0.5, size=(batch, model.num_joints, 3)))
    shape = rng.normal(size=(batch, model.num_shape))
    translation = rng.normal(size=(batch, 3))
    return rotations, shape, translation, [torch.as_tensor(x, dtype=dtype) for x in (rotations, shape, translation)]


def _expected_dirs(synth, model):
    if model.family == "SMPL-X":  # 400-direction file: betas at 0.., expressions at 300..
        return synth.shape_dirs(10, 10, expression_start=300)
    return synth.shape_dirs(model.num_shape)


@pytest.mark.parametrize("key", list(LAYOUT), ids=lambda k: "-".join(k))
def test_forward_matches_independent_reference(models, key):
    root, synths = models
    model = _load(root, *key)
    rotations, shape, translation, inputs = _random_inputs(model)
    out = model(*inputs)
    ref_v, ref_j, ref_t = reference_forward(synths[key], _expected_dirs(synths[key], model), rotations, shape, translation)
    np.testing.assert_allclose(out.vertices.numpy(), ref_v, atol=2e-5)
    np.testing.assert_allclose(out.joints.numpy(), ref_j, atol=2e-5)
    np.testing.assert_allclose(out.transforms.numpy(), ref_t, atol=2e-5)
    assert out.vertices.shape == (2, model.num_vertices, 3) and model.faces.dtype == torch.int64

    rest = model(model.identity_pose(2), inputs[1])
    torch.testing.assert_close(model.regress_joints(rest.vertices), rest.joints)

    keypoints_only = model(*inputs, with_vertices=False)
    assert keypoints_only.vertices is None
    torch.testing.assert_close(keypoints_only.joints, out.joints)
    torch.testing.assert_close(keypoints_only.transforms, out.transforms)


def test_skeletons_are_the_published_ones(models):
    root, _ = models
    for key in LAYOUT:
        model = _load(root, *key)
        assert list(model.skeleton.parents[1:]) == PARENTS[key[0]][1:]
    assert _load(root, "smpl", "neutral").skeleton.names == tuple(SMPL_NAMES)
    smplx = _load(root, "smplx", "neutral")
    assert smplx.skeleton.names[22:25] == ("jaw", "left_eye_smplhf", "right_eye_smplhf")
    assert smplx.skeleton.names[25:28] == ("left_index1", "left_index2", "left_index3")
    assert smplx.skeleton.names[-1] == "right_thumb3"
    assert smplx.shape_names[9:11] == ("beta9", "expression0") and smplx.num_shape == 20
    mano = _load(root, "mano", "left")
    assert mano.side == "left" and mano.skeleton.names[:4] == ("wrist", "index1", "index2", "index3")
    assert mano.skeleton.names[-3:] == ("thumb1", "thumb2", "thumb3")


def test_shape_space_choices(models):
    root, synths = models
    smplh = _load(root, "smplh", "male", num_betas=16)
    assert smplh.num_shape == 16
    with pytest.raises(ValueError, match="16 shape directions"):
        _load(root, "smplh", "male", num_betas=17)
    with pytest.raises(ValueError, match="has 0 SMPL expression directions"):
        SMPL(synths[("smpl", "neutral")].arrays, num_expression=5)
    # an older SMPL-X file with 10 betas + 10 expressions: the expressions start at 10
    old = synth_model("smplx", num_shape_dirs=20, num_vertices=None, seed=7)
    model = SMPLX(old.arrays, num_betas=4, num_expression=3)
    np.testing.assert_allclose(model.shapedirs.numpy(), old.shape_dirs(4, 3, expression_start=10), atol=1e-7)


def test_float64_models_match_the_reference_tightly(models):
    root, synths = models
    model = _load(root, "smpl", "female", dtype=torch.float64)
    rotations, shape, translation, inputs = _random_inputs(model, dtype=torch.float64)
    out = model(*inputs)
    ref_v, ref_j, _ = reference_forward(synths[("smpl", "female")], synths[("smpl", "female")].shape_dirs(), rotations, shape, translation)
    np.testing.assert_allclose(out.vertices.numpy(), ref_v, atol=1e-12)
    np.testing.assert_allclose(out.joints.numpy(), ref_j, atol=1e-12)
    with pytest.raises(ValueError, match="rotations is torch.float32 but the SMPL model is torch.float64"):
        model(inputs[0].float())
    assert model.default_shape(3).dtype == torch.float64


def test_mano_pca_pose(models):
    root, synths = models
    model = _load(root, "mano", "right")
    arrays = synths[("mano", "right")].arrays
    rng = np.random.default_rng(3)
    coeffs, wrist_rotvec = rng.normal(size=(2, 6)), rng.normal(size=(2, 3))
    expected = rodrigues((coeffs @ arrays["hands_components"][:6] + arrays["hands_mean"]).reshape(2, 15, 3))
    wrist = torch.as_tensor(rodrigues(wrist_rotvec), dtype=torch.float32)
    pose = model.pose_from_pca(torch.as_tensor(coeffs, dtype=torch.float32), wrist)
    assert pose.shape == (2, 16, 3, 3)
    np.testing.assert_allclose(pose[:, 1:].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(pose[:, 0].numpy(), rodrigues(wrist_rotvec), atol=1e-6)
    flat = model.pose_from_pca(torch.zeros(1, 45), add_mean=False)
    torch.testing.assert_close(flat, torch.eye(3).expand(1, 16, 3, 3))
    # and the pose drives the model like any other rotations
    ref_v, _, _ = reference_forward(synths[("mano", "right")], arrays["shapedirs"], pose.double().numpy(), np.zeros((2, 10)), np.zeros((2, 3)))
    np.testing.assert_allclose(model(pose).vertices.numpy(), ref_v, atol=2e-5)


def test_gradients_flow_to_pose_shape_and_translation(models):
    root, _ = models
    model = _load(root, "smplx", "neutral")
    rotvec = (0.3 * torch.randn(1, model.num_joints, 3, generator=torch.Generator().manual_seed(0))).requires_grad_()
    shape = torch.zeros(1, model.num_shape, requires_grad=True)
    translation = torch.zeros(1, 3, requires_grad=True)
    out = model(roma.rotvec_to_rotmat(rotvec), shape, translation)
    (out.vertices.square().sum() + out.joints.square().sum()).backward()
    for grad in (rotvec.grad, shape.grad, translation.grad):
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert (rotvec.grad.abs().sum(-1) > 0).all()  # every joint moves something
    assert model.state_dict() == {}  # licensed arrays never end up in a checkpoint


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_folder_and_missing_file_are_one_clear_line(tmp_path):
    with pytest.raises(ModelFileError) as err:
        load_smpl_family("smplx", tmp_path / "nowhere")
    message = _one_line(err)
    assert "does not exist" in message and "SMPLX_NEUTRAL.npz" in message and "SMPLX_NEUTRAL.pkl" in message
    with pytest.raises(ModelFileError) as err:
        load_smpl_family("mano", tmp_path, side="left")
    message = _one_line(err)
    assert f"no left MANO model in {tmp_path} (nor in its mano/, models/" in message and "MANO_LEFT.pkl" in message
    with pytest.raises(ValueError, match="comes as neutral, male, female"):
        load_smpl_family("smpl", tmp_path, gender="child")
    with pytest.raises(ValueError, match="unknown body model 'smal'"):
        load_smpl_family("smal", tmp_path)


def test_wrong_or_incomplete_files_are_one_clear_line(tmp_path, models):
    _, synths = models
    smpl = synths[("smpl", "neutral")]
    path = tmp_path / "SMPLX_NEUTRAL.npz"
    np.savez(path, v_template=smpl.arrays["v_template"], f=smpl.arrays["f"])
    with pytest.raises(ModelFileError) as err:
        load_smpl_family("smplx", tmp_path)
    assert _one_line(err) == (
        f"{path} is not a SMPL-X model file: it lacks shapedirs, posedirs, J_regressor, kintree_table, weights "
        "(needs v_template, shapedirs, posedirs, J_regressor, kintree_table, weights, f)"
    )
    with pytest.raises(ModelFileError) as err:
        SMPLX(smpl.arrays, source="SMPL_NEUTRAL.pkl")
    assert "SMPL_NEUTRAL.pkl has a v_template of shape (6890, 3), but SMPL-X has 10475 vertices" in _one_line(err)
    wrong_tree = dict(smpl.arrays, kintree_table=smpl.arrays["kintree_table"][:, ::-1].copy())
    with pytest.raises(ModelFileError, match="kintree_table parents"):
        SMPL(wrong_tree)
    with pytest.raises(ModelFileError, match=r"posedirs has shape \(6890, 3, 10\), but a SMPL file has \(6890, 3, 207\)"):
        SMPL(dict(smpl.arrays, posedirs=smpl.arrays["posedirs"][..., :10]))
    odd = dict(as_official_pickle(smpl), shapedirs=chumpy_object("chumpy.ch", "MatVecMult", mtx=None))
    path = dump_pickle(odd, tmp_path / "odd.pkl")
    with pytest.raises(ModelFileError) as err:
        SMPL.from_file(path)
    assert _one_line(err).startswith(f"{path}: cannot read shapedirs: cannot evaluate the chumpy node chumpy.ch.MatVecMult")
    garbage = tmp_path / "smpl" / "SMPL_NEUTRAL.pkl"
    garbage.parent.mkdir()
    garbage.write_bytes(b"not a pickle at all")
    with pytest.raises(ModelFileError, match=f"cannot read {garbage}"):
        load_smpl_family("smpl", tmp_path)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_malicious_model_file_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"v_template": np.zeros((6890, 3)), "weights": _RunsCode(marker)}, protocol=2))
    with pytest.raises(RefusedPickleError) as err:
        load_smpl_family("smpl", tmp_path)
    assert _one_line(err) == f"refusing to load {path}: it asks for {os.system.__module__}.system, which is not model data"
    assert not marker.exists()


def test_listing_the_files_of_a_folder(models, tmp_path):
    root, _ = models
    found = {(f.kind, f.variant, f.path.relative_to(root).as_posix()) for f in list_smpl_family_files(root)}
    assert found == {(kind, variant, name) for (kind, variant), (name, _, _) in LAYOUT.items()}
    assert list_smpl_family_files(tmp_path / "nowhere") == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_matches_cpu(models):
    root, _ = models
    model = _load(root, "smplx", "neutral", dtype=torch.float32)  # a fresh one: moved to the GPU below
    _, _, _, inputs = _random_inputs(model)
    cpu = model(*inputs)
    gpu = model.to("cuda")(*(x.cuda() for x in inputs))
    torch.testing.assert_close(gpu.vertices.cpu(), cpu.vertices, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gpu.transforms.cpu(), cpu.transforms, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind, variant", [("smpl", "neutral"), ("smplx", "neutral")])
def test_amputation_collapses_subtrees_on_smpl_family(models, kind, variant):
    from hmrkit.body.amputation import LIMB_LOSSES, collapse_scales

    model = _load(models[0], kind, variant)
    rotations, shape, _ = _random_inputs(model, batch=1, seed=3)[3]
    whole = model(rotations, shape)
    for loss in LIMB_LOSSES:
        cut = model(rotations, shape, scales=collapse_scales(model.skeleton, [loss]))
        root = model.skeleton.index(loss.joint)
        subtree = model.skeleton.subtree(root)
        others = [j for j in range(model.num_joints) if j not in subtree]
        # the subtree's joints land on its root; nothing else moves (the synthetic skinning
        # weights are dense, so every vertex moves a little: the joints carry the test)
        torch.testing.assert_close(cut.joints[0, subtree], whole.joints[0, root].expand(len(subtree), 3))
        torch.testing.assert_close(cut.joints[0, others], whole.joints[0, others])
        assert torch.isfinite(cut.vertices).all()
