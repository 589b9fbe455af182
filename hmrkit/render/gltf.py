"""Binary glTF 2.0 (.glb) of triangle meshes with per-vertex normals and colours, one node each.

The format (Khronos glTF 2.0, "GLB File Format Specification"): a 12-byte header (magic
``glTF``, version 2, total length), a JSON chunk padded with spaces and a binary chunk padded
with zeros, each to 4 bytes. Each mesh's data lies in the binary chunk as four buffer views --
uint32 triangle indices, float32 positions, float32 normals, uint8 RGBA colours (normalized) --
every one a multiple of 4 bytes long, so all stay aligned; data equal to an earlier mesh's (the
body model's triangles, a colour) is stored once and shared. Written here rather than through
trimesh because importing trimesh costs ~0.5 s of every ``hmrkit run``
(benchmarks/results/pipeline_startup.md); tests read the files back with trimesh. The Khronos
glTF validator (npm ``gltf-validator`` 2.0.0-dev.3.10, a development check) reports no error,
warning or info on the demo photos' outputs, a y-up mesh and a mesh without faces.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

_FLOAT, _UNSIGNED_BYTE, _UNSIGNED_INT = 5126, 5121, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_TRIANGLES, _POINTS = 4, 0


@dataclass(frozen=True)
class GlbMesh:
    """One node's mesh: (V, 3) positions and normals, (F, 3) triangles, (V, 4) RGBA bytes."""

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    colors: np.ndarray


def glb_bytes(meshes: list[GlbMesh], generator: str = "hmrkit") -> bytes:
    """The .glb file holding ``meshes``, each its own named node of the one scene."""
    views: list[dict] = []
    accessors: list[dict] = []
    blobs: list[bytes] = []
    written: dict[tuple, int] = {}  # identical data (everyone's triangles, one colour) is stored once
    offset = 0

    def add(array: np.ndarray, component: int, kind: str, target: int, **extra) -> int:
        nonlocal offset
        data = np.ascontiguousarray(array).tobytes()
        key = (data, component, kind, target, json.dumps(extra))
        if key not in written:
            views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(data), "target": target})
            accessors.append({"bufferView": len(views) - 1, "componentType": component, "count": len(array), "type": kind, **extra})
            blobs.append(data)
            offset += len(data)  # every view is a multiple of 4 bytes: the next one stays aligned
            written[key] = len(accessors) - 1
        return written[key]

    gltf_meshes = []
    for mesh in meshes:
        vertices = np.asarray(mesh.vertices, np.float32).reshape(-1, 3)
        attributes = {
            "POSITION": add(vertices, _FLOAT, "VEC3", _ARRAY_BUFFER,
                            min=vertices.min(axis=0).tolist(), max=vertices.max(axis=0).tolist()),
            "NORMAL": add(np.asarray(mesh.normals, np.float32).reshape(-1, 3), _FLOAT, "VEC3", _ARRAY_BUFFER),
            "COLOR_0": add(np.asarray(mesh.colors, np.uint8).reshape(-1, 4), _UNSIGNED_BYTE, "VEC4", _ARRAY_BUFFER, normalized=True),
        }
        primitive: dict = {"attributes": attributes, "mode": _POINTS}
        faces = np.asarray(mesh.faces, np.uint32).reshape(-1)
        if len(faces):  # an accessor holds at least one element: a mesh without faces is its points
            primitive.update(indices=add(faces, _UNSIGNED_INT, "SCALAR", _ELEMENT_ARRAY_BUFFER), mode=_TRIANGLES)
        gltf_meshes.append({"name": mesh.name, "primitives": [primitive]})
    document = {
        "asset": {"version": "2.0", "generator": generator},
        "scene": 0,
        "scenes": [{"nodes": list(range(len(meshes)))}],
        "nodes": [{"name": mesh.name, "mesh": i} for i, mesh in enumerate(meshes)],
        "meshes": gltf_meshes,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": offset}],
    }
    text = json.dumps(document, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    binary = b"".join(blobs)
    binary += b"\0" * (-len(binary) % 4)
    chunks = struct.pack("<I4s", len(text), b"JSON") + text + struct.pack("<I4s", len(binary), b"BIN\0") + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks
