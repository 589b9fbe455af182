"""Rigged exports: the skinned, animated glTF read back by an independent reader and skinned here in
numpy, the BVH read back with hmrkit.data.bvh, and the ``hmrkit export`` command."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import roma
import torch

from hmrkit.body.anny_model import load_anny_body
from hmrkit.data.asf_amc import axis_rotation
from hmrkit.data.bvh import bvh_forward_kinematics, read_bvh
from hmrkit.render.bvh_export import matrix_to_zyx_degrees, rig_bvh
from hmrkit.render.rigged import SCENE_FROM_CAMERA, PersonMotion, build_rig, matrix_to_quaternion, rig_glb, split_influences

_COMPONENTS = {5126: np.float32, 5123: np.uint16, 5125: np.uint32, 5121: np.uint8}
_WIDTH = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}


@pytest.fixture(scope="module")
def body():
    return load_anny_body()


def read_glb(data: bytes) -> tuple[dict, callable]:
    """The JSON document of a .glb and a function reading accessor ``i`` as an array (per the spec)."""
    magic, version, length = struct.unpack("<4sII", data[:12])
    assert magic == b"glTF" and version == 2 and length == len(data)
    json_len, json_type = struct.unpack("<I4s", data[12:20])
    assert json_type == b"JSON" and json_len % 4 == 0
    document = json.loads(data[20 : 20 + json_len])
    bin_len, bin_type = struct.unpack("<I4s", data[20 + json_len : 28 + json_len])
    assert bin_type == b"BIN\0" and bin_len % 4 == 0
    binary = data[28 + json_len : 28 + json_len + bin_len]

    def accessor(i: int) -> np.ndarray:
        acc = document["accessors"][i]
        view = document["bufferViews"][acc["bufferView"]]
        dtype = np.dtype(_COMPONENTS[acc["componentType"]])
        start = view["byteOffset"] + acc.get("byteOffset", 0)
        assert start % dtype.itemsize == 0  # the spec's alignment rule
        width = _WIDTH[acc["type"]]
        array = np.frombuffer(binary, dtype, acc["count"] * width, start)
        return array.reshape(acc["count"], width) if width > 1 else array

    return document, accessor


def quaternion_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) x, y, z, w -> (..., 3, 3), the textbook formula."""
    x, y, z, w = np.moveaxis(np.asarray(q, np.float64), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def node_worlds(document: dict, accessor, key: int | None) -> dict[int, np.ndarray]:
    """4x4 world matrix of every node, with the animation's values at key ``key`` (None: the nodes' own TRS)."""
    trs = {i: {"translation": np.array(n.get("translation", [0, 0, 0]), float), "rotation": np.array(n.get("rotation", [0, 0, 0, 1]), float),
               "scale": np.array(n.get("scale", [1, 1, 1]), float)} for i, n in enumerate(document["nodes"])}
    if key is not None:
        animation = document["animations"][0]
        for channel in animation["channels"]:
            sampler = animation["samplers"][channel["sampler"]]
            trs[channel["target"]["node"]][channel["target"]["path"]] = accessor(sampler["output"])[key].astype(float)
    local = {}
    for i, t in trs.items():
        m = np.eye(4)
        m[:3, :3] = quaternion_matrix(t["rotation"]) @ np.diag(t["scale"])
        m[:3, 3] = t["translation"]
        local[i] = m
    parent = {c: i for i, n in enumerate(document["nodes"]) for c in n.get("children", [])}
    world: dict[int, np.ndarray] = {}

    def get(i: int) -> np.ndarray:
        if i not in world:
            world[i] = (get(parent[i]) if i in parent else np.eye(4)) @ local[i]
        return world[i]

    return {i: get(i) for i in trs}


def skinned_vertices(document: dict, accessor, key: int | None) -> np.ndarray:
    """Linear blend skinning of the glTF mesh as a viewer does it: jointMatrix = world(joint) @ inverseBind."""
    skin = document["skins"][0]
    worlds = node_worlds(document, accessor, key)
    inverse_bind = accessor(skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)  # column-major
    joint_matrices = np.stack([worlds[n] for n in skin["joints"]]) @ inverse_bind
    attributes = document["meshes"][0]["primitives"][0]["attributes"]
    positions = accessor(attributes["POSITION"]).astype(float)
    blended = np.zeros((len(positions), 4, 4))
    s = 0
    while f"JOINTS_{s}" in attributes:
        joints, weights = accessor(attributes[f"JOINTS_{s}"]), accessor(attributes[f"WEIGHTS_{s}"]).astype(float)
        blended += (weights[..., None, None] * joint_matrices[joints]).sum(axis=1)
        s += 1
    return (blended[:, :3, :3] @ positions[..., None])[..., 0] + blended[:, :3, 3]


def _motion(body, frames: int = 3, seed: int = 0, varying_shape: bool = False, fps: float | None = 25.0) -> PersonMotion:
    rng = np.random.default_rng(seed)
    joints = body.num_joints
    rotations = roma.rotvec_to_rotmat(torch.tensor(rng.normal(size=(frames, joints, 3)) * 0.4)).numpy()
    shape = np.array([0.3, 0.7, 0.6, 0.4, 0.65, 0.45])
    shapes = np.tile(shape, (frames, 1)) + (rng.normal(size=(frames, 6)) * 0.03 if varying_shape else 0.0)
    translations = rng.normal(size=(frames, 3)) * 0.3 + [0.0, 0.0, 3.0]
    scales = np.ones((frames, joints))
    scales[:, body.skeleton.index("left_elbow")] = 1.0 + 0.05 * np.arange(frames)  # bone scales, animated
    scales[:, body.skeleton.index("right_knee")] = 0.0  # an absent lower leg
    return PersonMotion("p", rotations, shapes, translations, scales, np.arange(frames) * 2 + 1, fps if frames > 1 else None)


def _hmrkit(body, motion: PersonMotion):
    with torch.no_grad():
        out = body(torch.tensor(motion.rotations).float(), torch.tensor(motion.shapes).float(),
                   torch.tensor(motion.translations).float(), scales=torch.tensor(motion.scales).float())
    return out.joints.double().numpy() @ SCENE_FROM_CAMERA.T, out.vertices.double().numpy() @ SCENE_FROM_CAMERA.T


def test_bind_pose_is_the_model_at_rest_for_that_shape(body):
    motion = _motion(body, frames=1, fps=None)
    document, accessor = read_glb(rig_glb(build_rig(motion, body)))
    coefficients = body.blend_coefficients(torch.tensor(motion.shapes).float())
    rest_joints = body.rest_joints(coefficients)[0].double().numpy()
    inverse_bind = accessor(document["skins"][0]["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    np.testing.assert_allclose(-inverse_bind[:, :3, 3], rest_joints, atol=1e-6)
    np.testing.assert_allclose(inverse_bind[:, :3, :3], np.tile(np.eye(3), (len(rest_joints), 1, 1)), atol=0)
    positions = accessor(document["meshes"][0]["primitives"][0]["attributes"]["POSITION"])
    np.testing.assert_allclose(positions, body.rest_vertices(coefficients)[0].numpy(), atol=1e-6)
    # the joint nodes at identity rotation and unit scale (the bind pose) stand on the rest joints
    for node in document["nodes"][1:]:
        node["rotation"], node["scale"] = [0, 0, 0, 1], [1, 1, 1]
    document["nodes"][document["skins"][0]["skeleton"]]["translation"] = rest_joints[0].tolist()
    worlds = node_worlds(document, accessor, None)
    names = [document["nodes"][n]["name"] for n in document["skins"][0]["joints"]]
    assert names == list(body.skeleton.names)
    np.testing.assert_allclose([worlds[n][:3, 3] for n in document["skins"][0]["joints"]], rest_joints, atol=1e-6)


def test_photo_rig_skinned_from_the_file_is_hmrkits_mesh(body):
    motion = _motion(body, frames=1, fps=None)
    document, accessor = read_glb(rig_glb(build_rig(motion, body)))
    assert "animations" not in document
    joints, vertices = _hmrkit(body, motion)
    assert np.abs(skinned_vertices(document, accessor, None) - vertices[0]).max() < 1e-3  # 1 mm
    worlds = node_worlds(document, accessor, None)
    np.testing.assert_allclose([worlds[n][:3, 3] for n in document["skins"][0]["joints"]], joints[0], atol=1e-5)


def test_animation_skinned_from_the_file_is_hmrkits_mesh_every_frame(body):
    motion = _motion(body, frames=4)
    document, accessor = read_glb(rig_glb(build_rig(motion, body)))
    joints, vertices = _hmrkit(body, motion)
    animation = document["animations"][0]
    times = accessor(animation["samplers"][0]["input"])
    np.testing.assert_allclose(times, motion.frame_indices / 25.0, rtol=1e-6)
    paths = {(c["target"]["node"], c["target"]["path"]) for c in animation["channels"]}
    assert all((n, "rotation") in paths for n in document["skins"][0]["joints"])
    for t in range(len(times)):
        error = np.abs(skinned_vertices(document, accessor, t) - vertices[t]).max()
        assert error < 1e-3, (t, error)
        worlds = node_worlds(document, accessor, t)
        np.testing.assert_allclose([worlds[n][:3, 3] for n in document["skins"][0]["joints"]], joints[t], atol=1e-5)


def test_a_drifting_build_keeps_the_joints_exact(body):
    """The smoothed phenotypes move over a video: bone translations are keyed, joints stay hmrkit's."""
    motion = _motion(body, frames=3, varying_shape=True)
    document, accessor = read_glb(rig_glb(build_rig(motion, body)))
    joints, _ = _hmrkit(body, motion)
    for t in range(3):
        worlds = node_worlds(document, accessor, t)
        np.testing.assert_allclose([worlds[n][:3, 3] for n in document["skins"][0]["joints"]], joints[t], atol=1e-5)


def test_skin_weight_sets(body):
    joints, weights = split_influences(body.skin_weights.double().numpy())
    dense = np.zeros((len(joints), body.num_joints))
    np.add.at(dense, (np.arange(len(joints))[:, None], joints.astype(int)), weights)
    np.testing.assert_allclose(dense, body.skin_weights.double().numpy(), atol=1e-6)  # nothing lost
    assert joints.shape[1] % 4 == 0 and np.all(np.diff(weights, axis=1) <= 1e-12)  # largest first


def test_bvh_read_back_gives_hmrkits_joints(body, tmp_path):
    motion = _motion(body, frames=3)
    motion = PersonMotion("p", motion.rotations, motion.shapes, motion.translations,
                          np.tile(motion.scales[:1], (3, 1)), np.array([2, 3, 6]), 25.0)  # one build: BVH's one skeleton
    path = tmp_path / "p.bvh"
    path.write_text(rig_bvh(build_rig(motion, body), motion.frame_indices, motion.fps))
    read = read_bvh(path)
    assert len(read) == 7 and read.frame_time == pytest.approx(1 / 25.0)  # frames 0..6 of the video
    positions, _ = bvh_forward_kinematics(read, metres_per_unit=0.01)
    names = [j.name for j in read.joints]
    index = [names.index(n) for n in body.skeleton.names]
    joints, _ = _hmrkit(body, motion)
    for frame, t in ((2, 0), (3, 1), (6, 2), (0, 0), (4, 1), (5, 1)):  # before and between: the last pose held
        np.testing.assert_allclose(positions[frame, index].numpy(), joints[t], atol=1e-4)
    assert read.joints[0].offset == (0.0, 0.0, 0.0) and read.joints[0].channels[3:] == ("Zrotation", "Yrotation", "Xrotation")


def test_euler_and_quaternion_conversions():
    rotations = roma.random_rotmat(200, dtype=torch.float64).numpy()
    rotations[0] = (axis_rotation("y", torch.tensor(np.pi / 2, dtype=torch.float64))
                    @ axis_rotation("x", torch.tensor(0.3, dtype=torch.float64))).numpy()  # gimbal lock
    z, y, x = np.radians(matrix_to_zyx_degrees(rotations)).T
    rebuilt = (axis_rotation("z", torch.tensor(z)) @ axis_rotation("y", torch.tensor(y)) @ axis_rotation("x", torch.tensor(x))).numpy()
    np.testing.assert_allclose(rebuilt, rotations, atol=1e-9)
    q = matrix_to_quaternion(rotations)
    assert np.all(q[:, 3] >= 0)
    np.testing.assert_allclose(quaternion_matrix(q), rotations, atol=1e-9)


# -- the command ---------------------------------------------------------------------------------


def _write_result(path: Path, body, motion: PersonMotion, t: int, source: str, frame_index, body_model: str = "anny") -> None:
    from hmrkit.body.limbs import LimbStatus
    from hmrkit.results import ImageResult, PersonResult, image_to_json

    names = tuple(body.skeleton.names)
    scales = motion.scales[t]
    person = PersonResult(
        box=(0, 0, 10, 10), confidence=0.9, joint_names=("nose",), joints2d=np.zeros((1, 2)), joints3d=np.zeros((1, 3)),
        pose_names=names, pose=motion.rotations[t], shape_names=tuple(body.shape_names), shape=motion.shapes[t],
        translation=motion.translations[t], reprojection_error=1.0, track_id=0 if frame_index is not None else None,
        bone_scales={n: float(s) for n, s in zip(names, scales) if s not in (0.0, 1.0)}, limbs=LimbStatus.intact())
    result = ImageResult(source=source, width=10, height=10, camera={"fx": 1.0, "fy": 1.0, "cx": 5.0, "cy": 5.0},
                         body_model=body_model, people=[person], frame_index=frame_index)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(image_to_json(result)))


def test_export_command_photo_and_video(body, tmp_path, capsys):
    from hmrkit.cli import main

    motion = _motion(body, frames=3)
    motion = PersonMotion("p", motion.rotations, motion.shapes, motion.translations, np.ones_like(motion.scales), np.array([0, 1, 2]), 24.0)
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 24.0, (16, 16))
    for _ in range(3):
        writer.write(np.zeros((16, 16, 3), np.uint8))
    writer.release()
    out = tmp_path / "out"
    _write_result(out / "photo.json", body, motion, 0, "photo.jpg", None)
    for t in range(3):
        _write_result(out / "clip" / f"frame_{t:06d}.json", body, motion, t, str(video), t)
    _write_result(out / "smpl_photo.json", body, motion, 0, "x.jpg", None, body_model="smpl")
    assert main(["export", str(out)]) == 0
    err = capsys.readouterr().err
    assert "smpl results have no Anny rig" in err
    for name in ("photo_person0_rigged.glb", "photo_person0.bvh", "clip_track0_rigged.glb", "clip_track0.bvh"):
        assert (out / name).is_file(), name
    document, accessor = read_glb((out / "clip_track0_rigged.glb").read_bytes())
    np.testing.assert_allclose(accessor(document["animations"][0]["samplers"][0]["input"]), [0, 1 / 24, 2 / 24], rtol=1e-6)
    joints, vertices = _hmrkit(body, motion)
    assert np.abs(skinned_vertices(document, accessor, 2) - vertices[2]).max() < 1e-3  # through the JSON's rounding
    read = read_bvh(out / "clip_track0.bvh")
    assert read.frame_time == pytest.approx(1 / 24)
    before = (out / "photo_person0.bvh").stat().st_mtime_ns
    assert main(["export", str(out)]) == 0 and (out / "photo_person0.bvh").stat().st_mtime_ns == before  # kept
    assert "already there" in capsys.readouterr().err


def test_export_command_errors(tmp_path, capsys):
    from hmrkit.cli import main

    assert main(["export", str(tmp_path / "missing")]) == 1
    assert main(["export", str(tmp_path), "--format", "obj"]) == 2
    assert main(["export", str(tmp_path)]) == 1  # nothing to export
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("hmrkit: error:") for line in lines)
    try:
        import bpy  # noqa: F401
    except ImportError:
        assert main(["export", str(tmp_path), "--format", "fbx"]) == 1
        assert "pip install bpy" in capsys.readouterr().err


def test_export_needs_a_frame_rate_it_can_read(body, tmp_path, capsys):
    from hmrkit.cli import main

    motion = _motion(body, frames=2)
    out = tmp_path / "out"
    for t in range(2):
        _write_result(out / "gone" / f"frame_{t:06d}.json", body, motion, t, str(tmp_path / "deleted.mp4"), t)
    assert main(["export", str(out)]) == 1
    assert "pass --fps" in capsys.readouterr().err and not (out / "gone_track0_rigged.glb").exists()
    assert main(["export", str(out), "--fps", "12.5"]) == 0
    document, accessor = read_glb((out / "gone_track0_rigged.glb").read_bytes())
    np.testing.assert_allclose(accessor(document["animations"][0]["samplers"][0]["input"]), [0, 1 / 12.5], rtol=1e-6)
    assert read_bvh(out / "gone_track0.bvh").frame_time == pytest.approx(1 / 12.5)
