"""SMPL, SMPL-H, SMPL-X and MANO, loaded from model files the user owns (never shipped by hmrkit).

The files are licensed, so hmrkit reads them from a folder the user names, with its own code:
``.npz`` through ``np.load(allow_pickle=False)`` and ``.pkl`` through a restricted unpickler
(:mod:`hmrkit.body.safe_pickle`) that never runs code, needs no ``chumpy`` and reads Python 2
files. Model data is kept in non-persistent buffers, so a ``state_dict`` that contains one of
these models never carries the licensed arrays.

``shape`` is the betas; for SMPL-X it is the betas followed by the expression coefficients
(``shape_names`` says which is which), so every model keeps the one ``BodyModel.forward``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import roma
import torch

from hmrkit.body.base import BodyModel, BodyOutput, Skeleton, check_pose_inputs
from hmrkit.body.keypoint_skinning import compile_skinned_keypoints, skinned_keypoints
from hmrkit.body.keypoints import KeypointMap
from hmrkit.errors import ModelAssetError
from hmrkit.body.lbs import batch_rigid_transform, blend_shapes, pose_features, skin, vertices2joints
from hmrkit.body.safe_pickle import RefusedPickleError, load_npz, load_pickle, to_array


class ModelFileError(ModelAssetError, ValueError):
    """A body-model file or folder is missing, unreadable, or not the model it was loaded as."""


# ---------------------------------------------------------------- skeletons

_BODY_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)  # fmt: skip
_BODY_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
_FINGER_NAMES = tuple(f"{finger}{k}" for finger in ("index", "middle", "pinky", "ring", "thumb") for k in (1, 2, 3))


def _finger_parents(wrist: int, first: int) -> tuple[int, ...]:
    """Parents of MANO's 15 finger joints (five chains of three, in MANO's order) placed at ``first``."""
    return tuple(wrist if k % 3 == 0 else first + k - 1 for k in range(15))


def _two_hands(first: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    names = tuple(f"{side}_{n}" for side in ("left", "right") for n in _FINGER_NAMES)
    return names, _finger_parents(20, first) + _finger_parents(21, first + 15)


_SMPLH_HANDS = _two_hands(22)
_SMPLX_HANDS = _two_hands(25)
SMPL_SKELETON = Skeleton(_BODY_NAMES + ("left_hand", "right_hand"), _BODY_PARENTS + (20, 21))
SMPLH_SKELETON = Skeleton(_BODY_NAMES + _SMPLH_HANDS[0], _BODY_PARENTS + _SMPLH_HANDS[1])
SMPLX_SKELETON = Skeleton(
    _BODY_NAMES + ("jaw", "left_eye_smplhf", "right_eye_smplhf") + _SMPLX_HANDS[0],
    _BODY_PARENTS + (15, 15, 15) + _SMPLX_HANDS[1],
)
MANO_SKELETON = Skeleton(("wrist",) + _FINGER_NAMES, (-1,) + _finger_parents(0, 1))

REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")


# ---------------------------------------------------------------- reading files


def _lookup(base: Path, relative: str) -> Path | None:
    """``base / relative`` matched case-insensitively (people rename ``SMPL_NEUTRAL.pkl`` freely)."""
    here = base
    for part in Path(relative).parts:
        if not here.is_dir():
            return None
        exact = here / part
        matches = [exact] if exact.exists() else [p for p in sorted(here.iterdir()) if p.name.lower() == part.lower()]
        if not matches:
            return None
        here = matches[0]
    return here if here.is_file() else None


def load_model_arrays(path: str | Path) -> dict[str, Any]:
    """The key -> value dict of a model ``.npz`` or ``.pkl`` (values may be chumpy/sparse stand-ins)."""
    path = Path(path)
    try:
        data = load_npz(path) if path.suffix.lower() == ".npz" else load_pickle(path)
    except RefusedPickleError:
        raise
    except Exception as err:  # any failure to parse an untrusted file becomes one clear message
        raise ModelFileError(f"cannot read {path}: {type(err).__name__}: {err}") from err
    if not isinstance(data, dict):
        raise ModelFileError(f"cannot read {path}: it holds a {type(data).__name__}, not a dict of model arrays")
    return data


# ---------------------------------------------------------------- the models


class SmplFamilyModel(BodyModel):
    """Loading, checks and forward shared by the family; subclasses fix skeleton, sizes and file names."""

    family: ClassVar[str]  # name in messages, e.g. "SMPL-X"
    folder_name: ClassVar[str]  # the subfolder people keep these files in, e.g. "smplx"
    skeleton: ClassVar[Skeleton]
    num_vertices: ClassVar[int]
    variants: ClassVar[tuple[str, ...]] = ("neutral", "male", "female")
    extra_keys: ClassVar[tuple[str, ...]] = ()
    # betas (and expressions) are unit-variance PCA coefficients: a fit keeps them within +-3
    shape_range: ClassVar[tuple[float, float]] = (-3.0, 3.0)

    def __init__(
        self,
        arrays: Mapping[str, Any],
        num_betas: int = 10,
        num_expression: int = 0,
        dtype: torch.dtype = torch.float32,
        source: str = "model arrays",
    ) -> None:
        super().__init__()
        data = self._checked(arrays, source)
        shapedirs = self._shape_basis(data["shapedirs"], num_betas, num_expression, source)
        betas, expressions = range(num_betas), range(num_expression)
        self.shape_names = tuple(f"beta{i}" for i in betas) + tuple(f"expression{i}" for i in expressions)
        self.source = source

        def buffer(name: str, value: np.ndarray) -> None:
            self.register_buffer(name, torch.as_tensor(np.asarray(value, np.float64), dtype=dtype), persistent=False)

        regressor = np.asarray(data["J_regressor"], np.float64)
        buffer("v_template", data["v_template"])
        buffer("shapedirs", shapedirs)
        buffer("posedirs", data["posedirs"])
        buffer("lbs_weights", data["weights"])
        buffer("joint_regressor", regressor)
        # joints depend on shape only through J_regressor (v_template + shapedirs): precompute both
        # so a keypoints-only forward never touches the vertices
        buffer("joint_template", regressor @ data["v_template"])
        buffer("joint_shapedirs", np.einsum("jv,vcs->jcs", regressor, shapedirs))
        self.register_buffer("faces", torch.as_tensor(data["f"].astype(np.int64)), persistent=False)

    # -- checks

    @classmethod
    def _checked(cls, arrays: Mapping[str, Any], source: str) -> dict[str, np.ndarray]:
        """Dense arrays for the needed keys, or one :class:`ModelFileError` saying what is wrong."""
        needed = REQUIRED_KEYS + cls.extra_keys
        missing = [k for k in needed if k not in arrays]
        if missing:
            raise ModelFileError(
                f"{source} is not a {cls.family} model file: it lacks {', '.join(missing)} (needs {', '.join(needed)})"
            )
        data = {}
        for key in needed:
            try:
                data[key] = to_array(arrays[key])
            except (ValueError, TypeError, IndexError) as err:  # e.g. a chumpy node we cannot evaluate
                raise ModelFileError(f"{source}: cannot read {key}: {err}") from err
        num_v, num_j = cls.num_vertices, len(cls.skeleton)
        if data["v_template"].ndim != 2 or data["v_template"].shape[0] != num_v:
            raise ModelFileError(
                f"{source} has a v_template of shape {data['v_template'].shape}, but {cls.family} has {num_v} vertices: "
                f"is it a {cls.family} file?"
            )
        expected = {
            "v_template": (num_v, 3),
            "shapedirs": (num_v, 3, None),
            "posedirs": (num_v, 3, 9 * (num_j - 1)),
            "J_regressor": (num_j, num_v),
            "kintree_table": (2, num_j),
            "weights": (num_v, num_j),
            "f": (None, 3),
        }
        for key, want in expected.items():
            got = data[key].shape
            if len(got) != len(want) or any(w is not None and g != w for g, w in zip(got, want)):
                shown = tuple("any" if w is None else w for w in want)
                raise ModelFileError(f"{source}: {key} has shape {got}, but a {cls.family} file has {shown}")
        parents = tuple(int(p) for p in data["kintree_table"][0, 1:])
        if parents != cls.skeleton.parents[1:]:
            raise ModelFileError(f"{source}: kintree_table parents {parents} are not {cls.family}'s")
        faces = data["f"]
        if faces.size and (faces.min() < 0 or faces.max() >= num_v):
            raise ModelFileError(f"{source}: f indexes vertices outside 0..{num_v - 1}")
        return data

    @classmethod
    def _expression_start(cls, num_dirs: int) -> int:
        """Index of the first expression direction in ``shapedirs`` (``num_dirs``: none)."""
        return num_dirs

    @classmethod
    def _shape_basis(cls, shapedirs: np.ndarray, num_betas: int, num_expression: int, source: str) -> np.ndarray:
        total = shapedirs.shape[-1]
        start = cls._expression_start(total)
        if not 0 <= num_betas <= start:
            raise ValueError(f"{source} has {start} shape directions; num_betas={num_betas} is out of range")
        if not 0 <= num_expression <= total - start:
            raise ValueError(
                f"{source} has {total - start} {cls.family} expression directions; num_expression={num_expression} is out of range"
            )
        return np.concatenate([shapedirs[..., :num_betas], shapedirs[..., start : start + num_expression]], axis=-1)

    # -- loading

    @classmethod
    def file_names(cls, variant: str) -> tuple[str, ...]:
        """File names this model may have, most common first (matched case-insensitively)."""
        raise NotImplementedError

    @classmethod
    def _search(cls, folder: Path, variant: str) -> Path | None:
        sub = cls.folder_name
        for base in (folder, folder / sub, folder / "models", folder / sub / "models"):  # models/: as released
            for name in cls.file_names(variant):
                found = _lookup(base, name)
                if found is not None:
                    return found
        return None

    @classmethod
    def find_file(cls, folder: str | Path, variant: str | None = None) -> Path:
        """The model file for ``variant`` (gender, or side for MANO) in ``folder`` or its subfolders
        ``<folder_name>/``, ``models/`` and ``<folder_name>/models/``; a file path is taken as is."""
        variant = (variant or cls.variants[0]).lower()
        if variant not in cls.variants:
            raise ValueError(f"{cls.family} comes as {', '.join(cls.variants)}, not {variant!r}")
        folder = Path(folder).expanduser()
        names = ", ".join(cls.file_names(variant))
        if folder.is_file():
            return folder
        if not folder.is_dir():
            raise ModelFileError(f"{cls.family} model folder {folder} does not exist; it should hold one of: {names}")
        found = cls._search(folder, variant)
        if found is None:
            raise ModelFileError(
                f"no {variant} {cls.family} model in {folder} (nor in its {cls.folder_name}/, models/ or "
                f"{cls.folder_name}/models/ subfolders): expected one of {names}"
            )
        return found

    @classmethod
    def from_file(cls, path: str | Path, **options: Any) -> SmplFamilyModel:
        """Load a model file; ``options`` go to the constructor (``num_betas``, ``dtype``, ...)."""
        return cls(load_model_arrays(path), source=str(path), **options)

    @classmethod
    def from_folder(cls, folder: str | Path, variant: str | None = None, **options: Any) -> SmplFamilyModel:
        return cls.from_file(cls.find_file(folder, variant), **options)

    # -- forward

    def default_shape(self, batch: int = 1) -> torch.Tensor:
        return self.v_template.new_zeros(batch, self.num_shape)

    @property
    def template_joints(self) -> torch.Tensor:
        """(J, 3) rest joints of the mean shape (what the fitter reads bone directions from)."""
        return self.joint_template

    def shape_blend(self, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) betas -> (coefficients (B, S): the betas themselves, rest joints (B, J, 3))."""
        return shape, self.joint_template + blend_shapes(shape, self.joint_shapedirs)

    def _posed_skeleton(self, rotations: torch.Tensor, shape: torch.Tensor | None, translation: torch.Tensor | None,
                        scales: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Checked inputs -> (shape (B, S), posed joints (B, J, 3), transforms (B, J, 4, 4)), no translation."""
        batch = check_pose_inputs(rotations, shape, translation, self.num_joints, self.num_shape)
        dtype = self.v_template.dtype
        for name, value in (("rotations", rotations), ("shape", shape), ("translation", translation)):
            if value is not None and value.dtype != dtype:
                raise ValueError(f"{name} is {value.dtype} but the {self.family} model is {dtype}; convert one of them")
        shape, rest_joints = self.shape_blend((self.default_shape(batch) if shape is None else shape).expand(batch, -1))
        joints, transforms = batch_rigid_transform(rotations, rest_joints, self.skeleton.parents, scales)
        return shape, joints, transforms

    def forward(
        self,
        rotations: torch.Tensor,
        shape: torch.Tensor | None = None,
        translation: torch.Tensor | None = None,
        with_vertices: bool = True,
        scales: torch.Tensor | None = None,
        keypoints: KeypointMap | None = None,
    ) -> BodyOutput:
        """Pose with SMPL-style relative rotation matrices ``(B, J, 3, 3)``; see :class:`BodyOutput`.
        ``scales`` (B, J): 0 collapses a joint's subtree onto it (:mod:`hmrkit.body.amputation`).

        ``keypoints``: a map filled into ``BodyOutput.keypoints``. With the mesh they are read from
        it (exact). Without (the fast keypoints-only pass) and with a map from
        :meth:`compile_keypoints`, the surface points are pre-skinned and **leave out the
        pose-corrective blend shapes** (a few millimetres; the fitter optimizes this pass, the
        final mesh is exact); an uncompiled map skins its few vertices with the correctives."""
        shape, joints, transforms = self._posed_skeleton(rotations, shape, translation, scales)
        vertices = None
        if with_vertices:
            rest = self.v_template + blend_shapes(shape, self.shapedirs) + blend_shapes(pose_features(rotations), self.posedirs)
            vertices = skin(rest, transforms, self.lbs_weights)
        points = None
        if keypoints is not None:
            kmap = keypoints.to(rotations.device, rotations.dtype)
            if vertices is not None:
                points = kmap.from_mesh(joints, vertices, transforms)
            elif kmap.skinned_base is not None:
                points = skinned_keypoints(kmap, shape, joints, transforms)
            else:
                ids = kmap.vertex_ids
                rest = (self.v_template[ids] + blend_shapes(shape, self.shapedirs[ids])
                        + blend_shapes(pose_features(rotations), self.posedirs[ids]))
                points = kmap.apply(joints, skin(rest, transforms, self.lbs_weights[ids]), transforms)
        if translation is not None:
            offset = translation.expand(rotations.shape[0], 3)[:, None]  # (B, 1, 3)
            joints = joints + offset
            vertices = None if vertices is None else vertices + offset
            points = None if points is None else points + offset
            transforms = transforms + torch.nn.functional.pad(offset.unsqueeze(-1), (3, 0, 0, 1))
        return BodyOutput(joints=joints, transforms=transforms, vertices=vertices, keypoints=points)

    def compile_keypoints(self, kmap: KeypointMap) -> KeypointMap:
        """Pre-skin the vertex part of ``kmap`` per joint (shape blend shapes kept, pose
        correctives left out: see :meth:`forward`)."""
        kmap = kmap.to(self.v_template.device, self.v_template.dtype)
        ids = kmap.vertex_ids
        return compile_skinned_keypoints(kmap, self.lbs_weights[ids], self.v_template[ids], self.shapedirs[ids].permute(2, 0, 1))

    def regress_joints(self, vertices: torch.Tensor) -> torch.Tensor:
        """The file's joint regressor applied to any ``(B, V, 3)`` vertices (e.g. a fitted mesh)."""
        return vertices2joints(self.joint_regressor, vertices)


def _body_names(prefix: str, variant: str) -> tuple[str, ...]:
    return f"{prefix}_{variant.upper()}.pkl", f"{prefix}_{variant.upper()}.npz"


class SMPL(SmplFamilyModel):
    """SMPL: 24 joints, 6890 vertices."""

    family, folder_name, skeleton, num_vertices = "SMPL", "smpl", SMPL_SKELETON, 6890

    @classmethod
    def file_names(cls, variant: str) -> tuple[str, ...]:
        short = {"neutral": "neutral", "male": "m", "female": "f"}[variant]
        releases = tuple(f"basicmodel_{short}_lbs_10_207_0_v1.{minor}.0.pkl" for minor in (1, 0))
        return _body_names("SMPL", variant) + releases


class SMPLH(SmplFamilyModel):
    """SMPL+H: 52 joints (22 body, 15 per hand in MANO's finger order), 6890 vertices."""

    family, folder_name, skeleton, num_vertices = "SMPL-H", "smplh", SMPLH_SKELETON, 6890

    @classmethod
    def file_names(cls, variant: str) -> tuple[str, ...]:
        return _body_names("SMPLH", variant) + (f"{variant}/model.npz",)  # the last: AMASS's layout


class SMPLX(SmplFamilyModel):
    """SMPL-X: 55 joints (body, jaw, eyes, hands), 10475 vertices.

    ``shape`` is ``num_betas`` betas followed by ``num_expression`` expression coefficients.
    Files with 400 directions hold 300 betas then 100 expressions; older ones 10 and 10.
    """

    family, folder_name, skeleton, num_vertices = "SMPL-X", "smplx", SMPLX_SKELETON, 10475

    def __init__(
        self,
        arrays: Mapping[str, Any],
        num_betas: int = 10,
        num_expression: int = 10,
        dtype: torch.dtype = torch.float32,
        source: str = "model arrays",
    ) -> None:
        super().__init__(arrays, num_betas, num_expression, dtype, source)

    @classmethod
    def _expression_start(cls, num_dirs: int) -> int:
        return 300 if num_dirs >= 400 else num_dirs // 2

    @classmethod
    def file_names(cls, variant: str) -> tuple[str, ...]:
        return f"SMPLX_{variant.upper()}.npz", f"SMPLX_{variant.upper()}.pkl", f"SMPLX_{variant.upper()}_2020.npz"


def hand_pca_to_rotations(coeffs: torch.Tensor, components: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    """MANO finger rotations ``(B, 15, 3, 3)`` from PCA coefficients ``(B, K)``.

    ``components`` ``(>= K, 45)`` are the file's ``hands_components`` (rows are axis-angle
    bases); ``mean`` (45,) is ``hands_mean``, added as the MANO/SMPL-X tools do unless the
    caller wants a flat-hand mean (pass ``None``).
    """
    k = coeffs.shape[-1]
    if coeffs.dim() != 2 or k > components.shape[0]:
        raise ValueError(f"PCA coefficients must have shape (B, K) with K <= {components.shape[0]}, got {tuple(coeffs.shape)}")
    axis_angle = coeffs @ components[:k]
    if mean is not None:
        axis_angle = axis_angle + mean
    return roma.rotvec_to_rotmat(axis_angle.reshape(-1, 15, 3))


class MANO(SmplFamilyModel):
    """MANO hand: 16 joints (wrist, then index, middle, pinky, ring, thumb), 778 vertices.

    The side comes from the file name (``MANO_LEFT.pkl``). Known quirk of the official files:
    ``MANO_LEFT.pkl``'s ``shapedirs`` x-component has the wrong sign (vchoutas/smplx#48); it is
    loaded as is.
    """

    family, folder_name, skeleton, num_vertices = "MANO", "mano", MANO_SKELETON, 778
    variants = ("right", "left")
    extra_keys = ("hands_components", "hands_mean")

    def __init__(
        self,
        arrays: Mapping[str, Any],
        num_betas: int = 10,
        dtype: torch.dtype = torch.float32,
        source: str = "model arrays",
        side: str | None = None,
    ) -> None:
        super().__init__(arrays, num_betas, 0, dtype, source)
        self.side = side or ("left" if "left" in Path(source).name.lower() else "right")
        if self.side not in self.variants:
            raise ValueError(f"MANO side must be 'right' or 'left', not {self.side!r}")
        for name, key in (("hand_components", "hands_components"), ("hand_mean", "hands_mean")):
            value = torch.as_tensor(np.asarray(to_array(arrays[key]), np.float64), dtype=dtype)
            self.register_buffer(name, value, persistent=False)
        if self.hand_components.shape != (45, 45) or self.hand_mean.shape != (45,):
            raise ModelFileError(f"{source}: hands_components/hands_mean must be (45, 45)/(45,)")

    @classmethod
    def file_names(cls, variant: str) -> tuple[str, ...]:
        return f"MANO_{variant.upper()}.pkl", f"MANO_{variant.upper()}.npz"

    def pose_from_pca(self, coeffs: torch.Tensor, wrist: torch.Tensor | None = None, add_mean: bool = True) -> torch.Tensor:
        """Rotations ``(B, 16, 3, 3)`` for ``forward`` from ``K`` PCA coefficients and a wrist rotation."""
        fingers = hand_pca_to_rotations(coeffs, self.hand_components, self.hand_mean if add_mean else None)
        if wrist is None:
            wrist = torch.eye(3, dtype=fingers.dtype, device=fingers.device).expand(fingers.shape[0], 3, 3)
        return torch.cat([wrist.unsqueeze(1), fingers], dim=1)


MODEL_CLASSES: dict[str, type[SmplFamilyModel]] = {"smpl": SMPL, "smplh": SMPLH, "smplx": SMPLX, "mano": MANO}


def load_smpl_family(
    kind: str, folder: str | Path, gender: str = "neutral", side: str = "right", **options: Any
) -> SmplFamilyModel:
    """Load ``kind`` (smpl, smplh, smplx, mano) from the user's folder; MANO uses ``side``, others ``gender``."""
    cls = MODEL_CLASSES.get(kind.lower())
    if cls is None:
        raise ValueError(f"unknown body model {kind!r}; choose one of {', '.join(MODEL_CLASSES)}")
    return cls.from_folder(folder, side if cls is MANO else gender, **options)


@dataclass(frozen=True)
class FoundModelFile:
    kind: str  # key of MODEL_CLASSES
    variant: str  # gender, or side for MANO
    path: Path


def list_smpl_family_files(folder: str | Path) -> list[FoundModelFile]:
    """Which SMPL-family files ``folder`` holds (for ``hmrkit doctor``); nothing is loaded."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return []
    return [
        FoundModelFile(kind, variant, path)
        for kind, cls in MODEL_CLASSES.items()
        for variant in cls.variants
        if (path := cls._search(folder, variant)) is not None
    ]
