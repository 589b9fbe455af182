"""The motion a body regressor trains on: CMU's train split, optionally with HDM05 and iClone.

CMU's train split holds seven upright activities; HDM05 (train actors) adds lying down,
squatting, reaching to the floor and kicking, the iClone set climbing, sitting, swordplay and
dance: poses sports photos show and CMU lacks (docs/hkmr.md, *Synthetic vs real landmarks*).
The held-out set stays CMU's test split, so iClone takes whose activity CMU's test split holds
or resembles (basketball, walking, running, jumping, washing) are left out of training.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import torch

MotionSet = Literal["cmu", "hdm05", "iclone"]
MOTION_SETS: tuple[str, ...] = get_args(MotionSet)
ICLONE_HELD_OUT_LIKE = ("basketball", "walk", "slow walk", "brisk walk", "walk on uneven terrain", "run/jog",
                        "jump, balance", "wash self")


def parse_motion_sets(text: str) -> tuple[MotionSet, ...]:
    """``"cmu,hdm05"`` -> ("cmu", "hdm05"); a clear error for an unknown name."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in MOTION_SETS]
    if unknown or not names:
        raise ValueError(f"unknown motion set(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(MOTION_SETS)}")
    return names  # type: ignore[return-value]


def training_poses(sets: tuple[MotionSet, ...], stride: int = 2) -> torch.Tensor:
    """(N, 22, 3, 3) local core rotations (joint 0: orientation, y up) of every training frame of
    ``sets``, every ``stride``-th 120 Hz frame."""
    from hmrkit.data.hdm05 import load_hdm05_poses
    from hmrkit.data.iclone import load_iclone_poses
    from hmrkit.data.retarget import load_cmu_poses

    parts = []
    for name in sets:
        if name == "cmu":
            parts.append(load_cmu_poses("train", stride=stride).rotations)
        elif name == "hdm05":
            parts.append(load_hdm05_poses("train", stride=stride).rotations)
        else:
            poses = load_iclone_poses(stride=stride)
            parts.append(poses.rotations[~np.isin(poses.actions, ICLONE_HELD_OUT_LIKE)])
    return torch.from_numpy(np.concatenate(parts)).float()
