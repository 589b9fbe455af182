"""Where development and training data live: never inside the package, never downloaded."""

from __future__ import annotations

import os
from pathlib import Path

from hmrkit.paths import package_dir

DATA_ENV = "HMRKIT_DATA_DIR"


def mocap_data_dir(folder: str, root: str | os.PathLike | None = None) -> Path:
    """The data folder ``folder``: ``root`` if given, else ``$HMRKIT_DATA_DIR/<folder>``, else the
    development checkout's ``../shared/data/<folder>``. Raises ``FileNotFoundError`` if absent."""
    if root is not None:
        path = Path(root)
    elif os.environ.get(DATA_ENV):
        path = Path(os.environ[DATA_ENV]) / folder
    else:
        path = package_dir().parent.parent / "shared" / "data" / folder
    if not path.is_dir():
        raise FileNotFoundError(f"{folder} not found: {path} (pass root=..., or set ${DATA_ENV} to the folder holding {folder}/)")
    return path
