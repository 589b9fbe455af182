"""The Tab. 3 ablation's pieces: a trainer limited to a set's first N samples, paired bootstrap intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hmrkit.eval.bootstrap import paired_difference
from hmrkit.synth.dataset import image_path, label_path
from hmrkit.train.lite_i2l import finished, parse_args, split


def fake_set(root: Path, indices: list[int]) -> Path:
    """Finished samples as the trainer sees them: an image and a label file per index."""
    for i in indices:
        for path in (image_path(root, i), label_path(root, i)):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
    return root


def test_max_samples_keeps_only_the_first_n(tmp_path):
    root = fake_set(tmp_path, list(range(50)))
    label_path(root, 7).unlink()  # an unfinished sample stays out either way
    assert finished(root) == [i for i in range(49) if i != 7]  # the newest may still be being written
    assert finished(root, 40) == [i for i in range(40) if i != 7]
    train, held = split(finished(root, 40))
    assert held == [19, 39] and set(train) | set(held) == set(range(40)) - {7}
    assert finished(root, 0) == finished(root)
    assert parse_args(["--data", str(root), "--max-samples", "40"]).max_samples == 40


def test_paired_difference_finds_a_real_shift_and_not_a_null_one():
    rng = np.random.default_rng(1)
    b = rng.normal(30.0, 8.0, 400)
    shifted = paired_difference(b + 2.0 + rng.normal(0, 1.0, 400), b)
    assert shifted.low < shifted.mean < shifted.high
    assert 1.8 < shifted.mean < 2.2 and shifted.excludes_zero()
    # noise alone: the interval holds zero and has the width of the standard error (1.96 sigma / sqrt(n))
    noise = rng.normal(0, 5.0, 400)
    null = paired_difference(b + noise, b)
    assert not null.excludes_zero()
    assert null.high - null.low == pytest.approx(2 * 1.96 * noise.std() / np.sqrt(400), rel=0.15)
    same = paired_difference(b, b)
    assert same.mean == same.low == same.high == 0.0


def test_paired_difference_refuses_unpaired_scores():
    with pytest.raises(ValueError, match="equal 1-D"):
        paired_difference(np.zeros(3), np.zeros(4))
