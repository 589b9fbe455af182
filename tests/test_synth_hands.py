"""Synthetic hand images (hmrkit synth hands): determinism, labels against an independent forward
of the hand model and the camera, the mirrored side, visibility, the two ablation switches,
resuming, refusing foreign folders, bad arguments, the label file format."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from conftest import shared_data
from hmrkit.body.anny_model import anny_data, hand_vertex_ids
from hmrkit.hands.biomech import NUM_ANGLES
from hmrkit.hands.hand_model import canonical_frame, load_biomech_hand, mirror_points, mirror_rotation
from hmrkit.render.rasterizer import rasterize
from hmrkit.synth import dataset, hand_dataset
from hmrkit.synth.hand_dataset import OCCLUDED, OUTSIDE, VISIBLE, SynthHand
from hmrkit.synth.hands import (HandSynthGenerator, HandSynthSettings, _rest_hand, forearm_stub, generate,
                                joint_visibility, main, sphere_camera)


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> HandSynthSettings:
    """One demo photo as the only background, one hand close-up for the real poses, a private cache."""
    bus, close_up = shared_data("demo_images", "bus.jpg"), shared_data("demo_images", "hands", "test1.jpg")
    root = tmp_path_factory.mktemp("data")
    (root / "demo_images" / "hands").mkdir(parents=True)
    (root / "demo_images" / "bus.jpg").symlink_to(bus)
    (root / "demo_images" / "hands" / "test1.jpg").symlink_to(close_up)
    return HandSynthSettings(size=(128, 128), data_root=str(root), cache=str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def generator(settings):
    g = HandSynthGenerator(settings, log=lambda message: None)
    yield g
    g.close()


@pytest.fixture(scope="module")
def samples(generator):
    return [generator.sample(3, i) for i in range(12)]


def _labels_equal(a: SynthHand, b: SynthHand) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in SynthHand.__dataclass_fields__)


def test_sphere_camera_looks_at_the_hand_from_its_place():
    rng = np.random.default_rng(0)
    for azimuth, elevation, roll in [(0.0, 0.0, 0.0), (2.0, np.pi / 2, 1.0), (5.0, -np.pi / 3, -2.5)] + [
            tuple(rng.uniform([0, -1.0, -3], [6.2, 1.57, 3])) for _ in range(20)]:
        r = sphere_camera(azimuth, elevation, roll)
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(r), 1.0)
        place = np.array([np.cos(elevation) * np.sin(azimuth), np.sin(elevation), np.cos(elevation) * np.cos(azimuth)])
        assert np.allclose(r @ (0 - place), [0, 0, 1], atol=1e-9)  # the origin straight ahead, 1 m away
    # no roll, not looking straight down: world up is image up (-y)
    r = sphere_camera(0.7, 0.3, 0.0)
    up = r @ np.array([0.0, 1.0, 0.0])
    assert up[1] < 0 and abs(up[0]) < 1e-9


def test_forearm_stub_is_a_tube_along_its_axis():
    axis, across, start = np.array([0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.01, 0.0])
    vertices, faces, along = forearm_stub(axis, across, start, width=0.06, length=0.3)
    assert faces.min() == 0 and faces.max() == len(vertices) - 1
    assert np.allclose((vertices - start) @ axis, along)
    radial = vertices - start - along[:, None] * axis
    first = along == 0
    assert np.isclose(np.abs(radial[first, 0]).max(), 0.03) and np.isclose(np.abs(radial[first, 2]).max(), 0.0198)
    assert np.isclose(along.max(), 0.3)
    # every edge of the tube's side is shared by two faces (closed but for the open wrist end)
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), 1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert set(counts) <= {1, 2} and (counts == 1).sum() == 16  # the 16 edges of the open first ring


def test_visibility_palm_view_side_view_occluder_and_frame():
    """The rest hand (open) seen from its palm shows every joint; seen from its thumb side the
    far fingers hide behind the near ones; an occluder or the frame edge wins over both."""
    rest = _rest_hand("left")
    hand = rest.hand
    palm_camera = np.pi  # upright, canonical z (the back of a left hand) faces azimuth 0

    def view(azimuth):
        rotation = sphere_camera(azimuth, 0.0, 0.0) @ rest.upright
        out = hand(torch.zeros(1, NUM_ANGLES), hand.default_shape(1), torch.from_numpy(rotation).float()[None],
                   torch.tensor([[0.0, 0.1, 0.6]]), with_vertices=True)
        joints, vertices = out.joints[0].numpy().astype(np.float64), out.vertices[0].numpy().astype(np.float64)
        k = np.array([300.0, 300.0, 63.5, 63.5])
        frags = rasterize(vertices, hand.faces.numpy(), (2 * k[0], 2 * k[1], 2 * k[2] + 0.5, 2 * k[3] + 0.5), (256, 256))
        uv = np.stack([k[0] * joints[:, 0] / joints[:, 2] + k[2], k[1] * joints[:, 1] / joints[:, 2] + k[3]], -1)
        return uv, joints[:, 2], frags

    tiers = HandSynthSettings().hidden_depth
    uv, depth, frags = view(palm_camera)
    none = np.zeros((128, 128), np.float32)
    assert (joint_visibility(uv, depth, frags, len(hand.faces), none, 2, tiers) == VISIBLE).all()
    uv_side, depth_side, frags_side = view(palm_camera + np.pi / 2)
    side = joint_visibility(uv_side, depth_side, frags_side, len(hand.faces), none, 2, tiers)
    assert (side == OCCLUDED).sum() >= 5 and (side == VISIBLE).sum() >= 8
    # the forearm's faces (indices past the hand's) hide what lies behind them
    assert (joint_visibility(uv, depth, frags, 0, none, 2, tiers) == OCCLUDED).sum() >= 15
    cover = none.copy()
    cover[:, :64] = 1.0
    covered = joint_visibility(uv, depth, frags, len(hand.faces), cover, 2, tiers)
    assert np.array_equal(covered == OCCLUDED, np.round(uv[:, 0]) < 64)
    shifted = uv + [60.0, 0.0]
    assert np.array_equal(joint_visibility(shifted, depth, frags, len(hand.faces), none, 2, tiers) == OUTSIDE,
                          shifted[:, 0] > 127.5)


@pytest.mark.slow  # builds the generator once (~15 s), then ~0.1 s a sample
def test_same_seed_same_sample_other_seed_other_sample(generator, samples):
    image, label = generator.sample(3, 5)
    assert np.array_equal(image, samples[5][0]) and _labels_equal(label, samples[5][1])
    other_image, other = generator.sample(4, 5)
    assert not np.array_equal(other_image, image) and not np.array_equal(other.joints3d, label.joints3d)


@pytest.mark.slow  # builds the generator once (~15 s), then ~0.1 s a sample
def test_labels_agree_with_the_hand_model_and_the_camera(samples):
    ids = hand_vertex_ids(anny_data(), "left")
    for image, p in samples:
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        hand = load_biomech_hand(p.side)
        with torch.no_grad():
            out = hand(torch.from_numpy(p.angles)[None], torch.from_numpy(p.shape)[None], torch.from_numpy(p.global_rotation)[None],
                       torch.from_numpy(p.translation)[None], with_vertices=True)
        np.testing.assert_allclose(out.joints[0].numpy(), p.joints3d, atol=1e-5)
        np.testing.assert_allclose(out.vertices[0].numpy(), p.vertices, atol=1e-5)
        assert p.vertices.shape == (len(ids), 3)
        fx, fy, cx, cy = p.camera.astype(np.float64)
        j = p.joints3d.astype(np.float64)
        assert (j[:, 2] > 0.05).all()
        np.testing.assert_allclose(np.stack([fx * j[:, 0] / j[:, 2] + cx, fy * j[:, 1] / j[:, 2] + cy], -1), p.joints2d, atol=2e-3)
        r = p.global_rotation.astype(np.float64)
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-5) and np.isclose(np.linalg.det(r), 1.0, atol=1e-5)
        lo, hi = hand.axes.lower.numpy(), hand.axes.upper.numpy()
        assert ((p.angles >= lo - 1e-5) & (p.angles <= hi + 1e-5)).all()  # feasible
        assert ((p.shape >= 0) & (p.shape <= 1)).all()
        # visible joints lie inside the visible box; joints outside the frame are flagged so
        h, w = image.shape[:2]
        inside = (p.joints2d > -0.5).all(1) & (p.joints2d[:, 0] < w - 0.5) & (p.joints2d[:, 1] < h - 0.5)
        assert np.array_equal(p.visibility == OUTSIDE, ~inside)
        seen = p.joints2d[p.visibility == VISIBLE]
        if len(seen):
            x0, y0, x1, y1 = p.box
            assert ((seen[:, 0] >= x0 - 2) & (seen[:, 0] <= x1 + 2) & (seen[:, 1] >= y0 - 2) & (seen[:, 1] <= y1 + 2)).all()
        assert p.pose_source == "sampled" or p.pose_source.startswith("real:")
    assert (np.stack([p.visibility for _, p in samples]) == VISIBLE).mean() > 0.5


@pytest.mark.slow  # builds the generator once (~15 s), then ~0.1 s a sample
def test_a_right_hand_is_the_mirrored_left_hand(samples):
    sides = [p.side for _, p in samples]
    assert set(sides) == {"left", "right"}
    left = load_biomech_hand("left")
    for _, p in samples:
        if p.side != "right":
            continue
        # the left hand with the same angles and shape, placed by the mirrored rotation and wrist
        rotation = mirror_rotation(torch.from_numpy(p.global_rotation)[None])
        wrist = mirror_points(torch.from_numpy(p.translation)[None])
        with torch.no_grad():
            out = left(torch.from_numpy(p.angles)[None], torch.from_numpy(p.shape)[None], rotation, wrist, with_vertices=True)
        np.testing.assert_allclose(mirror_points(out.vertices)[0].numpy(), p.vertices, atol=1e-5)
        np.testing.assert_allclose(mirror_points(out.joints)[0].numpy(), p.joints3d, atol=1e-5)


@pytest.mark.slow  # builds the generator once (~15 s), then ~0.1 s a sample
def test_the_image_shows_the_hand_where_the_labels_put_it(generator):
    """The labelled mesh, rasterized alone with the labelled camera, covers the label's box of
    visible hand pixels (occluders and the forearm can only shrink that box)."""
    hits = 0
    for i in range(12):
        image, p = generator.sample(21, i)
        frags = rasterize(p.vertices.astype(np.float64), load_biomech_hand(p.side).faces.numpy(),
                          tuple(float(v) for v in p.camera), image.shape[:2])
        ys, xs = np.nonzero(frags.face_index >= 0)
        if not len(xs) or not np.isfinite(p.box).all():
            continue
        # the visible box lies inside the mesh's own box (occluders and the forearm only shrink it)
        assert p.box[0] >= xs.min() - 1.5 and p.box[1] >= ys.min() - 1.5
        assert p.box[2] <= xs.max() + 1.5 and p.box[3] <= ys.max() + 1.5
        hits += 1
    assert hits >= 8


@pytest.mark.slow  # builds the generator once (~15 s), then ~0.1 s a sample
def test_ablation_switches(settings, generator):
    narrow = HandSynthGenerator(HandSynthSettings(**{**settings.__dict__, "pose_variety": False, "view_variety": False}),
                                log=lambda m: None)
    assert len(narrow.poses) > 0
    bank = narrow.poses.angles
    cosines = []
    for i in range(16):
        _, p = narrow.sample(5, i)
        assert p.pose_source.startswith("real:")
        assert np.isclose(np.abs(bank - p.angles).max(1), 0, atol=1e-6).any()  # a bank pose as it is, no finger swap
        # the camera faces the palm or the back: the hand's canonical z is near the viewing axis
        frame = canonical_frame(torch.from_numpy(p.joints3d)[None])[0].numpy()
        ray = p.joints3d[9] / np.linalg.norm(p.joints3d[9])
        cosines.append(abs(float(frame[:, 2] @ ray)))
    assert np.median(cosines) > 0.8
    wide = []
    for i in range(16):
        _, p = generator.sample(5, i)
        frame = canonical_frame(torch.from_numpy(p.joints3d)[None])[0].numpy()
        wide.append(abs(float(frame[:, 2] @ (p.joints3d[9] / np.linalg.norm(p.joints3d[9])))))
    assert np.median(wide) < np.median(cosines)
    sources = [generator.sample(6, i)[1].pose_source for i in range(30)]
    assert 0 < sum(s.startswith("real:") for s in sources) < 30  # both kinds with pose variety


@pytest.mark.slow  # builds the generator once (~15 s), then ~0.1 s a sample
def test_generate_writes_resumes_and_round_trips(tmp_path, settings, generator, samples):
    out = tmp_path / "set"
    assert generate(out, 2, 3, settings, log=lambda m: None, generator=generator) == 2
    assert generate(out, 3, 3, settings, log=lambda m: None, generator=generator) == 1  # resumes
    assert hand_dataset.completed(out) == [0, 1, 2]
    manifest = hand_dataset.read_hand_manifest(out)
    assert (manifest.kind, manifest.seed, manifest.count, tuple(manifest.image_size)) == ("hands", 3, 3, (128, 128))
    for i in range(3):
        image, label = hand_dataset.load_sample(out, i)
        assert _labels_equal(label, samples[i][1]) and isinstance(label.side, str)
        again = cv2.imdecode(cv2.imencode(".jpg", cv2.cvtColor(samples[i][0], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])[1],
                             cv2.IMREAD_COLOR)
        assert np.array_equal(image, cv2.cvtColor(again, cv2.COLOR_BGR2RGB))
    assert not list(out.rglob("*.part*"))


@pytest.mark.slow  # builds the generator once (~15 s), then ~0.1 s a sample
def test_refuses_foreign_folders_and_other_settings(tmp_path, settings, generator, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["--out", str(mine), "--count", "2", "--seed", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0]
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]

    other = tmp_path / "other"
    generate(other, 1, 3, settings, log=lambda m: None, generator=generator)
    narrow = HandSynthSettings(**{**settings.__dict__, "view_variety": False})
    with pytest.raises(ValueError, match="another synthetic set"):
        generate(other, 2, 3, narrow, log=lambda m: None, generator=generator)
    assert main(["--out", str(other), "--count", "2", "--seed", "3", "--size", "128", "--no-view-variety"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another synthetic set" in err[0]
    assert hand_dataset.completed(other) == [0]
    a3d = tmp_path / "a3d"
    dataset.write_manifest(a3d, dataset.SynthManifest("a3d", 1, 1, (128, 128), {}))
    with pytest.raises(ValueError, match="not a hand set"):
        hand_dataset.read_hand_manifest(a3d)


@pytest.mark.parametrize("argv, message", [
    (["--count", "5", "--seed", "1"], "--out"),
    (["--out", "x", "--count", "0", "--seed", "1"], "--count must be >= 1"),
    (["--out", "x", "--count", "five", "--seed", "1"], "invalid int value"),
    (["--out", "x", "--count", "5", "--seed", "-2"], "--seed must be >= 0"),
    (["--out", "x", "--count", "5", "--seed", "1", "--size", "10"], "--size must lie in"),
    (["--out", "x", "--count", "5", "--seed", "1", "--no-such-option"], "unrecognized arguments"),
])
def test_bad_arguments_one_line(argv, message, capsys):
    from hmrkit.cli import main as cli_main

    with pytest.raises(SystemExit) as exit_info:
        cli_main(["synth", "hands", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_label_file_round_trip_and_damage(tmp_path):
    rng = np.random.default_rng(1)
    label = SynthHand(side="right", camera=rng.random(4).astype(np.float32), joints2d=rng.random((21, 2)).astype(np.float32),
                      joints3d=rng.random((21, 3)).astype(np.float32), visibility=rng.integers(0, 3, 21).astype(np.uint8),
                      vertices=rng.random((1596, 3)).astype(np.float32), angles=rng.random(23).astype(np.float32),
                      shape=rng.random(6).astype(np.float32), global_rotation=np.eye(3, dtype=np.float32),
                      translation=rng.random(3).astype(np.float32), box=np.array([1, 2, 30, 40], np.float32),
                      pose_source="real:im00002.jpg", background="bus.jpg")
    path = dataset.label_path(tmp_path, 7)
    hand_dataset.save_hand(path, label)
    back = hand_dataset.load_hand(path)
    assert _labels_equal(back, label) and back.side == "right" and isinstance(back.background, str)
    assert hand_dataset.completed(tmp_path) == []  # no image yet
    dataset.image_path(tmp_path, 7).parent.mkdir(parents=True)
    cv2.imwrite(str(dataset.image_path(tmp_path, 7)), np.zeros((8, 8, 3), np.uint8))
    assert hand_dataset.completed(tmp_path) == [7]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="damaged or foreign"):
        hand_dataset.load_hand(path)
    np.savez(path, side=np.array("left"))
    with pytest.raises(ValueError, match="damaged or foreign"):
        hand_dataset.load_hand(path)


def test_cli_refuses_a_folder_of_other_files_in_one_line(tmp_path, capsys):
    """Through ``hmrkit synth hands`` (the CLI's dispatch): nothing built, nothing written."""
    from hmrkit.cli import main as cli_main

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert cli_main(["synth", "hands", "--out", str(mine), "--count", "2", "--seed", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hmrkit synth hands: error:") and "not empty" in err[0]
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"
