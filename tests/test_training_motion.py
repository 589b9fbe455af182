"""The regressor's training motion: which sets, and nothing that resembles the held-out set."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_data
from hmrkit.data.training_motion import ICLONE_HELD_OUT_LIKE, parse_motion_sets, training_poses


def test_motion_set_names_are_checked():
    assert parse_motion_sets("cmu, hdm05,iclone") == ("cmu", "hdm05", "iclone")
    with pytest.raises(ValueError, match="unknown motion set.*mocapx.*choose from cmu, hdm05, iclone"):
        parse_motion_sets("cmu,mocapx")
    with pytest.raises(ValueError, match="none given"):
        parse_motion_sets(" , ")


@pytest.mark.slow
def test_training_poses_concatenate_the_sets_without_held_out_like_iclone_takes():
    shared_data("hdm05_subset"), shared_data("cmu_iclone_subset"), shared_data("cmu_mocap")
    from hmrkit.data import load_cmu_poses, load_hdm05_poses, load_iclone_poses

    stride = 8
    cmu, hdm, iclone = load_cmu_poses("train", stride=stride), load_hdm05_poses("train", stride=stride), load_iclone_poses(stride=stride)
    kept = ~np.isin(iclone.actions, ICLONE_HELD_OUT_LIKE)
    assert 0 < kept.sum() < len(iclone)
    poses = training_poses(("cmu", "hdm05", "iclone"), stride)
    assert poses.shape == (len(cmu) + len(hdm) + int(kept.sum()), 22, 3, 3)
    np.testing.assert_array_equal(poses[: len(cmu)].numpy(), cmu.rotations)
    np.testing.assert_array_equal(poses[len(cmu) + len(hdm):].numpy(), iclone.rotations[kept])
    assert training_poses(("cmu",), stride).shape[0] == len(cmu)
