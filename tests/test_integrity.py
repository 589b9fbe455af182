"""Content digests of hmrkit's safetensors files: damage inside a tensor is refused (weights) or
rebuilt (the Anny snapshot), adding a digest leaves the tensor bytes alone, the CLI says it in one line."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from safetensors.torch import save_file as plain_save_file

from hmrkit.errors import ModelAssetError
from hmrkit.io.integrity import DIGEST_KEY, IntegrityError, load_verified, save_file, verify, write_digest
from hmrkit.paths import weights_dir

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "data" / "demo_images"


def _layout(path: Path) -> tuple[dict, int]:
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + size]), 8 + size


def _flip_inside(path: Path, tensor: str, count: int = 4, fill: int | None = None) -> None:
    """Change ``count`` bytes in the middle of ``tensor``'s data (XOR 0xFF, or set to ``fill``)."""
    header, start = _layout(path)
    begin, end = header[tensor]["data_offsets"]
    at = start + (begin + end) // 2
    raw = bytearray(path.read_bytes())
    for k in range(at, min(at + count, start + end)):
        raw[k] = fill if fill is not None else raw[k] ^ 0xFF
    path.write_bytes(bytes(raw))


def _largest_tensor(path: Path) -> str:
    header, _ = _layout(path)
    return max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][1] - header[k]["data_offsets"][0])


def _independent_digest(path: Path) -> str:
    """The documented definition, computed here from the raw file: canonical header JSON less the
    digest, then the data section."""
    header, start = _layout(path)
    header["__metadata__"] = {k: v for k, v in header.get("__metadata__", {}).items() if k != DIGEST_KEY}
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(text + path.read_bytes()[start:]).hexdigest()


def test_save_file_round_trip_and_digest_definition(tmp_path):
    tensors = {"a": torch.randn(7, 3), "b": torch.arange(10, dtype=torch.int64), "c": torch.randn(2, 2).half()}
    path = save_file(tensors, tmp_path / "w.safetensors", metadata={"format": "x", "note": "hello"})
    back, meta = load_verified(path)
    assert meta == {"format": "x", "note": "hello"}
    for key, value in tensors.items():
        assert torch.equal(back[key], value) and back[key].dtype == value.dtype
    header, start = _layout(path)
    assert header["__metadata__"][DIGEST_KEY] == _independent_digest(path)
    assert start % 8 == 0  # header padded as safetensors pads it: tensors stay aligned
    assert set(load_file(str(path))) == set(tensors)  # still a plain safetensors file
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary file left


@pytest.mark.parametrize("where", ["tensor", "metadata"])
def test_damage_is_detected(tmp_path, where):
    path = save_file({"w": torch.randn(1000), "v": torch.randn(10)}, tmp_path / "w.safetensors", metadata={"format": "x"})
    if where == "tensor":
        _flip_inside(path, "w", count=1)
    else:  # a changed config value of the same length: still valid JSON, but not what was written
        raw = path.read_bytes()
        path.write_bytes(raw.replace(b'"format":"x"', b'"format":"y"'))
    with pytest.raises(IntegrityError, match="damaged"):
        load_verified(path)
    with pytest.raises(IntegrityError, match="damaged"):
        load_verified(path, require=False)  # a digest that is there is always checked


def test_file_without_digest(tmp_path):
    path = tmp_path / "plain.safetensors"
    plain_save_file({"w": torch.randn(5)}, str(path), metadata={"format": "x"})
    with pytest.raises(IntegrityError, match="no content digest"):
        verify(path)
    assert verify(path, require=False) is False
    tensors, meta = load_verified(path, require=False)
    assert meta == {"format": "x"} and tensors["w"].shape == (5,)


def test_write_digest_rewrites_only_the_header(tmp_path):
    path = tmp_path / "plain.safetensors"
    tensors = {"w": torch.randn(33, 5), "i": torch.arange(7)}
    plain_save_file(tensors, str(path), metadata={"format": "x"})
    before = path.read_bytes()
    _, start_before = _layout(path)
    digest = write_digest(path)
    after = path.read_bytes()
    _, start_after = _layout(path)
    assert before[start_before:] == after[start_after:]  # tensor bytes bit-identical
    assert verify(path) and digest == _independent_digest(path)
    assert write_digest(path) == digest  # idempotent


@pytest.mark.parametrize("name", ["hkmr.safetensors", "hmr_flat.safetensors", "pose_vae.safetensors", "hand_ik.safetensors",
                                  "pose_tokenizer.safetensors", "bpac.safetensors", "lite_i2l.safetensors"])
def test_shipped_weights_carry_a_matching_digest(name):
    path = weights_dir() / name
    header, _ = _layout(path)
    assert header["__metadata__"][DIGEST_KEY] == _independent_digest(path)
    assert verify(path)


def _loaders():
    from hmrkit.estimators import load_regressor
    from hmrkit.hands.ik_net import load_ik_net
    from hmrkit.models.pose_prior import load_pose_prior

    return {"hkmr.safetensors": load_regressor, "pose_vae.safetensors": load_pose_prior, "hand_ik.safetensors": load_ik_net}


@pytest.mark.parametrize("name", ["hkmr.safetensors", "pose_vae.safetensors", "hand_ik.safetensors"])
def test_loaders_refuse_weights_damaged_inside_a_tensor(tmp_path, name):
    load = _loaders()[name]
    copy = tmp_path / name
    shutil.copyfile(weights_dir() / name, copy)
    load(copy)  # the intact copy loads
    _flip_inside(copy, _largest_tensor(copy), count=2)
    with pytest.raises(ModelAssetError, match="refused") as caught:
        load(copy)
    assert "\n" not in str(caught.value)


def test_save_functions_write_the_digest(tmp_path):
    """Retraining writes the digest: the save functions go through integrity.save_file."""
    from hmrkit.estimators import load_regressor, save_regressor
    from hmrkit.hands.ik_net import load_ik_net, save_ik_net
    from hmrkit.models.pose_prior import load_pose_prior, save_pose_prior

    regressor, spec, _ = load_regressor(weights_dir() / "hkmr.safetensors")
    written = [save_regressor(regressor, spec, tmp_path / "r.safetensors"),
               save_pose_prior(load_pose_prior(), tmp_path / "p.safetensors"),
               save_ik_net(load_ik_net(), tmp_path / "h.safetensors")]
    for path in written:
        assert verify(path)


def test_snapshot_damaged_inside_blend_shapes_is_rejected_and_rebuilt(tmp_path, monkeypatch, capsys):
    """The issue's case: 1000 zeroed bytes in the middle of the blend shapes, structure intact."""
    from hmrkit.body import anny_snapshot
    from hmrkit.body.anny_model import anny_data

    path = tmp_path / "snap.safetensors"
    anny_snapshot.save_snapshot(anny_data(), path)
    _flip_inside(path, "blendshapes", count=1000, fill=0)
    tensors = load_file(str(path))
    assert torch.isfinite(tensors["blendshapes"]).all()  # what the old structural check looked at
    with pytest.raises(ModelAssetError, match="damaged"):
        anny_snapshot.read_snapshot(path)
    # the rebuild itself (minutes) is the slow test in test_body_snapshot.py; here it is the cached data
    builds = []
    monkeypatch.setattr(anny_snapshot, "build_anny_data", lambda: builds.append(1) or anny_data())
    data = anny_snapshot.load_anny_data(path)
    err = capsys.readouterr().err
    assert builds == [1] and "damaged" in err and "rebuilding" in err
    assert torch.equal(data.blendshapes, anny_data().blendshapes) and verify(path)


def test_snapshot_without_digest_is_rebuilt(tmp_path, monkeypatch, capsys):
    from hmrkit.body import anny_snapshot
    from hmrkit.body.anny_model import anny_data

    data = anny_data()
    path = tmp_path / "old.safetensors"
    anny_snapshot.save_snapshot(data, path)
    header, start = _layout(path)
    del header["__metadata__"][DIGEST_KEY]  # as hmrkit wrote it before digests
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + path.read_bytes()[start:])
    with pytest.raises(ModelAssetError, match="no content digest"):
        anny_snapshot.read_snapshot(path)
    monkeypatch.setattr(anny_snapshot, "build_anny_data", lambda: data)
    anny_snapshot.load_anny_data(path)
    assert "rebuilding" in capsys.readouterr().err and verify(path)


@pytest.mark.slow
def test_cli_refuses_damaged_weights_in_one_line(tmp_path, monkeypatch, capsys):
    """``hmrkit run`` on a photo with a damaged HKMR file: exit 1, one line, nothing written."""
    import hmrkit.estimators
    from hmrkit.cli import main

    photos = sorted(PHOTO.glob("*.jpg")) if PHOTO.is_dir() else []
    if not photos:
        pytest.skip(f"no demo photos at {PHOTO}")
    weights = tmp_path / "weights"
    shutil.copytree(weights_dir(), weights)
    _flip_inside(weights / "hkmr.safetensors", _largest_tensor(weights / "hkmr.safetensors"), count=8)
    monkeypatch.setattr(hmrkit.estimators, "weights_dir", lambda: weights)
    status = main(["run", str(photos[0]), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert status == 1
    assert len(err.splitlines()) == 1 and "refused" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_snapshot_values_are_checked_once_when_saved(tmp_path):
    """Loads trust the digest; a non-finite value is refused when the snapshot is written."""
    from dataclasses import replace

    from hmrkit.body import anny_snapshot
    from hmrkit.body.anny_model import anny_data

    data = anny_data()
    bad = dict(data.tensors)
    bad["blendshapes"] = bad["blendshapes"].clone()
    bad["blendshapes"][0, 0, 0] = float("nan")
    with pytest.raises(ModelAssetError, match="non-finite"):
        anny_snapshot.save_snapshot(replace(data, tensors=bad), tmp_path / "snap.safetensors")
    assert not (tmp_path / "snap.safetensors").exists()
