"""The Anny snapshot cache: round trip, damage detection, atomic writes."""

import threading

import pytest
import torch

from hmrkit.body.anny_model import anny_data
from hmrkit.body.anny_snapshot import load_anny_data, read_snapshot, save_snapshot
from hmrkit.errors import ModelAssetError


def test_round_trip_is_exact(tmp_path):
    data = anny_data()
    path = tmp_path / "snap.safetensors"
    save_snapshot(data, path)
    back = read_snapshot(path)
    assert back.bone_labels == data.bone_labels and back.bone_parents == data.bone_parents
    for key, value in data.tensors.items():
        assert torch.equal(back.tensors[key], value), key


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_snapshot_is_detected(tmp_path, damage):
    path = tmp_path / "snap.safetensors"
    save_snapshot(anny_data(), path)
    raw = path.read_bytes()
    path.write_bytes({"truncate": raw[: len(raw) // 2], "garbage": b"\x00junk" * 100, "empty": b""}[damage])
    with pytest.raises(ModelAssetError, match="unreadable|metadata|lacks"):
        read_snapshot(path)


def test_concurrent_writers_leave_a_whole_file(tmp_path):
    path = tmp_path / "snap.safetensors"
    data = anny_data()
    threads = [threading.Thread(target=save_snapshot, args=(data, path)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert read_snapshot(path).phenotype_labels == data.phenotype_labels
    assert [p.name for p in tmp_path.iterdir()] == ["snap.safetensors"]  # no temporary file left


# The phenotype blendshapes are a compacted basis (an SVD in Anny's build): directions whose
# singular values nearly tie may come out rotated or sign-flipped on another machine or thread
# count. What the model computes is invariant: the blendshape offsets each phenotype makes.
BASIS_KEYS = ("blendshapes", "bone_heads_blendshapes", "phenotype_projection")


def _phenotype_offsets(tensors: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    blend = tensors[key].double()
    return (tensors["phenotype_projection"].double() @ blend.reshape(blend.shape[0], -1)).reshape(-1, *blend.shape[1:])


@pytest.mark.slow
def test_damaged_snapshot_is_rebuilt_from_anny(tmp_path, capsys):
    """Builds Anny from its package assets (minutes): the real first-use path."""
    path = tmp_path / "snap.safetensors"
    path.write_bytes(b"not a snapshot")
    data = load_anny_data(path)
    assert "rebuilding" in capsys.readouterr().err
    cached = anny_data()
    assert data.bone_labels == cached.bone_labels and data.phenotype_labels == cached.phenotype_labels
    for key, value in cached.tensors.items():
        if key not in BASIS_KEYS:
            torch.testing.assert_close(data.tensors[key], value)
    for key in ("blendshapes", "bone_heads_blendshapes"):
        torch.testing.assert_close(_phenotype_offsets(data.tensors, key), _phenotype_offsets(cached.tensors, key), atol=1e-5, rtol=0)
