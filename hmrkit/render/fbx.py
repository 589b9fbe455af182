"""FBX through Blender's Python module (``pip install bpy``): the rigged glTF imported and written as FBX.

FBX is a closed format with no writer worth reimplementing; Blender's importer and exporter are
the reference most animators use anyway. ``bpy`` is optional and not in requirements.txt (its
wheels are ~400 MB and need the Python version its Blender release was built with: bpy 5.0.1 on
PyPI runs on Python 3.11, hmrkit's); without it, asking for FBX is one error line.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hmrkit.errors import HmrkitError

MISSING = "FBX export needs Blender's Python module: pip install bpy (not an hmrkit requirement: ~400 MB, Python 3.11)"


def require_bpy():
    """The ``bpy`` module, or :class:`HmrkitError` with the one line saying how to get it."""
    try:
        import bpy
    except ImportError:
        raise HmrkitError(MISSING) from None
    return bpy


def glb_to_fbx(glb: bytes, path: Path, fps: float | None = None) -> Path:
    """Write the .glb ``glb`` as FBX at ``path`` (atomically): armature, skinned mesh, and its animation baked."""
    bpy = require_bpy()
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="hmrkit-fbx-") as work:
        source = Path(work) / "rig.glb"
        source.write_bytes(glb)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        if fps:
            bpy.context.scene.render.fps = max(1, round(fps))
            bpy.context.scene.render.fps_base = bpy.context.scene.render.fps / fps
        bpy.ops.import_scene.gltf(filepath=str(source))
        target = Path(work) / "rig.fbx"
        bpy.ops.export_scene.fbx(filepath=str(target), add_leaf_bones=False, bake_anim=True,
                                 bake_anim_simplify_factor=0.0)  # every frame kept: no curve simplification
        if not target.is_file():
            raise HmrkitError(f"Blender wrote no FBX for {path.name}")
        staged = path.with_name(f".{path.name}.tmp")  # then renamed: an interrupted export leaves no half file
        staged.write_bytes(target.read_bytes())
        staged.replace(path)
    return path
