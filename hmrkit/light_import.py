"""Import one module of a package without the package's own ``__init__`` imports.

``import mediapipe`` runs ``mediapipe/__init__.py``, which loads matplotlib (its drawing helpers)
and the audio, text and GenAI tasks; ``import anny.models.model_data`` runs ``anny/__init__.py``,
which loads roma and with it ``torch._dynamo``. ``hmrkit run`` needs none of that: together it was
about 2 s of a photo's start-up (``benchmarks/results/pipeline_startup.md``).

:func:`import_module_lightly` registers each parent package that is not imported yet as an empty
("hollow") package that can still find its submodules, then imports the module. A hollow package
runs its real ``__init__`` the first time anyone asks it for a name it lacks (``mediapipe.solutions``,
``anny.Anny``, ``from anny import ...``), so code that imports the package normally afterwards sees
the complete package. Packages already imported are used as they are.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType

_LOCK = threading.RLock()  # hand graphs are made on worker threads while the pose graph is made


def _hollow_package(name: str) -> ModuleType:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError(f"No package named {name!r}", name=name)
    package = importlib.util.module_from_spec(spec)

    def complete(attribute: str):  # PEP 562: only names the package does not have yet reach this
        if not attribute.startswith("__") and importlib.util.find_spec(f"{name}.{attribute}") is not None:
            return importlib.import_module(f"{name}.{attribute}")  # `from package import submodule`
        with _LOCK:
            if package.__dict__.pop("__getattr__", None) is not None:
                spec.loader.exec_module(package)  # the real __init__, in the same module object
        if attribute in package.__dict__:
            return package.__dict__[attribute]
        raise AttributeError(f"module {name!r} has no attribute {attribute!r}")

    package.__getattr__ = complete
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, package)
    return package


def import_module_lightly(name: str) -> ModuleType:
    """``importlib.import_module(name)``, leaving the ``__init__`` of its not yet imported parent
    packages for later (see the module's docstring)."""
    parts = name.split(".")
    with _LOCK:  # registration only: the imports themselves take Python's per-module locks
        for end in range(1, len(parts)):
            package = ".".join(parts[:end])
            if package not in sys.modules:
                _hollow_package(package)
    return importlib.import_module(name)
