"""Data for training and checks: CMU motion capture, read and retargeted to hmrkit's skeleton."""

from hmrkit.data.cmu import CMU_SKELETON, CmuMotion, cmu_data_dir, cmu_forward_kinematics, cmu_sequence_files, read_cmu_values
from hmrkit.data.retarget import CmuPoses, load_cmu_poses, mirror_core_rotations, retarget_cmu, rotations_from_positions

__all__ = [
    "CMU_SKELETON",
    "CmuMotion",
    "CmuPoses",
    "cmu_data_dir",
    "cmu_forward_kinematics",
    "cmu_sequence_files",
    "load_cmu_poses",
    "mirror_core_rotations",
    "read_cmu_values",
    "retarget_cmu",
    "rotations_from_positions",
]
