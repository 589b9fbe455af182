"""Headless rendering (numba CPU rasterizer), mesh export (.glb/.obj/.ply) and rigged exports (skinned glTF, BVH, FBX: :mod:`hmrkit.render.motion_export`)."""

from hmrkit.render.export import export_mesh, export_meshes
from hmrkit.render.mesh_ops import PALETTE, ColoredMesh, degenerate_faces, vertex_normals
from hmrkit.render.overlay import blend, render_overlay, render_side_view
from hmrkit.render.rasterizer import Fragments, Intrinsics, RenderResult, rasterize, render_meshes, shade

__all__ = [
    "PALETTE",
    "ColoredMesh",
    "Fragments",
    "Intrinsics",
    "RenderResult",
    "blend",
    "degenerate_faces",
    "export_mesh",
    "export_meshes",
    "rasterize",
    "render_meshes",
    "render_overlay",
    "render_side_view",
    "shade",
    "vertex_normals",
]
