"""The batched Levenberg-Marquardt step."""

import numpy as np

from hmrkit.fitting.levenberg import damped_step


def test_damped_step_solves_a_linear_problem_and_leaves_fixed_unknowns():
    g = np.random.default_rng(2)
    a = g.normal(size=(3, 10, 4))
    a[:, :, 3] = 0  # an unknown held fixed: its column is zero
    x_true = g.normal(size=(3, 4))
    x_true[:, 3] = 0
    residual = -(a @ x_true[..., None])[..., 0]  # r(x) = a x + residual, zero at x_true
    step = damped_step(a, residual, np.zeros(3))
    np.testing.assert_allclose(step, x_true, atol=1e-5)
    damped = damped_step(a, residual, np.full(3, 10.0))
    assert (np.linalg.norm(damped, axis=1) < np.linalg.norm(step, axis=1)).all()
