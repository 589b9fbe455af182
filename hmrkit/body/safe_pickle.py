"""Read licensed body-model files (SMPL-family ``.pkl`` / ``.npz``) without running their code.

A pickle can call any importable function while it loads, so a model file from the internet is
a program. :class:`ModelUnpickler` admits only what model files hold: numpy arrays and dtypes,
plain containers, scipy sparse matrices and chumpy objects. The last two are rebuilt as small
stand-ins of ours from their stored fields (never through scipy's or chumpy's own classes), so
files written by Python 2, old scipy (``scipy.sparse.csc``) and chumpy load on any version, and
neither chumpy nor a particular scipy is needed. ``np.asarray`` (or :func:`to_array`) turns a
stand-in into a dense array.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from hmrkit.errors import ModelAssetError


class RefusedPickleError(ModelAssetError, ValueError):
    """A pickle asked for something that is not model data (and may run code): it was not loaded."""


# ---------------------------------------------------------------- stand-ins for pickled objects


class _StateHolder:
    """Base of our stand-ins: unpickling calls ``__setstate__`` with the object's stored ``__dict__``."""

    pickled_as = "?"

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise RefusedPickleError(f"{self.pickled_as} carries a {type(state).__name__} state, not a field dict")
        self.state = state

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.value(), dtype=dtype)

    def value(self) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError


class ChumpyObject(_StateHolder):
    """A pickled ``chumpy`` expression; evaluates the node kinds found in SMPL-family files.

    Official files hold ``Ch`` (an array ``x``) and, in MANO, ``reordering.Select`` over a ``Ch``;
    a few other cheap nodes are evaluated too. Anything else fails only when its value is asked
    for, so keys the loader ignores (e.g. ``J`` in some files) never get in the way.
    """

    def field(self, name: str) -> np.ndarray:
        if name not in self.state:
            raise ValueError(f"the chumpy node {self.pickled_as} has no field {name!r}")
        return to_array(self.state[name])

    def value(self) -> np.ndarray:
        kind, s = self.pickled_as.rsplit(".", 1)[-1], self.state
        if kind == "Ch" and "x" in s:
            return self.field("x")
        if kind == "Select":
            picked = self.field("a").ravel()[np.asarray(s["idxs"])]
            return picked.reshape(s["preferred_shape"]) if "preferred_shape" in s else picked
        if kind == "Reshape":
            return self.field("a").reshape(s["newshape"])
        if kind == "transpose":
            return np.transpose(self.field("a"), s.get("axes"))
        if kind in ("add", "subtract", "multiply"):
            return getattr(np, kind)(self.field("a"), self.field("b"))
        raise ValueError(f"cannot evaluate the chumpy node {self.pickled_as} (fields: {', '.join(sorted(s))})")


class SparseMatrixState(_StateHolder):
    """A pickled scipy sparse matrix (any scipy version's field names), rebuilt on demand."""

    def to_scipy(self) -> scipy.sparse.spmatrix:
        s = self.state
        shape = tuple(s["_shape"] if "_shape" in s else s["shape"])
        fmt = self.pickled_as.rsplit(".", 1)[-1][:3]
        if fmt == "coo":
            rows, cols = s["coords"] if "coords" in s else (s["row"], s["col"])
            return scipy.sparse.coo_matrix((s["data"], (rows, cols)), shape=shape)
        build = scipy.sparse.csc_matrix if fmt == "csc" else scipy.sparse.csr_matrix
        return build((s["data"], s["indices"], s["indptr"]), shape=shape)

    def value(self) -> np.ndarray:
        return self.to_scipy().toarray()


def _stand_in(base: type[_StateHolder], module: str, name: str) -> type[_StateHolder]:
    # a fresh class per lookup: a pickle may set attributes on the classes it gets (BUILD on a
    # global), and must not change how later files load
    return type(name, (base,), {"pickled_as": f"{module}.{name}"})


def to_array(value: Any) -> np.ndarray:
    """Dense numpy array from an array, a stand-in, a scipy sparse matrix or a nested list."""
    if isinstance(value, _StateHolder):
        return value.value()
    if scipy.sparse.issparse(value):
        return value.toarray()
    return np.asarray(value)


# ---------------------------------------------------------------- the allow-list


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """Python 3 pickles ``bytes`` as ``_codecs.encode(text, "latin1")`` at protocol <= 2; only that."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise RefusedPickleError(f"_codecs.encode with codec {encoding!r} is not model data")
    return codecs.encode(text, "latin1")


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copyreg._reconstructor`` (protocol 0/1 objects), limited to our stand-ins."""
    if not (isinstance(cls, type) and issubclass(cls, _StateHolder) and base is object and state is None):
        raise RefusedPickleError(f"copyreg._reconstructor({cls!r}, {base!r}) is not model data")
    return object.__new__(cls)


_ARRAY = np.ndarray(0)
_NUMPY = {
    "_reconstruct": _ARRAY.__reduce__()[0],
    "scalar": np.float64(0).__reduce__()[0],
    "_frombuffer": _ARRAY.__reduce_ex__(5)[0],
}
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric")
_SPARSE_NAMES = ("csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array")
_BUILTINS = {"set": set, "frozenset": frozenset, "object": object}  # chumpy state holds sets

_ALLOWED: dict[tuple[str, str], Any] = {
    **{(m, n): f for m in _NUMPY_MODULES for n, f in _NUMPY.items()},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(m, n): f for m in ("builtins", "__builtin__") for n, f in _BUILTINS.items()},
    ("_codecs", "encode"): _latin1_bytes,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
}


def _allowed_global(module: str, name: str) -> Any | None:
    found = _ALLOWED.get((module, name))
    if found is not None:
        return found
    if module.split(".")[0] == "chumpy" and name.isidentifier():
        return _stand_in(ChumpyObject, module, name)
    if module.startswith("scipy.sparse") and name in _SPARSE_NAMES:
        return _stand_in(SparseMatrixState, module, name)
    return None


class ModelUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the globals model files need (see module doc)."""

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file, encoding="latin1")  # latin1: Python 2 ``str`` array bytes load intact
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        found = _allowed_global(module, name)
        if found is None:
            raise RefusedPickleError(f"refusing to load {self.source}: it asks for {module}.{name}, which is not model data")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickleError(f"refusing to load {self.source}: it uses persistent ids, which model files never do")


def load_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` with :class:`ModelUnpickler`; :class:`RefusedPickleError` if it wants more."""
    path = Path(path)
    with path.open("rb") as f:
        return ModelUnpickler(f, str(path)).load()


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every plain array of an ``.npz`` (``allow_pickle=False``); object arrays are left out.

    SMPL-X ``.npz`` files carry a few object arrays (e.g. ``joint2num``) that no model needs;
    loading them would mean unpickling.
    """
    out: dict[str, np.ndarray] = {}
    with np.load(Path(path), allow_pickle=False) as npz:
        for name in npz.files:
            try:
                out[name] = npz[name]
            except ValueError:  # "Object arrays cannot be loaded when allow_pickle=False"
                continue
    return out

