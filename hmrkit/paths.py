"""Where hmrkit keeps files it builds on the user's machine (never downloads)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "HMRKIT_CACHE_DIR"


def cache_dir() -> Path:
    """``$HMRKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/hmrkit``, else ``~/.cache/hmrkit``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hmrkit"


def package_dir() -> Path:
    return Path(__file__).resolve().parent


def weights_dir() -> Path:
    return package_dir() / "weights"
