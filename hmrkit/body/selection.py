"""Which body model the pipeline fits: Anny (embedded, the default) or the user's own SMPL / SMPL-X.

A typed choice (:class:`BodyModelChoice`) goes in; a :class:`SelectedBody` comes out with the
model and its two keypoint maps (the fit's ``FIT_KEYPOINTS`` and the outputs' ``BODY_OUTPUT``),
so the pipeline never branches on the model's name.

SMPL-family files are licensed: hmrkit never ships or downloads them; users pass the folder
they keep them in. Differences from Anny that users see (docs/output.md): the learned pose prior
(trained on Anny's A-pose rest) is not used, so unseen joints drift towards SMPL's T-pose;
SMPL-X's fingers and plain SMPL's rigid hands stay at rest (hands are fitted as landmarks).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from hmrkit.body.base import BodyModel
from hmrkit.body.conventions import BODY_OUTPUT
from hmrkit.body.keypoints import KeypointMap
from hmrkit.fitting.targets import FIT_KEYPOINTS


class BodyModelKind(enum.Enum):
    ANNY = "anny"
    SMPL = "smpl"
    SMPLX = "smplx"


@dataclass(frozen=True)
class BodyModelChoice:
    kind: BodyModelKind = BodyModelKind.ANNY
    model_dir: Path | None = None  # SMPL / SMPL-X: the folder (or the file) holding the user's model
    gender: str = "neutral"  # SMPL / SMPL-X variant
    num_betas: int = 10


@dataclass
class SelectedBody:
    name: str  # what the outputs' ``body_model`` field says
    model: BodyModel
    fit_keypoints: KeypointMap  # FIT_KEYPOINTS, compiled for the keypoints-only pass
    output_keypoints: KeypointMap  # BODY_OUTPUT
    use_pose_prior: bool  # the learned VAE prior fits this model's rest pose
    articulated_fingers: bool  # the hand IK's finger rotations apply to this skeleton


def load_body(choice: BodyModelChoice) -> SelectedBody:
    """Load the chosen model; a missing folder or a bad file raises one-line :class:`ModelFileError`."""
    if choice.kind is BodyModelKind.ANNY:
        from hmrkit.body.anny_keypoints import anny_keypoint_library, anny_keypoint_map
        from hmrkit.body.anny_model import load_anny_body
        from hmrkit.body.keypoints import build_keypoint_map

        model = load_anny_body()
        fit = model.compile_keypoints(build_keypoint_map(anny_keypoint_library(), model.skeleton, FIT_KEYPOINTS))
        return SelectedBody("anny", model, fit, anny_keypoint_map(model, BODY_OUTPUT), True, True)
    # only here: the SMPL-family loader brings scipy.sparse (for the .pkl files), ~0.1 s to import
    from hmrkit.body.smpl_family import SMPL, SMPLX, ModelFileError
    from hmrkit.body.smpl_keypoints import smpl_keypoint_map

    cls = SMPL if choice.kind is BodyModelKind.SMPL else SMPLX
    if choice.model_dir is None:
        raise ModelFileError(f"the {cls.family} body model needs --model-dir: the folder holding your {cls.family} files "
                             f"(hmrkit cannot ship them; get them from the model's website)")
    options = {"num_expression": 0} if cls is SMPLX else {}  # expressions are not estimated
    model = cls.from_folder(choice.model_dir, choice.gender, num_betas=choice.num_betas, **options)
    return SelectedBody(choice.kind.value, model, smpl_keypoint_map(model, FIT_KEYPOINTS),
                        smpl_keypoint_map(model, BODY_OUTPUT), False, False)
