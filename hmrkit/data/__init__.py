"""Data for training and checks: motion capture (CMU, HDM05, iClone BVH), read and retargeted to hmrkit's skeleton."""

from hmrkit.data.asf_amc import AmcMotion, AsfSkeleton, asf_forward_kinematics, read_amc, read_asf
from hmrkit.data.bvh import BvhMotion, bvh_forward_kinematics, read_bvh
from hmrkit.data.cmu import CMU_SKELETON, CmuMotion, cmu_data_dir, cmu_forward_kinematics, cmu_sequence_files, read_cmu_values
from hmrkit.data.hdm05 import hdm05_data_dir, hdm05_sequence_files, load_hdm05_poses, read_hdm05_motion
from hmrkit.data.iclone import iclone_sequence_files, load_iclone_poses, read_iclone_motion
from hmrkit.data.retarget import (
    CmuPoses,
    load_cmu_poses,
    mirror_core_rotations,
    retarget_cmu,
    retarget_motion,
    rotations_from_positions,
)
from hmrkit.data.skeleton_motion import SkeletonMotion

__all__ = [
    "CMU_SKELETON",
    "AmcMotion",
    "AsfSkeleton",
    "BvhMotion",
    "CmuMotion",
    "CmuPoses",
    "SkeletonMotion",
    "asf_forward_kinematics",
    "bvh_forward_kinematics",
    "cmu_data_dir",
    "cmu_forward_kinematics",
    "cmu_sequence_files",
    "hdm05_data_dir",
    "hdm05_sequence_files",
    "iclone_sequence_files",
    "load_cmu_poses",
    "load_hdm05_poses",
    "load_iclone_poses",
    "mirror_core_rotations",
    "read_amc",
    "read_asf",
    "read_bvh",
    "read_cmu_values",
    "read_hdm05_motion",
    "read_iclone_motion",
    "retarget_cmu",
    "retarget_motion",
    "rotations_from_positions",
]
