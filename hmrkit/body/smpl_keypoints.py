"""Where each named keypoint lies on SMPL, SMPL-H and SMPL-X: joints plus surface vertices.

Surface points use vertex ids of the published mesh topologies (SMPL and SMPL-H share one,
6890 vertices; SMPL-X has 10475). The ids below are public facts about those topologies, as
listed in the SMPL-X authors' ``smplx/vertex_ids.py`` (github.com/vchoutas/smplx), the table
behind their OpenPose/COCO "extra joints"; hmrkit holds its own table of them here. Points the
table lacks (mouth corners, top of the head) are picked once by geometry on the user's own
rest mesh, as for Anny (:mod:`hmrkit.body.anny_keypoints`).
"""

from __future__ import annotations

import torch

from hmrkit.body.conventions import FINGERS, HAND21, Convention
from hmrkit.body.keypoints import KeypointMap, KeypointSpec, build_keypoint_map
from hmrkit.body.smpl_family import SMPLX, SmplFamilyModel

# name -> vertex id: (SMPL / SMPL-H topology, SMPL-X topology)
SURFACE_VERTICES: dict[str, tuple[int, int]] = {
    "nose": (332, 9120),
    "left_eye": (2800, 9448),
    "right_eye": (6260, 9929),
    "left_ear": (583, 6),
    "right_ear": (4071, 616),
    "left_big_toe": (3216, 5770),
    "left_small_toe": (3226, 5780),
    "left_heel": (3387, 8846),
    "right_big_toe": (6617, 8463),
    "right_small_toe": (6624, 8474),
    "right_heel": (6787, 8635),
    "left_hand:thumb_tip": (2746, 5361),
    "left_hand:index_tip": (2319, 4933),
    "left_hand:middle_tip": (2445, 5058),
    "left_hand:ring_tip": (2556, 5169),
    "left_hand:little_tip": (2673, 5286),
    "right_hand:thumb_tip": (6191, 8079),
    "right_hand:index_tip": (5782, 7669),
    "right_hand:middle_tip": (5905, 7794),
    "right_hand:ring_tip": (6016, 7905),
    "right_hand:little_tip": (6133, 8022),
}

NOTES = {
    "left_eye_inner": "approximation: a quarter of the way from the eye vertex to the other eye",
    "left_eye_outer": "approximation: the eye vertex pushed a quarter eye-distance outwards",
    "mouth_left": "approximation: head vertex nearest to 4.5 cm below, 2 cm behind and 2.4 cm beside the nose on the rest mesh",
    "head_top": "the highest head vertex on the user's rest mesh",
    "left_pinky": "approximation: MediaPipe's pose 'pinky' as the little-finger knuckle (SMPL: the hand joint)",
    "left_index": "approximation: MediaPipe's pose 'index' as the index knuckle (SMPL: the hand joint)",
    "left_thumb": "approximation: MediaPipe's pose 'thumb' as the thumb MCP joint (SMPL: the hand joint)",
    "left_hand:wrist": "the model's wrist joint (MediaPipe's hand wrist lies a little towards the palm)",
    "left_hand:index_mcp": "SMPL (no finger joints): a point on the rigid hand between the hand joint and the fingertip",
}
NOTES.update({k.replace("left", "right", 1): v for k, v in list(NOTES.items()) if k.startswith("left_")})

_SMPLH_FINGER = {"thumb": "thumb", "index": "index", "middle": "middle", "ring": "ring", "little": "pinky"}
_THUMB_JOINTS = {"cmc": 1, "mcp": 2, "ip": 3}
_FINGER_JOINTS = {"mcp": 1, "pip": 2, "dip": 3}


def _topology(model: SmplFamilyModel) -> int:
    """Column of ``SURFACE_VERTICES`` for this model's mesh."""
    return 1 if isinstance(model, SMPLX) else 0


def _head_vertices(model: SmplFamilyModel) -> torch.Tensor:
    """Vertices mostly skinned to the head or a joint below it (jaw, eyes)."""
    head = set(model.skeleton.subtree(model.skeleton.index("head")))
    owners = model.lbs_weights.argmax(dim=1)
    inside = torch.tensor([int(o) in head for o in owners.tolist()])
    return torch.nonzero(inside)[:, 0]


def smpl_keypoint_library(model: SmplFamilyModel) -> dict[str, KeypointSpec]:
    """Every keypoint name hmrkit's body outputs and fit use, defined on ``model``'s skeleton and mesh."""
    column = _topology(model)
    names = model.skeleton.names
    lib: dict[str, KeypointSpec] = {name: KeypointSpec.joint(name) for name in names}
    lib.update({f"{name}_joint": KeypointSpec.joint(name) for name in names})
    lib.update({name: KeypointSpec.vertex(ids[column]) for name, ids in SURFACE_VERTICES.items()})
    rest = model.v_template.double()
    head = _head_vertices(model)
    lib["head_top"] = KeypointSpec.vertex(int(head[rest[head, 1].argmax()]))
    nose = rest[SURFACE_VERTICES["nose"][column]]
    has_fingers = "left_index1" in names
    for side, sign in (("left", 1.0), ("right", -1.0)):
        other = "right" if side == "left" else "left"
        eye, other_eye = lib[f"{side}_eye"], lib[f"{other}_eye"]
        lib[f"{side}_eye_inner"] = KeypointSpec.blend((eye, 0.75), (other_eye, 0.25))
        lib[f"{side}_eye_outer"] = KeypointSpec.blend((eye, 1.25), (other_eye, -0.25))
        target = nose + torch.tensor([sign * 0.024, -0.045, -0.02], dtype=rest.dtype)
        lib[f"mouth_{side}"] = KeypointSpec.vertex(int(head[(rest[head] - target).norm(dim=1).argmin()]))
        lib[f"{side}_foot_index"] = lib[f"{side}_big_toe"]
        if has_fingers:
            lib[f"{side}_pinky"] = KeypointSpec.joint(f"{side}_pinky1")
            lib[f"{side}_index"] = KeypointSpec.joint(f"{side}_index1")
            lib[f"{side}_thumb"] = KeypointSpec.joint(f"{side}_thumb2")
        else:
            for name in ("pinky", "index", "thumb"):
                lib[f"{side}_{name}"] = KeypointSpec.joint(f"{side}_hand")
        _add_hand21(lib, side, has_fingers)
    lib["spine"] = KeypointSpec.joint("spine2")
    lib["thorax"] = KeypointSpec.joint("neck")
    lib["neck_nose"] = lib["nose"]
    return lib


def _add_hand21(lib: dict[str, KeypointSpec], side: str, has_fingers: bool) -> None:
    """``<side>_hand:<hand21 name>`` entries. SMPL's hand is one rigid segment (``<side>_hand``
    joint, no fingers): its finger points are placed along hand joint -> fingertip vertex."""
    lib[f"{side}_hand:wrist"] = KeypointSpec.joint(f"{side}_wrist")
    for finger in FINGERS:
        tip = lib[f"{side}_hand:{finger}_tip"]
        joints = _THUMB_JOINTS if finger == "thumb" else _FINGER_JOINTS
        for label, k in joints.items():
            if has_fingers:
                lib[f"{side}_hand:{finger}_{label}"] = KeypointSpec.joint(f"{side}_{_SMPLH_FINGER[finger]}{k}")
            else:
                along = (k - 1) / 3
                lib[f"{side}_hand:{finger}_{label}"] = KeypointSpec.blend(
                    (KeypointSpec.joint(f"{side}_hand"), 1.0 - along), (tip, along))


def smpl_keypoint_map(model: SmplFamilyModel, convention: Convention, compiled: bool = True) -> KeypointMap:
    """Keypoints of a body ``convention`` (not ``hand21`` alone: use the ``<side>_hand:`` names of
    the fit's convention) on ``model``; ``compiled`` pre-skins them for the keypoints-only pass."""
    if convention is HAND21:
        raise ValueError("hand21 alone is not defined on a body model; use the fit convention's '<side>_hand:' names")
    kmap = build_keypoint_map(smpl_keypoint_library(model), model.skeleton, convention, notes=NOTES)
    return model.compile_keypoints(kmap) if compiled else kmap
