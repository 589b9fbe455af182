"""lbs.py against the tests' own per-sample, per-joint numpy SMPL (smpl_fixtures.reference_forward)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from smpl_fixtures import reference_forward, rodrigues, synth_model

from hmrkit.body.lbs import batch_rigid_transform, lbs, vertices2joints


def _inputs(model, batch: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    rotations = rodrigues(rng.normal(scale=0.6, size=(batch, len(model.parents), 3)))
    shape = rng.normal(size=(batch, model.arrays["shapedirs"].shape[-1]))
    return rotations, shape


def _lbs(model, rotations, shape, dtype=torch.float64, device="cpu", sparse=False):
    t = {k: torch.as_tensor(np.asarray(v, np.float64), dtype=dtype, device=device) for k, v in model.arrays.items()}
    regressor = t["J_regressor"].to_sparse() if sparse else t["J_regressor"]
    as_t = lambda x: torch.as_tensor(x, dtype=dtype, device=device)  # noqa: E731
    return lbs(as_t(shape), as_t(rotations), t["v_template"], t["shapedirs"], t["posedirs"], regressor, model.parents, t["weights"])


@pytest.mark.parametrize("sparse", [False, True])
def test_lbs_matches_reference(sparse):
    model = synth_model("smplh", num_vertices=300)
    rotations, shape = _inputs(model, batch=3)
    vertices, joints, transforms = _lbs(model, rotations, shape, sparse=sparse)
    ref_v, ref_j, ref_t = reference_forward(model, model.arrays["shapedirs"], rotations, shape, np.zeros((3, 3)))
    np.testing.assert_allclose(vertices.numpy(), ref_v, atol=1e-12)
    np.testing.assert_allclose(joints.numpy(), ref_j, atol=1e-12)
    np.testing.assert_allclose(transforms.numpy(), ref_t, atol=1e-12)


def test_rest_pose_gives_the_template_and_transforms_carry_rest_joints_to_posed_joints():
    model = synth_model("smpl", num_vertices=200)
    num_j = len(model.parents)
    vertices, joints, transforms = _lbs(model, np.tile(np.eye(3), (1, num_j, 1, 1)), np.zeros((1, 10)))
    np.testing.assert_allclose(vertices[0].numpy(), model.arrays["v_template"], atol=1e-12)
    np.testing.assert_allclose(transforms[0].numpy(), np.broadcast_to(np.eye(4), (num_j, 4, 4)), atol=1e-12)

    rotations, shape = _inputs(model, batch=2)
    rest = vertices2joints(torch.as_tensor(model.arrays["J_regressor"]), torch.as_tensor(model.arrays["v_template"])[None])
    posed, transforms = batch_rigid_transform(torch.as_tensor(rotations), rest.expand(2, -1, -1), model.parents)
    moved = (transforms[..., :3, :3] @ rest.unsqueeze(-1)).squeeze(-1) + transforms[..., :3, 3]
    torch.testing.assert_close(moved, posed)


def test_float32_is_close_to_float64():
    model = synth_model("mano", num_vertices=100)
    rotations, shape = _inputs(model, batch=2)
    v32 = _lbs(model, rotations, shape, dtype=torch.float32)[0]
    v64 = _lbs(model, rotations, shape, dtype=torch.float64)[0]
    assert v32.dtype == torch.float32
    np.testing.assert_allclose(v32.numpy(), v64.numpy(), atol=1e-5)


def test_gradients_are_exact():
    model = synth_model("mano", num_vertices=12)
    t = {k: torch.as_tensor(np.asarray(v, np.float64)) for k, v in model.arrays.items()}
    rotations, shape = (torch.as_tensor(x).requires_grad_() for x in _inputs(model, batch=1))

    def f(rot, beta):
        v, j, _ = lbs(beta, rot, t["v_template"], t["shapedirs"], t["posedirs"], t["J_regressor"], model.parents, t["weights"])
        return v, j

    assert torch.autograd.gradcheck(f, (rotations, shape), fast_mode=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_matches_cpu():
    model = synth_model("smplx", num_vertices=500)
    rotations, shape = _inputs(model, batch=2)
    cpu = _lbs(model, rotations, shape, dtype=torch.float32)
    gpu = _lbs(model, rotations, shape, dtype=torch.float32, device="cuda")
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b.cpu(), a, atol=1e-5, rtol=1e-5)
