"""Reading hmrkit's own weight files: safetensors only (no pickle), checked, one clear error."""

from __future__ import annotations

from pathlib import Path

import torch

from hmrkit.errors import ModelAssetError


def read_weights(path: Path, what: str, file_format: str, train_command: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file whose metadata ``format`` is ``file_format``.

    Raises :class:`ModelAssetError` naming ``what`` when the file is missing, unreadable or of
    another format; ``train_command`` tells the user how to make it.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelAssetError(f"{what} weights not found: {path} (train them with: {train_command})")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelAssetError(f"{what} weights unreadable: {path}: {error}") from None
    if metadata.get("format") != file_format:
        raise ModelAssetError(f"{path} is not an hmrkit {what} file (metadata format {metadata.get('format')!r}, expected {file_format!r})")
    return state, metadata
