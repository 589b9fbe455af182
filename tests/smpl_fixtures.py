"""Synthetic SMPL-family model files for tests, and an independent numpy reference of the SMPL function.

The files have the real format (keys, vertex and face counts, kinematic trees, chumpy objects,
sparse regressors, Python 2 pickles) and random values: no licensed data is involved. The
parents below are typed in from the published kintree tables, independently of hmrkit.
"""

from __future__ import annotations

import pickle
import struct
import sys
import types
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse

_BODY = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
PARENTS = {
    "smpl": _BODY + [20, 21],
    "smplh": _BODY
    + [20, 22, 23, 20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35]
    + [21, 37, 38, 21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50],
    "smplx": _BODY
    + [15, 15, 15]
    + [20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38]
    + [21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53],
    "mano": [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14],
}
NUM_VERTICES = {"smpl": 6890, "smplh": 6890, "smplx": 10475, "mano": 778}
NUM_FACES = {"smpl": 13776, "smplh": 13776, "smplx": 20908, "mano": 1538}


@dataclass
class SynthModel:
    """Dense float64 arrays under the files' key names (what the reference uses) plus the dirs in use."""

    arrays: dict[str, np.ndarray]
    kind: str

    @property
    def parents(self) -> list[int]:
        return PARENTS[self.kind]

    def shape_dirs(self, num_betas: int = 10, num_expression: int = 0, expression_start: int = 0) -> np.ndarray:
        dirs = self.arrays["shapedirs"]
        return np.concatenate([dirs[..., :num_betas], dirs[..., expression_start : expression_start + num_expression]], -1)


def synth_model(kind: str, num_shape_dirs: int = 10, seed: int = 0, num_vertices: int | None = None) -> SynthModel:
    """Random arrays of the real sizes; ``num_vertices`` may shrink them for quick function tests."""
    rng = np.random.default_rng(seed)
    parents = PARENTS[kind]
    v, j = num_vertices or NUM_VERTICES[kind], len(parents)
    regressor = np.zeros((j, v))
    for row in regressor:  # each joint: a convex combination of a few vertices, as in the real files
        row[rng.choice(v, 8, replace=False)] = rng.dirichlet(np.ones(8))
    arrays = {
        "v_template": rng.normal(scale=0.3, size=(v, 3)),
        "shapedirs": rng.normal(scale=0.02, size=(v, 3, num_shape_dirs)),
        "posedirs": rng.normal(scale=0.02, size=(v, 3, 9 * (j - 1))),
        "J_regressor": regressor,
        "kintree_table": np.array([[2**32 - 1] + parents[1:], list(range(j))], dtype=np.int64),
        "weights": rng.dirichlet(np.full(j, 0.3), size=v),
        "f": rng.integers(0, v, size=(NUM_FACES[kind] if num_vertices is None else 10, 3)).astype(np.uint32),
    }
    if kind == "mano":
        arrays["hands_components"] = rng.normal(scale=0.3, size=(45, 45))
        arrays["hands_mean"] = rng.normal(scale=0.2, size=45)
    return SynthModel(arrays, kind)


# ---------------------------------------------------------------- pickles with chumpy objects


_FAKE_CLASSES: dict[tuple[str, str], type] = {}


def chumpy_object(module: str, name: str, **state) -> object:
    """An object that pickles exactly as chumpy's ``module.name`` with ``state`` as its ``__dict__``."""
    cls = _FAKE_CLASSES.setdefault((module, name), type(name, (), {"__module__": module, "__qualname__": name}))
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


def ch(x: np.ndarray) -> object:
    """A ``chumpy.ch.Ch`` with the fields chumpy's ``__getstate__`` leaves (a set among them)."""
    return chumpy_object(
        "chumpy.ch", "Ch", x=x, _dirty_vars={"x"}, _itr=None, _depends_on_deps={}, _make_dense=False, _make_sparse=False
    )


@contextmanager
def _fake_chumpy_modules():
    """Make the fake classes importable under chumpy's names while pickling, and only then."""
    assert "chumpy" not in sys.modules, "tests assume chumpy is not installed"
    added = []
    for (module, name), cls in _FAKE_CLASSES.items():
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix not in sys.modules:
                sys.modules[prefix] = types.ModuleType(prefix)
                added.append(prefix)
        setattr(sys.modules[module], name, cls)
    try:
        yield
    finally:
        for prefix in added:
            del sys.modules[prefix]


_PY2_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"): "numpy.core.multiarray\n_reconstruct\n",
    ("numpy._core.multiarray", "scalar"): "numpy.core.multiarray\nscalar\n",
    ("scipy.sparse._csc", "csc_matrix"): "scipy.sparse.csc\ncsc_matrix\n",
    ("scipy.sparse._csr", "csr_matrix"): "scipy.sparse.csr\ncsr_matrix\n",
}


class Py2StylePickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote: ``str``/``bytes`` as Python 2 strings (BINSTRING), so array
    bytes arrive as latin1 text, and the module paths of that era (``numpy.core``, ``scipy.sparse.csc``)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: str | bytes) -> None:
        if isinstance(obj, str) and not obj.isascii():
            return pickle._Pickler.save_str(self, obj)
        data = obj.encode("ascii") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None) -> None:
        old = _PY2_GLOBALS.get((getattr(obj, "__module__", None), name or getattr(obj, "__qualname__", None)))
        if old is None:
            return super().save_global(obj, name)
        self.write(pickle.GLOBAL + old.encode("ascii"))
        self.memoize(obj)


def dump_pickle(obj: object, path: Path, style: str = "py2", protocol: int = 4) -> Path:
    """``style``: ``py2`` (protocol 2, Python 2 strings and module paths) or ``py3`` (at ``protocol``)."""
    with _fake_chumpy_modules(), path.open("wb") as f:
        if style == "py2":
            Py2StylePickler(f, protocol=2).dump(obj)
        else:
            pickle.dump(obj, f, protocol=protocol)
    return path


def as_official_pickle(model: SynthModel) -> dict:
    """The arrays laid out as the official ``.pkl`` files hold them (chumpy, sparse, extra keys)."""
    a = dict(model.arrays)
    out = {**a, "J_regressor": scipy.sparse.csc_matrix(a["J_regressor"]), "bs_style": "lbs", "bs_type": "lrotmin"}
    out["kintree_table"] = a["kintree_table"].astype(np.uint32)
    if model.kind == "mano":  # MANO: Select over a Ch holding twice the directions, as in MANO_*.pkl
        full = np.concatenate([a["shapedirs"], np.zeros_like(a["shapedirs"])], axis=-1)
        idxs = np.arange(full.size).reshape(full.shape)[..., : a["shapedirs"].shape[-1]].ravel()
        out["shapedirs"] = chumpy_object(
            "chumpy.reordering", "Select", a=ch(full), idxs=idxs, preferred_shape=a["shapedirs"].shape
        )
        out["hands_coeffs"] = np.zeros((3, 45))
    else:
        out["shapedirs"] = ch(a["shapedirs"])
        out["weights"] = ch(a["weights"])
    rest_joints = a["J_regressor"] @ a["v_template"]
    out["J"] = chumpy_object("chumpy.reordering", "transpose", a=ch(rest_joints.T), axes=None)
    out["v_shaped"] = chumpy_object("chumpy.ch", "MatVecMult", mtx=None)  # never evaluated by loaders
    out["pose_training_info"] = {"body_model": "synthetic", "seed": 0}
    return out


def write_npz(model: SynthModel, path: Path) -> Path:
    """An ``.npz`` like SMPL-X's, float32, with an object array (``joint2num``) that must be skipped."""
    arrays = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in model.arrays.items()}
    np.savez(path, **arrays, joint2num=np.array({"pelvis": 0}, dtype=object))
    return path


# ---------------------------------------------------------------- independent reference


def rodrigues(rotvecs: np.ndarray) -> np.ndarray:
    """Rotation matrices from axis-angle, written out (the tests' own, not roma's)."""
    out = np.empty(rotvecs.shape[:-1] + (3, 3))
    for index in np.ndindex(rotvecs.shape[:-1]):
        r = rotvecs[index]
        angle = np.linalg.norm(r)
        k = r / angle if angle > 0 else np.zeros(3)
        cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        out[index] = np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
    return out


def reference_forward(
    model: SynthModel, shapedirs: np.ndarray, rotations: np.ndarray, shape: np.ndarray, translation: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SMPL's equations one sample and one joint at a time: vertices, joints, rest->posed transforms."""
    a, parents = model.arrays, model.parents
    num_joints = len(parents)
    all_vertices, all_joints, all_transforms = [], [], []
    for rot, beta, trans in zip(rotations, shape, translation):
        v_shaped = a["v_template"] + np.einsum("vcs,s->vc", shapedirs, beta)
        rest = a["J_regressor"] @ v_shaped
        features = np.concatenate([(rot[j] - np.eye(3)).reshape(-1) for j in range(1, num_joints)])
        v_posed = v_shaped + np.einsum("vcp,p->vc", a["posedirs"], features)
        world = np.zeros((num_joints, 4, 4))
        for j in range(num_joints):
            local = np.eye(4)
            local[:3, :3] = rot[j]
            local[:3, 3] = rest[j] - (rest[parents[j]] if j > 0 else 0)
            world[j] = local if j == 0 else world[parents[j]] @ local
        skinning = world.copy()
        for j in range(num_joints):
            skinning[j, :3, 3] -= world[j, :3, :3] @ rest[j]
        skinning[:, :3, 3] += trans
        per_vertex = np.einsum("vj,jab->vab", a["weights"], skinning)
        homogeneous = np.concatenate([v_posed, np.ones((len(v_posed), 1))], axis=1)
        all_vertices.append(np.einsum("vab,vb->va", per_vertex, homogeneous)[:, :3])
        all_joints.append(world[:, :3, 3] + trans)
        all_transforms.append(skinning)
    return np.stack(all_vertices), np.stack(all_joints), np.stack(all_transforms)
