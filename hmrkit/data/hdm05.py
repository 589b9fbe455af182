"""HDM05 motion capture (ASF/AMC, 120 fps) retargeted to hmrkit's core joints.

HDM05 (Mueller et al., "Documentation Mocap Database HDM05", Universitaet Bonn, 2007; CC BY-SA
3.0) adds what CMU's upright activities lack: lying down, squats, reaching to the floor, kicks.
The subset on disk is ``<root>/{train,test}/<class>/HDM_<subject>_<action>_<take>_120.amc``,
each folder holding its subjects' ``HDM_<subject>.asf``. The skeleton is the CMU/Vicon ASF
layout, so :mod:`hmrkit.data.asf_amc` reads it in hmrkit's canonical frame and the retargeting
takes its segments by their CMU names. The split is by actor: ``train`` holds bd, bk and dg
(188 takes, 44,740 frames), ``test`` mm and tr (99 takes, 26,256 frames), all 11 classes in both.

Frame rate: HDM05 and the CMU files of :func:`hmrkit.data.retarget.load_cmu_poses` are both
120 Hz, so the same ``stride`` keeps frames at the same rate (stride 4: 30 frames per second).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hmrkit.data.asf_amc import AsfSkeleton, asf_forward_kinematics, read_amc, read_asf
from hmrkit.data.data_dirs import mocap_data_dir
from hmrkit.data.retarget import CmuPoses, cached_poses, poses_from_sequences, stamped_cache_path
from hmrkit.data.skeleton_motion import SkeletonMotion

HDM05_FOLDER = "hdm05_subset"
HDM05_FPS = 120
SPLITS = ("train", "test")
CACHE_VERSION = "hdm05-core22-v1"
_FILE_NAME = re.compile(r"^HDM_(?P<subject>[a-z]+)_(?P<action>.+)_(?P<take>\d+)_(?P<fps>\d+)$")


@dataclass(frozen=True)
class Hdm05SequenceFile:
    split: str
    action: str  # the HDM05 motion class, e.g. "lieDownFloor"
    subject: str  # actor code: bd, bk, dg, mm, tr
    name: str  # the file's stem, e.g. "HDM_bd_lieDownFloor_001_120"
    path: Path  # the .amc file
    asf: Path  # the subject's skeleton


def hdm05_data_dir(root: str | os.PathLike | None = None) -> Path:
    """The ``hdm05_subset`` folder (``root``, ``$HMRKIT_DATA_DIR/hdm05_subset`` or ``../shared/data``)."""
    return mocap_data_dir(HDM05_FOLDER, root)


def hdm05_sequence_files(split: str, actions: tuple[str, ...] | list[str] | None = None, root=None) -> list[Hdm05SequenceFile]:
    """The AMC files of ``split``, sorted by action then file name."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    files = []
    for amc in (hdm05_data_dir(root) / split).glob("*/*.amc"):
        match = _FILE_NAME.match(amc.stem)
        if match is None:
            raise ValueError(f"{amc}: not an HDM05 file name (HDM_<subject>_<action>_<take>_<fps>.amc)")
        subject = match["subject"]
        files.append(Hdm05SequenceFile(split, match["action"], subject, amc.stem, amc, amc.parent / f"HDM_{subject}.asf"))
    available = sorted({f.action for f in files})
    if actions is not None:
        unknown = [a for a in actions if a not in available]
        if unknown:
            raise ValueError(f"unknown HDM05 action(s) {unknown} in {split}; available: {', '.join(available)}")
        files = [f for f in files if f.action in actions]
    return sorted(files, key=lambda f: (f.action, f.name))


@lru_cache(maxsize=16)
def _skeleton(path: Path) -> AsfSkeleton:
    return read_asf(path)


def read_hdm05_motion(file: Hdm05SequenceFile, stride: int = 1) -> SkeletonMotion:
    """Every ``stride``-th frame of one HDM05 file after forward kinematics (float64, metres)."""
    skeleton = _skeleton(file.asf)
    return asf_forward_kinematics(skeleton, read_amc(file.path, skeleton).take(slice(None, None, stride)))


def load_hdm05_poses(split: str, stride: int = 4, actions: tuple[str, ...] | list[str] | None = None, root=None) -> CmuPoses:
    """HDM05 frames of ``split`` ("train" or "test") retargeted to the core joints.

    Every ``stride``-th frame is kept: the same frame rate as :func:`load_cmu_poses` at the same
    stride (both 120 Hz). ``actions`` holds HDM05 class names; ``sequence_names`` the file stems.
    Cached as .npz under ``hmrkit.paths.cache_dir()/hdm05``, keyed by the files' sizes and times.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    files = hdm05_sequence_files(split, actions, root)
    stamps = [(f.name, f.path) for f in files] + [(p.name, p) for p in sorted({f.asf for f in files})]
    path = stamped_cache_path("hdm05", f"{split}_stride{stride}", CACHE_VERSION, stamps)

    def loader(f: Hdm05SequenceFile):
        return lambda: read_hdm05_motion(f, stride)

    return cached_poses(path, lambda: poses_from_sequences([(f.name, f.action, loader(f)) for f in files], stride))
