"""Reading hmrkit's own weight files: safetensors only (no pickle), checked against their content
digest (:mod:`hmrkit.io.integrity`), one clear error."""

from __future__ import annotations

from pathlib import Path

import torch

from hmrkit.errors import ModelAssetError


def read_weights(path: Path, what: str, file_format: str, train_command: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file whose metadata ``format`` is ``file_format``.

    Raises :class:`ModelAssetError` naming ``what`` when the file is missing, unreadable or of
    another format; ``train_command`` tells the user how to make it.
    """
    from hmrkit.io.integrity import IntegrityError, load_verified

    if not path.is_file():
        raise ModelAssetError(f"{what} weights not found: {path} (train them with: {train_command})")
    try:  # checked against the content digest their save function wrote (a file without one: unchecked)
        state, metadata = load_verified(path, require=False)
    except IntegrityError as error:
        raise ModelAssetError(f"{what} weights refused: {error} (reinstall hmrkit or retrain: {train_command})") from None
    except ModelAssetError as error:
        raise ModelAssetError(f"{what} weights unreadable: {error}") from None
    if metadata.get("format") != file_format:
        raise ModelAssetError(f"{path} is not an hmrkit {what} file (metadata format {metadata.get('format')!r}, expected {file_format!r})")
    return state, metadata
