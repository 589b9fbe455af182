"""The restricted unpickler: model data loads (any protocol, Python 2, chumpy, old scipy); code never runs."""

from __future__ import annotations

import builtins
import os
import pickle
import pickletools

import numpy as np
import pytest
import scipy.sparse
from smpl_fixtures import ch, chumpy_object, dump_pickle

from hmrkit.body.safe_pickle import RefusedPickleError, load_npz, load_pickle, to_array

DATA = {
    "float": np.random.default_rng(0).normal(size=(4, 3, 2)),
    "fortran": np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
    "uint32": np.array([[2**32 - 1, 0, 1]], dtype=np.uint32),
    "scalar": np.float64(2.5),
    "text": "lbs",
    "nested": {"tuple": (1, 2.0, None, True), "list": [1, "a"], "set": {1, 2}, "frozen": frozenset({3})},
}


def _same(loaded: dict) -> None:
    for key in ("float", "fortran", "uint32"):
        np.testing.assert_array_equal(loaded[key], DATA[key])
        assert loaded[key].dtype == DATA[key].dtype
    assert loaded["scalar"] == 2.5 and loaded["text"] == "lbs" and loaded["nested"] == DATA["nested"]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_model_data_loads_at_every_protocol(tmp_path, protocol):
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(DATA, protocol=protocol))
    _same(load_pickle(path))


def test_python2_pickle_with_chumpy_and_old_scipy_paths_loads(tmp_path):
    regressor = scipy.sparse.random(5, 40, density=0.2, format="csc", random_state=0)
    data = {**DATA, "shapedirs": ch(DATA["float"]), "J_regressor": regressor}
    path = dump_pickle(data, tmp_path / "py2.pkl", style="py2")
    raw = path.read_bytes()
    ops = {op.name for op, _, _ in pickletools.genops(raw)}
    # it really is a Python 2-style file: byte strings, no unicode keys, the old module paths
    assert {"BINSTRING", "SHORT_BINSTRING"} <= ops and "BINUNICODE" not in ops
    assert b"numpy.core.multiarray\n_reconstruct" in raw and b"scipy.sparse.csc\ncsc_matrix" in raw
    assert b"chumpy.ch\nCh" in raw and b"__builtin__\nset" in raw
    loaded = load_pickle(path)
    _same(loaded)
    np.testing.assert_array_equal(np.asarray(loaded["shapedirs"]), DATA["float"])
    np.testing.assert_array_equal(to_array(loaded["J_regressor"]), regressor.toarray())
    assert loaded["J_regressor"].to_scipy().format == "csc"


@pytest.mark.parametrize("fmt", ["csc", "csr", "coo"])
def test_sparse_matrices_of_the_installed_scipy_load(tmp_path, fmt):
    matrix = scipy.sparse.random(6, 9, density=0.3, format=fmt, random_state=1)
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"m": matrix, "a": scipy.sparse.csr_array(matrix)}))
    loaded = load_pickle(path)
    for key in ("m", "a"):
        np.testing.assert_array_equal(to_array(loaded[key]), matrix.toarray())


@pytest.mark.parametrize("protocol", [0, 1, 4])  # 0 and 1 go through copyreg._reconstructor
def test_chumpy_nodes_evaluate_like_chumpy(tmp_path, protocol):
    x = np.arange(24.0).reshape(2, 3, 4)
    idxs = np.array([5, 1, 7, 0])
    data = {
        "select": chumpy_object("chumpy.reordering", "Select", a=ch(x), idxs=idxs, preferred_shape=(2, 2)),
        "transpose": chumpy_object("chumpy.reordering", "transpose", a=ch(x), axes=(2, 0, 1)),
        "reshape": chumpy_object("chumpy.reordering", "Reshape", a=ch(x), newshape=(6, 4)),
        "sum": chumpy_object("chumpy.ch_ops", "add", a=ch(x), b=ch(np.ones(4))),
        "other": chumpy_object("chumpy.ch", "MatVecMult", mtx=None),
    }
    loaded = load_pickle(dump_pickle(data, tmp_path / "ch.pkl", style="py3", protocol=protocol))
    np.testing.assert_array_equal(np.asarray(loaded["select"]), x.ravel()[idxs].reshape(2, 2))
    np.testing.assert_array_equal(np.asarray(loaded["transpose"]), x.transpose(2, 0, 1))
    np.testing.assert_array_equal(np.asarray(loaded["reshape"]), x.reshape(6, 4))
    np.testing.assert_array_equal(np.asarray(loaded["sum"]), x + 1)
    with pytest.raises(ValueError, match="cannot evaluate the chumpy node chumpy.ch.MatVecMult"):
        np.asarray(loaded["other"])  # unknown nodes load, and fail only when their value is asked for


class _Reduces:
    """Pickles as a call of ``func(*args)``: what an attacker puts in a model file."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize(
    ("func", "asked"),
    [(os.system, f"{os.system.__module__}.system"), (builtins.eval, "builtins.eval"), (builtins.exec, "builtins.exec")],
)
def test_code_in_a_pickle_is_refused_and_never_runs(tmp_path, func, asked):
    marker = tmp_path / "pwned"
    payload = f"touch {marker}" if func is os.system else f"open({str(marker)!r}, 'w').close()"
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"v_template": np.zeros((2, 3)), "f": _Reduces(func, payload)}, protocol=4))
    with pytest.raises(RefusedPickleError) as info:
        load_pickle(path)
    assert str(info.value) == f"refusing to load {path}: it asks for {asked}, which is not model data"
    assert not marker.exists()


def test_attribute_lookup_and_reconstructor_tricks_are_refused(tmp_path):
    path = tmp_path / "getattr.pkl"
    path.write_bytes(pickle.dumps(_Reduces(getattr, "text", "upper")))
    with pytest.raises(RefusedPickleError, match="builtins.getattr"):
        load_pickle(path)
    # copyreg._reconstructor is admitted for chumpy objects only; here it would build a dtype
    crafted = b"\x80\x02ccopy_reg\n_reconstructor\ncnumpy\ndtype\nc__builtin__\nobject\nN\x87R."
    path.write_bytes(crafted)
    with pytest.raises(RefusedPickleError, match="_reconstructor"):
        load_pickle(path)
    # _codecs.encode (how Python 3 writes bytes at protocol 2) only with latin1
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(RefusedPickleError, match="rot13"):
        load_pickle(path)


def test_npz_loads_without_pickle_and_skips_object_arrays(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, v=np.ones((3, 3)), joint2num=np.array({"a": 1}, dtype=object))
    loaded = load_npz(path)
    assert list(loaded) == ["v"]
    np.testing.assert_array_equal(loaded["v"], np.ones((3, 3)))
