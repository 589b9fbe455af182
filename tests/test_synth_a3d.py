"""A3D generator: determinism, labels against an independent forward of the body model, the
limb-class balance, resuming, refusing foreign folders, bad arguments."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import shared_data
from hmrkit.body.amputation import collapse_scales
from hmrkit.body.limbs import LIMBS, LimbStatus
from hmrkit.synth import dataset
from hmrkit.synth.a3d import A3DGenerator, A3DSettings, generate, main, sample_limbs

# the keypoints (BODY_OUTPUT) each absence level removes; the collapse joint's own keypoint stays
REMOVED = {"hand": (), "forearm": ("wrist",), "arm": ("elbow", "wrist"),
           "foot": ("heel", "big_toe", "small_toe"), "lower_leg": ("ankle", "heel", "big_toe", "small_toe"),
           "leg": ("knee", "ankle", "heel", "big_toe", "small_toe")}


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> A3DSettings:
    """Mocap poses only, one real demo photo as the only background source, a private cache."""
    photo = shared_data("demo_images", "bus.jpg")
    root = tmp_path_factory.mktemp("data")
    (root / "demo_images").mkdir()
    (root / "demo_images" / "bus.jpg").symlink_to(photo)
    return A3DSettings(size=(128, 128), fitted_poses=False, data_root=str(root), cache=str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def generator(settings):
    shared_data("cmu_mocap")
    g = A3DGenerator(settings, log=lambda message: None)
    yield g
    g.close()


@pytest.fixture(scope="module")
def samples(generator):
    return [generator.sample(3, i) for i in range(8)]


def _labels_equal(a: dataset.SynthPerson, b: dataset.SynthPerson) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f), equal_nan=f not in ("background", "limb_classes", "keypoints_absent"))
               for f in dataset.SynthPerson.__dataclass_fields__)


def test_limb_classes_balanced_over_the_twelve_types():
    rng = np.random.default_rng(0)
    s = A3DSettings()
    draws = np.stack([sample_limbs(rng, s) for _ in range(20000)])
    intact = (draws == 0).all(1)
    assert abs(intact.mean() - 0.25) < 0.015
    absent = draws[~intact]
    per_type = np.array([[(absent[:, limb] == level).sum() for level in (1, 2, 3)] for limb in range(4)]).ravel()
    assert per_type.min() / per_type.max() > 0.9  # 12 types, equally frequent
    counts = (absent > 0).sum(1)
    assert set(np.unique(counts)) == {1, 2, 3}
    assert 0.6 < (counts == 1).mean() < 0.8


@pytest.mark.slow  # builds the generator once (~20 s), then ~0.5 s a sample
def test_same_seed_same_set_other_seed_other_set(generator, samples):
    image, person = generator.sample(3, 1)
    assert np.array_equal(image, samples[1][0])
    assert _labels_equal(person, samples[1][1])
    other_image, other = generator.sample(4, 1)
    assert not np.array_equal(other_image, image)
    assert not np.array_equal(other.rotations, person.rotations)


@pytest.mark.slow  # builds the generator once (~20 s), then ~0.5 s a sample
def test_labels_agree_with_an_independent_forward(generator, samples):
    model, kmap = generator.model, generator.keypoints
    for image, p in samples:
        status = LimbStatus.from_classes(p.limb_classes)
        scales = collapse_scales(model.skeleton, status.losses)
        with torch.no_grad():
            out = model(torch.from_numpy(p.rotations)[None], torch.from_numpy(p.shape)[None],
                        torch.from_numpy(p.translation)[None], keypoints=kmap, scales=scales)
        np.testing.assert_allclose(out.keypoints[0].numpy(), p.keypoints3d, atol=1e-4)
        # keypoints3d seen through the camera are keypoints2d
        fx, fy, cx, cy = p.camera
        k3 = p.keypoints3d.astype(np.float64)
        uv = np.stack([fx * k3[:, 0] / k3[:, 2] + cx, fy * k3[:, 1] / k3[:, 2] + cy], -1)
        np.testing.assert_allclose(uv, p.keypoints2d, atol=1e-2)
        # absent keypoints sit on the joint their limb collapsed onto; flags only on absent limbs
        joints = out.joints[0].numpy()
        for limb, state in zip(LIMBS, status.states):
            side, kind = limb.split("_")
            on_limb = {f"{side}_{n}" for n in REMOVED["arm" if kind == "arm" else "leg"]}
            flagged = p.keypoints_absent & np.array([n in on_limb for n in kmap.names])
            if state.present:
                assert not flagged.any()
                continue
            joint = joints[model.skeleton.index(state.loss.joint)]
            assert flagged.any() == (state.level != "hand")  # no BODY_OUTPUT keypoint lies beyond the wrist
            assert np.abs(p.keypoints3d[flagged] - joint).max(initial=0) < 0.01  # surface points (heel) within mm
        # the box holds every keypoint inside the frame (2 px for the anti-aliased edge)
        h, w = image.shape[:2]
        inside = ((p.keypoints2d >= 0) & (p.keypoints2d <= [w - 1, h - 1])).all(1)
        x0, y0, x1, y1 = p.box
        pts = p.keypoints2d[inside]
        assert ((pts[:, 0] >= x0 - 2) & (pts[:, 0] <= x1 + 2) & (pts[:, 1] >= y0 - 2) & (pts[:, 1] <= y1 + 2)).all()
        assert 0 <= x0 <= x1 <= w - 1 and 0 <= y0 <= y1 <= h - 1
        assert p.landmarks.shape == (33, 3)
        assert np.isnan(p.landmarks).all() or np.isfinite(p.landmarks).all()


@pytest.mark.slow  # builds the generator once (~20 s), then ~0.5 s a sample
def test_absent_flags_follow_the_collapse(generator):
    names = generator.keypoints.names
    seen = set()
    for i in range(40):
        _, p = generator.sample(11, i)
        expected = set()
        for state in LimbStatus.from_classes(p.limb_classes).states:
            if not state.present:
                side = state.limb.split("_")[0]
                expected |= {f"{side}_{n}" for n in REMOVED[state.level]}
                seen.add(state.level)
        assert {n for n, a in zip(names, p.keypoints_absent) if a} == expected
    assert len(seen) >= 5


@pytest.mark.slow  # builds the generator once (~20 s), then ~0.5 s a sample
def test_mediapipe_finds_the_rendered_people(samples):
    found = [p for _, p in samples if np.isfinite(p.landmarks).all()]
    assert len(found) >= len(samples) // 2
    for p in found:  # the chosen detection lies on the rendered person
        x0, y0, x1, y1 = p.box
        centre = np.nanmedian(p.landmarks[:, :2], 0)
        assert x0 - 10 <= centre[0] <= x1 + 10 and y0 - 10 <= centre[1] <= y1 + 10


@pytest.mark.slow  # builds the generator once (~20 s), then ~0.5 s a sample
def test_generate_writes_resumes_and_round_trips(tmp_path, settings, generator, samples):
    out = tmp_path / "set"
    assert generate(out, 2, 3, settings, log=lambda m: None, generator=generator) == 2
    assert generate(out, 3, 3, settings, log=lambda m: None, generator=generator) == 1  # resumes
    assert dataset.completed(out) == [0, 1, 2]
    manifest = dataset.read_manifest(out)
    assert (manifest.kind, manifest.seed, manifest.count, tuple(manifest.image_size)) == ("a3d", 3, 3, (128, 128))
    for i in range(3):
        loaded = dataset.load_person(dataset.label_path(out, i))
        assert _labels_equal(loaded, samples[i][1])
        import cv2

        written = cv2.imread(str(dataset.image_path(out, i)))
        again = cv2.imdecode(cv2.imencode(".jpg", cv2.cvtColor(samples[i][0], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])[1], cv2.IMREAD_COLOR)
        assert np.array_equal(written, again)  # the JPEG of the same image
    assert not list(out.rglob("*.part*"))


@pytest.mark.slow  # builds the generator once (~20 s), then ~0.5 s a sample
def test_refuses_foreign_folders(tmp_path, settings, generator, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["--out", str(mine), "--count", "2", "--seed", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0]
    assert (mine / "notes.txt").read_text() == "keep me" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]

    other = tmp_path / "other"
    generate(other, 1, 3, settings, log=lambda m: None, generator=generator)
    assert main(["--out", str(other), "--count", "2", "--seed", "4", "--size", "128"]) == 1
    assert "another synthetic set" in capsys.readouterr().err
    assert dataset.completed(other) == [0]


@pytest.mark.parametrize("argv, message", [
    (["--count", "5", "--seed", "1"], "--out"),
    (["--out", "x", "--count", "0", "--seed", "1"], "--count must be >= 1"),
    (["--out", "x", "--count", "five", "--seed", "1"], "invalid int value"),
    (["--out", "x", "--count", "5", "--seed", "-2"], "--seed must be >= 0"),
    (["--out", "x", "--count", "5", "--seed", "1", "--size", "10"], "--size must lie in"),
])
def test_bad_arguments_one_line(argv, message, capsys):
    from hmrkit.cli import main as cli_main

    with pytest.raises(SystemExit) as exit_info:
        cli_main(["synth", "a3d", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.slow  # builds the generator once (~20 s), then ~0.5 s a sample
def test_manifest_is_plain_json(tmp_path, settings, generator):
    generate(tmp_path, 1, 9, settings, log=lambda m: None, generator=generator)
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["format"] == dataset.FORMAT and data["options"]["size"] == [128, 128]
    assert "data_root" not in data["options"] and "cache" not in data["options"]
