"""Hands: the 23-DoF biomechanical Anny hand, its IK net and the post-optimization (docs/hands.md)."""

from hmrkit.hands.biomech import ANGLE_NAMES, ANGLE_SPECS, angles_to_rotations, rotations_to_angles
from hmrkit.hands.hand_model import BiomechHand, HandFit, load_biomech_hand
from hmrkit.hands.ik_net import HandIK
from hmrkit.hands.post_opt import bend_direction_penalty, fit_hand

__all__ = [
    "ANGLE_NAMES",
    "ANGLE_SPECS",
    "BiomechHand",
    "HandFit",
    "HandIK",
    "angles_to_rotations",
    "bend_direction_penalty",
    "fit_hand",
    "load_biomech_hand",
    "rotations_to_angles",
]
