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
:class:`GlbBuffer` is shared with the skinned, animated rigs of :mod:`hmrkit.render.rigged`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

_FLOAT, _UNSIGNED_BYTE, _UNSIGNED_SHORT, _UNSIGNED_INT = 5126, 5121, 5123, 5125
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


class GlbBuffer:
    """The binary chunk being built: one buffer view + accessor per array, identical data stored once.

    Every view is a multiple of 4 bytes long (all hmrkit's element types are), so the next one
    stays aligned. ``target`` is left out for data that is not vertex or index data (inverse bind
    matrices, animation samplers), as the spec asks."""

    def __init__(self) -> None:
        self.views: list[dict] = []
        self.accessors: list[dict] = []
        self.blobs: list[bytes] = []
        self.offset = 0
        self._written: dict[tuple, int] = {}

    def add(self, array: np.ndarray, component: int, kind: str, target: int | None = None, **extra) -> int:
        """The accessor index of ``array`` (rows of ``kind``: SCALAR, VEC3, MAT4, ...)."""
        data = np.ascontiguousarray(array).tobytes()
        key = (data, component, kind, target, json.dumps(extra))
        if key not in self._written:
            view = {"buffer": 0, "byteOffset": self.offset, "byteLength": len(data)}
            if target is not None:
                view["target"] = target
            self.views.append(view)
            self.accessors.append({"bufferView": len(self.views) - 1, "componentType": component, "count": len(array), "type": kind, **extra})
            self.blobs.append(data)
            self.offset += len(data)
            self._written[key] = len(self.accessors) - 1
        return self._written[key]

    def mesh_primitive(self, mesh: GlbMesh, **attributes: int) -> dict:
        """A primitive of ``mesh``'s positions, normals, colours and triangles (plus ``attributes``)."""
        vertices = np.asarray(mesh.vertices, np.float32).reshape(-1, 3)
        primitive: dict = {
            "attributes": {
                "POSITION": self.add(vertices, _FLOAT, "VEC3", _ARRAY_BUFFER,
                                     min=vertices.min(axis=0).tolist(), max=vertices.max(axis=0).tolist()),
                "NORMAL": self.add(np.asarray(mesh.normals, np.float32).reshape(-1, 3), _FLOAT, "VEC3", _ARRAY_BUFFER),
                "COLOR_0": self.add(np.asarray(mesh.colors, np.uint8).reshape(-1, 4), _UNSIGNED_BYTE, "VEC4", _ARRAY_BUFFER, normalized=True),
                **attributes,
            },
            "mode": _POINTS,
        }
        faces = np.asarray(mesh.faces, np.uint32).reshape(-1)
        if len(faces):  # an accessor holds at least one element: a mesh without faces is its points
            primitive.update(indices=self.add(faces, _UNSIGNED_INT, "SCALAR", _ELEMENT_ARRAY_BUFFER), mode=_TRIANGLES)
        return primitive

    def glb(self, document: dict) -> bytes:
        """The .glb file of ``document`` (its accessors, views and buffer filled in here) and this buffer."""
        document = {**document, "accessors": self.accessors, "bufferViews": self.views, "buffers": [{"byteLength": self.offset}]}
        text = json.dumps(document, separators=(",", ":")).encode("utf-8")
        text += b" " * (-len(text) % 4)
        binary = b"".join(self.blobs)
        binary += b"\0" * (-len(binary) % 4)
        chunks = struct.pack("<I4s", len(text), b"JSON") + text + struct.pack("<I4s", len(binary), b"BIN\0") + binary
        return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def glb_bytes(meshes: list[GlbMesh], generator: str = "hmrkit") -> bytes:
    """The .glb file holding ``meshes``, each its own named node of the one scene."""
    buffer = GlbBuffer()
    gltf_meshes = [{"name": mesh.name, "primitives": [buffer.mesh_primitive(mesh)]} for mesh in meshes]
    return buffer.glb({
        "asset": {"version": "2.0", "generator": generator},
        "scene": 0,
        "scenes": [{"nodes": list(range(len(meshes)))}],
        "nodes": [{"name": mesh.name, "mesh": i} for i, mesh in enumerate(meshes)],
        "meshes": gltf_meshes,
    })
