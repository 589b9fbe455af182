"""Where each named keypoint lies on Anny: joints, Anny's own COCO regressor, and picked vertices.

Picked vertices are chosen once, on the neutral rest mesh, by geometry (documented per name
in ``NOTES``), so they follow the surface for every phenotype and pose.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from hmrkit.body.anny_model import AnnyModel, anny_data, load_anny_body
from hmrkit.body.anny_rig import SIDES
from hmrkit.body.conventions import FINGERS, HAND21, Convention
from hmrkit.body.base import Skeleton
from hmrkit.body.keypoints import KeypointMap, KeypointSpec, build_keypoint_map, fingertip_vertex

NOTES = {
    "left_eye_inner": "approximation: a quarter of the way from the eye centre to the other eye",
    "left_eye_outer": "approximation: the eye centre pushed a quarter eye-distance outwards",
    "mouth_left": "approximation: surface vertex nearest to 4.5 cm below and 2.4 cm beside the nose tip",
    "left_pinky": "approximation: MediaPipe's pose 'pinky' is taken as the little-finger knuckle (MCP joint)",
    "left_index": "approximation: MediaPipe's pose 'index' is taken as the index knuckle (MCP joint)",
    "left_thumb": "approximation: MediaPipe's pose 'thumb' is taken as the thumb MCP joint",
    "left_foot_index": "the big-toe point of Anny's COCO-feet regressor",
    "neck": "the neck joint (base of the neck)",
    "head_top": "top vertex of the head on the neutral rest mesh",
    "spine": "h36m 'spine': the spine2 joint (mid back)",
    "thorax": "h36m 'thorax': the neck joint",
    "neck_nose": "h36m 'neck/nose': the nose",
    "left_hand": "smpl24 'hand': the middle-finger knuckle (MCP)",
    "left_hand:thumb_tip": "fingertips: the farthest vertex along the last phalanx (Anny has no tip bones)",
    "left_hand:wrist": "MediaPipe's hand wrist, a point fixed on the palm (WRIST_PALM_COORDS), not Anny's wrist joint",
    "lsp14:left_hip": "LSP's hip: the hip joint plus an offset fixed to the pelvis, calibrated on LSP labels (LSP_HIP_COORDS)",
}
NOTES.update({k.replace("left", "right", 1): v for k, v in list(NOTES.items()) if "left_" in k})

# Where MediaPipe Hands puts the hand21 wrist, in the palm frame of the Anny hand (origin the
# wrist JOINT; y towards the middle MCP joint, x towards the index side, z out of the back of
# the hand), in palm lengths |middle MCP joint - wrist joint|: the median over 41 MediaPipe hands
# on real photos, Anny fitted to the 20 other landmarks (benchmarks/calib_hand_wrist.py,
# benchmarks/results/hand_wrist_calibration.md; no 3D ground truth used). About 3 mm radial,
# 10 mm towards the fingers and 6 mm dorsal on the neutral hand.
WRIST_PALM_COORDS = (0.032, 0.095, 0.057)
# the joints rigid on the hand's wrist bone that carry the point (their affine combination)
PALM_RIGID = ("index1", "middle1", "pinky1", "ring1", "thumb1")
# Where Leeds Sports Pose annotators put the hips: the hip joint plus a fixed offset that turns
# with the pelvis, given in ``pelvis_frame`` (outwards, up, forwards; in hip-joint distances of
# the neutral body). Learned from fitted meshes on half of the LSPET development photos and
# checked on the other half (benchmarks/calib_lsp_hips.py, results/lsp_hip_calibration.md):
# LSP's hips lie higher and further out than MediaPipe's, which the fit aims at.
LSP_HIP_COORDS = (0.099, 0.053, 0.124)
PELVIS_FRAME_JOINTS = ("pelvis", "left_hip", "right_hip", "spine1")
HAND_JOINT_NAMES = {"cmc": 1, "mcp": 2, "ip": 3}  # thumb: Anny's finger1-1/2/3 heads
FINGER_JOINT_NAMES = {"mcp": 1, "pip": 2, "dip": 3}


def _nearest_vertex(points: torch.Tensor, candidates: torch.Tensor, target: torch.Tensor) -> int:
    return int(candidates[(points[candidates] - target).norm(dim=1).argmin()])


@lru_cache(maxsize=1)
def anny_keypoint_library() -> dict[str, KeypointSpec]:
    """Every keypoint name hmrkit knows, defined on the Anny body (52-joint skeleton)."""
    data = anny_data()
    model = load_anny_body()
    rest = model.template_vertices  # neutral-ish template; picks are topological, so any shape works
    owners = model.skin_weights.argmax(dim=1)
    lib: dict[str, KeypointSpec] = {}
    for k, label in enumerate(data.coco_labels):
        w = data.coco_weights[k]
        ids = torch.nonzero(w > 0)[:, 0]
        lib[label] = KeypointSpec(vertices=tuple((int(i), float(w[i])) for i in ids))
    for name in model.skeleton.names:
        lib.setdefault(name, KeypointSpec.joint(name))
    # coco's hip/shoulder/etc. keep their surface definitions above; joint centres are named "<joint>_joint"
    for name in model.skeleton.names:
        lib[f"{name}_joint"] = KeypointSpec.joint(name)

    head = model.skeleton.index("head")
    head_vertices = torch.nonzero(owners == head)[:, 0]
    lib["head_top"] = KeypointSpec.vertex(int(head_vertices[rest[head_vertices, 1].argmax()]))
    lib["neck"] = KeypointSpec.joint("neck")
    lib["pelvis"] = KeypointSpec.joint("pelvis")
    nose = lib["nose"]
    nose_point = sum(w * rest[i] for i, w in nose.vertices)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        other = "right" if side == "left" else "left"
        eye, other_eye = lib[f"{side}_eye"], lib[f"{other}_eye"]
        lib[f"{side}_eye_inner"] = KeypointSpec.blend((eye, 0.75), (other_eye, 0.25))
        lib[f"{side}_eye_outer"] = KeypointSpec.blend((eye, 1.25), (other_eye, -0.25))
        target = nose_point + torch.tensor([sign * 0.024, -0.045, -0.02])
        lib[f"mouth_{side}"] = KeypointSpec.vertex(_nearest_vertex(rest, head_vertices, target))
        lib[f"{side}_pinky"] = KeypointSpec.joint(f"{side}_pinky1")
        lib[f"{side}_index"] = KeypointSpec.joint(f"{side}_index1")
        lib[f"{side}_thumb"] = KeypointSpec.joint(f"{side}_thumb2")
        lib[f"{side}_foot_index"] = lib[f"{side}_big_toe"]
        lib[f"{side}_hand"] = KeypointSpec.joint(f"{side}_middle1")
        lib[f"lsp14:{side}_hip"] = KeypointSpec(joints=((f"{side}_hip", 1.0),),
                                                offsets=(("pelvis", tuple(lsp_hip_offset(model, side, LSP_HIP_COORDS).tolist())),))
        _add_hand21(lib, model, side, rest, owners)
    lib["spine"] = KeypointSpec.joint("spine2")
    lib["thorax"] = KeypointSpec.joint("neck")
    lib["neck_nose"] = nose
    return lib


def _add_hand21(lib: dict[str, KeypointSpec], model: AnnyModel, side: str, rest: torch.Tensor, owners: torch.Tensor) -> None:
    """``<side>_hand:<hand21 name>`` entries: joints, plus fingertip vertices."""
    smplh_name = {"thumb": "thumb", "index": "index", "middle": "middle", "ring": "ring", "little": "pinky"}
    lib[f"{side}_hand:wrist"] = palm_point(model, side, WRIST_PALM_COORDS)
    for finger in FINGERS:
        base = f"{side}_{smplh_name[finger]}"
        names = HAND_JOINT_NAMES if finger == "thumb" else FINGER_JOINT_NAMES
        for label, k in names.items():
            lib[f"{side}_hand:{finger}_{label}"] = KeypointSpec.joint(f"{base}{k}")
        last, previous = model.skeleton.index(f"{base}3"), model.skeleton.index(f"{base}2")
        tip = fingertip_vertex(rest, owners, model.template_joints, last, previous)
        lib[f"{side}_hand:{finger}_tip"] = KeypointSpec.vertex(tip)


def rest_joints(model: AnnyModel) -> torch.Tensor:
    """(J, 3) joint positions of the neutral body at rest, float64."""
    with torch.no_grad():
        return model(model.identity_pose(1), model.default_shape(1)).joints[0].double()


def palm_point(model: AnnyModel, side: str, coords: tuple[float, float, float]) -> KeypointSpec:
    """A point fixed on the palm, given in palm-frame coordinates (see ``WRIST_PALM_COORDS``).

    Written as an affine combination of the wrist joint and the joints rigid on it
    (``PALM_RIGID``), so it moves rigidly with the wrist and scales with the hand's shape. The
    weights are the smallest ones that put the point at ``coords`` on the neutral rest hand
    (default phenotypes; the point then stays within ~1 mm of ``coords`` for other shapes).
    """
    joints = rest_joints(model)
    wrist = joints[model.skeleton.index(f"{side}_wrist")]
    rel = torch.stack([joints[model.skeleton.index(f"{side}_{n}")] - wrist for n in PALM_RIGID])  # (5, 3)
    y = rel[1] / rel[1].norm()
    x = rel[0] - rel[2]
    x = x - (x @ y) * y
    x = x / x.norm()
    z = torch.linalg.cross(x, y) * (1.0 if side == "left" else -1.0)  # out of the back of the hand on both sides
    target = rel[1].norm() * (coords[0] * x + coords[1] * y + coords[2] * z)
    a = rel.T  # (3, 5)
    w = a.T @ torch.linalg.solve(a @ a.T, target)  # least-norm weights
    return KeypointSpec(joints=((f"{side}_wrist", 1.0 - float(w.sum())),) + tuple(
        (f"{side}_{n}", float(v)) for n, v in zip(PALM_RIGID, w)))


def pelvis_frame(joints: torch.Tensor, skeleton: Skeleton, side: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The frame ``LSP_HIP_COORDS`` are given in, from (..., J, 3) joints: origin the ``side`` hip
    joint; rows of the (..., 3, 3) axes: outwards (towards the person's ``side``), up (towards
    spine1), forwards; unit: the distance between the hip joints."""
    at = {n: joints[..., skeleton.index(n), :] for n in PELVIS_FRAME_JOINTS}
    across = at["left_hip"] - at["right_hip"]
    unit = across.norm(dim=-1, keepdim=True)
    left = across / unit
    up = at["spine1"] - at["pelvis"]
    up = up - (up * left).sum(-1, keepdim=True) * left
    up = up / up.norm(dim=-1, keepdim=True)
    forward = torch.linalg.cross(left, up, dim=-1)
    outwards = left if side == "left" else -left
    return at[f"{side}_hip"], torch.stack([outwards, up, forward], dim=-2), unit


def lsp_hip_offset(model: AnnyModel, side: str, coords: tuple[float, float, float] | torch.Tensor) -> torch.Tensor:
    """(3,) ``coords`` in :func:`pelvis_frame` as a vector in the pelvis' rest axes, metres on the
    neutral body: what the ``lsp14`` hip adds to the hip joint, turned with the pelvis."""
    _, axes, unit = pelvis_frame(rest_joints(model), model.skeleton, side)
    return unit * (torch.as_tensor(coords, dtype=axes.dtype) @ axes)


def anny_keypoint_map(model: AnnyModel, convention: Convention, side: str | None = None) -> KeypointMap:
    """Keypoints of ``convention`` on an Anny body or hand; ``side`` selects the hand for ``hand21``."""
    library = anny_keypoint_library()
    if convention is not HAND21:
        return model.compile_keypoints(build_keypoint_map(library, model.skeleton, convention, notes=NOTES))
    if side not in SIDES:
        raise ValueError("hand21 needs side='left' or 'right'")
    prefix = f"{side}_hand:"
    hand = {prefix + n: library[prefix + n] for n in HAND21.names}
    if model.template_vertices.shape[0] != anny_data().template_vertices.shape[0]:
        # a hand cut from the body mesh: its own vertex numbering
        local = {int(v): i for i, v in enumerate(model.mesh_vertex_ids.tolist())}
        hand = {n: KeypointSpec(s.joints, tuple((local[i], w) for i, w in s.vertices)) for n, s in hand.items()}
    return model.compile_keypoints(build_keypoint_map(hand, model.skeleton, convention, prefix=prefix, notes=NOTES))
