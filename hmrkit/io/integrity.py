"""Content digests for hmrkit's safetensors files (shipped weights, the Anny snapshot).

A structural check (the header parses, the tensors have their shapes, the values are finite)
misses damage inside a tensor: 1000 zeroed bytes in the middle of the Anny blend shapes gave
wrong bodies silently. So every file hmrkit writes carries a SHA-256 of its content in its own
header metadata (key :data:`DIGEST_KEY`), and readers recompute it.

What the digest covers: the header without the digest itself -- every tensor's name, dtype,
shape and byte range, and the other metadata (model configs live there) -- as canonical JSON
(sorted keys, no spaces), then every byte of the data section. Adding the digest to a file
therefore rewrites only its header: the tensor bytes stay bit-identical (:func:`write_digest`).

Why SHA-256: hashlib's SHA-256 uses the CPU's SHA extensions and measured faster here than
blake2b and md5 (``benchmarks/bench_integrity.py``, ``benchmarks/results/integrity.md``); no new
dependency (xxhash is not installed). Readers hash the file through ``mmap`` and then let
safetensors map it too: no copy of the bytes in Python.

Use:

- writing: :func:`save_file` instead of ``safetensors.torch.save_file`` (same arguments; it
  writes atomically and adds the digest);
- reading: :func:`load_verified` -> ``(tensors, metadata)``, raising :class:`IntegrityError`
  (a :class:`~hmrkit.errors.ModelAssetError`, one line) on a mismatch;
- a file written before digests: :func:`write_digest` adds one in place.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
import tempfile
from pathlib import Path

import torch

from hmrkit.errors import ModelAssetError

DIGEST_KEY = "hmrkit_sha256"
_HEADER_LIMIT = 100_000_000  # safetensors' own limit on the header size


class IntegrityError(ModelAssetError):
    """A file's content does not match the digest written with it (or it has none where one is required)."""


def _split(buffer: bytes | memoryview, name: str) -> tuple[dict, int]:
    """The parsed header of a safetensors buffer and where its data section starts; a buffer that is
    not one is :class:`ModelAssetError` ("unreadable"), not an integrity failure."""
    if len(buffer) < 8:
        raise ModelAssetError(f"{name} is unreadable: not a safetensors file (too short)")
    (size,) = struct.unpack("<Q", bytes(buffer[:8]))
    if size > min(_HEADER_LIMIT, len(buffer) - 8):
        raise ModelAssetError(f"{name} is unreadable: not a safetensors file (bad header length)")
    try:
        header = json.loads(bytes(buffer[8 : 8 + size]))
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict):
        raise ModelAssetError(f"{name} is unreadable: its safetensors header is damaged")
    return header, 8 + size


def _digest(header: dict, data: bytes | memoryview) -> str:
    """SHA-256 of the header (less the digest) as canonical JSON, then of the data section."""
    described = dict(header)
    metadata = {k: v for k, v in (described.pop("__metadata__", None) or {}).items() if k != DIGEST_KEY}
    described["__metadata__"] = metadata
    hasher = hashlib.sha256(json.dumps(described, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    with memoryview(data) as view:
        hasher.update(view)
    return hasher.hexdigest()


def _with_digest(header: dict, data: bytes | memoryview) -> bytes:
    """A whole file: ``header`` with its digest added, padded to 8 bytes as safetensors does, then ``data``."""
    header = dict(header)
    header["__metadata__"] = {**(header.get("__metadata__") or {}), DIGEST_KEY: _digest(header, data)}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(data)


def _atomic_write(path: Path, payload: bytes) -> None:
    """Temporary file + rename: a reader sees either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """What :func:`save_file` writes: safetensors' own serialization with the digest in its metadata."""
    from safetensors.torch import save

    raw = save(tensors, metadata=metadata)
    header, start = _split(raw, "serialized tensors")
    return _with_digest(header, memoryview(raw)[start:])


def save_file(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """``safetensors.torch.save_file`` plus the content digest, written atomically."""
    path = Path(path)
    _atomic_write(path, safetensors_bytes(tensors, metadata))
    return path


def write_digest(path: str | os.PathLike) -> str:
    """Add (or refresh) the digest of an existing file; only its header changes. Returns the digest."""
    path = Path(path)
    raw = path.read_bytes()
    header, start = _split(raw, str(path))
    payload = _with_digest(header, memoryview(raw)[start:])
    _atomic_write(path, payload)
    return _split(payload, str(path))[0]["__metadata__"][DIGEST_KEY]


def verify(path: str | os.PathLike, require: bool = True) -> bool:
    """Check a file against its digest: True if it matches, False if it has none and ``require``
    is False; raises :class:`IntegrityError` on a mismatch or a missing digest that is required."""
    return _checked(Path(path), require)[0]


def _checked(path: Path, require: bool) -> tuple[bool, dict[str, str]]:
    """(whether a digest was there and matched, the metadata); the file hashed through mmap."""
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size < 8:
            raise ModelAssetError(f"{path} is unreadable: not a safetensors file (too short)")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            header, start = _split(mapped, str(path))
            metadata = header.get("__metadata__") or {}
            stored = metadata.get(DIGEST_KEY)
            if stored is None:
                if require:
                    raise IntegrityError(f"{path} has no content digest (written by an older hmrkit)")
                return False, metadata
            with memoryview(mapped) as view, view[start:] as data:
                matches = _digest(header, data) == stored
    if not matches:
        raise IntegrityError(f"{path} is damaged: its content does not match the digest written with it")
    return True, metadata


def load_verified(path: str | os.PathLike, require: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, checked against its digest (hashed through a
    memory map, then loaded; the second read comes from the page cache).

    ``require=False`` accepts a file without a digest (unchecked); a digest that does not match
    is always an :class:`IntegrityError`. Other read errors are :class:`ModelAssetError`.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        _, metadata = _checked(Path(path), require)
        tensors = load_file(str(path))
    except OSError as error:
        raise ModelAssetError(f"{path} is unreadable: {error.strerror or error}") from None
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise ModelAssetError(f"{path} is unreadable: {str(error).splitlines()[0]}") from None
    return tensors, {k: v for k, v in metadata.items() if k != DIGEST_KEY}
