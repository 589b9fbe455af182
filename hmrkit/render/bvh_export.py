"""Writing a :class:`~hmrkit.render.rigged.Rig` as a BVH motion file (read back by :mod:`hmrkit.data.bvh`).

The file, as Blender's and MotionBuilder's importers expect it:

- units: centimetres (the usual BVH unit; Blender: import with scale 0.01 for metres);
  axes: the rig's scene frame, y up (hmrkit's camera frame turned 180 degrees about x), so
  the importers' default "Y up, -Z forward" puts the person upright;
- hierarchy: the 52 joints of :mod:`hmrkit.body.anny_rig` by name, each leaf closed by an
  ``End Site`` continuing its bone; ``OFFSET``\\ s from the person's build (the track's mean
  phenotypes) times the fit's bone scales (their mean over the track; 0 collapses an absent
  limb). The root ``pelvis`` has offset 0 and its position channels hold its place: importers
  that add position channels to the offset (hmrkit's reader) and those that replace it
  (Blender's) then agree;
- rotation channels ``Zrotation Yrotation Xrotation`` in degrees on every joint: the local
  rotation is ``R = Rz Ry Rx`` (column vectors, X applied first), relative to the parent with
  axes that are the world's at rest (hmrkit's convention, SMPL's);
- frames: ``Frame Time`` is 1 / the video's frame rate; BVH frame ``k`` is video frame ``k``
  (from 0): before the track starts and through frames where it was not seen, the last pose is
  held. A photo is one frame.

A BVH has one skeleton for the whole motion: where the fit's build or bone scales drift over a
video, the joints differ from hmrkit's by that drift (the glTF keys it; this file cannot).
"""

from __future__ import annotations

import numpy as np

from hmrkit.render.rigged import Rig

UNITS_PER_METRE = 100.0  # centimetres
CHANNELS = ("Zrotation", "Yrotation", "Xrotation")
DEFAULT_FRAME_TIME = 1.0 / 30.0  # a photo's single frame


def matrix_to_zyx_degrees(matrices: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) angles (z, y, x) in degrees with ``R = Rz(z) Ry(y) Rx(x)``."""
    r = np.asarray(matrices, np.float64)
    sy = np.clip(-r[..., 2, 0], -1.0, 1.0)
    y = np.arcsin(sy)
    cy = np.sqrt(r[..., 0, 0] ** 2 + r[..., 1, 0] ** 2)
    regular = cy > 1e-9
    z = np.where(regular, np.arctan2(r[..., 1, 0], r[..., 0, 0]), np.arctan2(-r[..., 0, 1], r[..., 1, 1]))
    x = np.where(regular, np.arctan2(r[..., 2, 1], r[..., 2, 2]), 0.0)
    return np.degrees(np.stack([z, y, x], axis=-1))


def _frame_rows(rig: Rig, frame_indices: np.ndarray) -> np.ndarray:
    """For each BVH frame 0..last, the rig frame shown: the latest one at or before it (the first before any)."""
    frames = np.arange(int(frame_indices[-1]) + 1)
    return np.clip(np.searchsorted(frame_indices, frames, side="right") - 1, 0, None)


def rig_bvh(rig: Rig, frame_indices: np.ndarray, fps: float | None) -> str:
    """The BVH text of ``rig``; ``frame_indices`` (T,) are its frames' numbers in the video (sorted)."""
    frame_indices = np.asarray(frame_indices, np.int64)
    parents = np.array(rig.parents)
    count = len(parents)
    scales = rig.scales.mean(axis=0)
    cumulative = np.ones(count)  # product of the scales of a joint and all its ancestors
    for j, p in enumerate(parents):
        cumulative[j] = scales[j] * (cumulative[p] if p >= 0 else 1.0)
    bind = rig.bind_joints
    offsets = np.zeros((count, 3))
    for j, p in enumerate(parents):
        if p >= 0:
            offsets[j] = (bind[j] - bind[p]) * cumulative[p]
    offsets *= UNITS_PER_METRE
    children = {j: [c for c in range(count) if parents[c] == j] for j in range(count)}

    lines = ["HIERARCHY"]

    def write(j: int, depth: int) -> None:
        pad = "\t" * depth
        if parents[j] < 0:
            lines.append(f"{pad}ROOT {rig.joint_names[j]}")
            lines.append(f"{pad}{{")
            lines.append(f"{pad}\tOFFSET 0.000000 0.000000 0.000000")
            lines.append(f"{pad}\tCHANNELS 6 Xposition Yposition Zposition {' '.join(CHANNELS)}")
        else:
            lines.append(f"{pad}JOINT {rig.joint_names[j]}")
            lines.append(f"{pad}{{")
            lines.append(f"{pad}\tOFFSET {' '.join(f'{v:.6f}' for v in offsets[j])}")
            lines.append(f"{pad}\tCHANNELS 3 {' '.join(CHANNELS)}")
        for c in children[j]:
            write(c, depth + 1)
        if not children[j]:  # the bone continues as far again: importers draw a leaf bone to its end site
            end = (bind[j] - bind[parents[j]]) * cumulative[j] * UNITS_PER_METRE if parents[j] >= 0 else np.array([0.0, 10.0, 0.0])
            lines.append(f"{pad}\tEnd Site")
            lines.append(f"{pad}\t{{")
            lines.append(f"{pad}\t\tOFFSET {' '.join(f'{v:.6f}' for v in end)}")
            lines.append(f"{pad}\t}}")
        lines.append(f"{pad}}}")

    order: list[int] = []  # the file's joint order: depth first, as written

    def visit(j: int) -> None:
        order.append(j)
        for c in children[j]:
            visit(c)

    root = int(np.flatnonzero(parents < 0)[0])
    write(root, 0)
    visit(root)
    rows = _frame_rows(rig, frame_indices)
    angles = matrix_to_zyx_degrees(rig.local_rotations[rows][:, order])  # (F, J, 3)
    angles = np.degrees(np.unwrap(np.radians(angles), axis=0))  # no 360-degree jumps between frames
    position = rig.local_translations[rows, root] * UNITS_PER_METRE  # (F, 3)
    values = np.concatenate([position, angles.reshape(len(rows), -1)], axis=1)
    frame_time = 1.0 / fps if fps else DEFAULT_FRAME_TIME
    lines += ["MOTION", f"Frames: {len(rows)}", f"Frame Time: {frame_time:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in values]
    return "\n".join(lines) + "\n"
