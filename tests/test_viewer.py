"""``hmrkit view``: the viser scene built from real ``hmrkit run`` outputs, checked through viser's
Python API (the scene nodes and GUI handles the browser receives).

The browser itself is tested in tests/test_viewer_browser.py (Debian's Chromium, headless: a
screenshot against the same scene without the meshes); this file reads back what viser sends to a
browser: the scene nodes (meshes, camera frustum and its picture) and the GUI handles (result
choice, frame slider, panel).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hmrkit.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "demo_images"
viser = pytest.importorskip("viser", reason="viser is an optional extra (pip install viser==1.1.1)")

from hmrkit.viewer import ResultsViewer, ViewerUnavailable, find_results, start_viewer  # noqa: E402


def test_find_results_groups_photos_and_video_frames(tmp_path):
    for name in ("a", "sub/b", "clip/frame_000010", "clip/frame_000002", "clip/frame_000000", "lonely"):
        path = tmp_path / f"{name}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        if name != "lonely":  # an .npz without its .json is not a result
            path.with_suffix(".json").write_text("{}")
    (tmp_path / "a_overlay.png").write_bytes(b"")
    found = {r.name: r for r in find_results(tmp_path)}
    assert sorted(found) == ["a", "clip", "sub/b"]
    assert found["clip"].video and [p.stem for p in found["clip"].frames] == ["frame_000000", "frame_000002", "frame_000010"]
    assert not found["a"].video and found["a"].overlay == tmp_path / "a_overlay.png" and found["sub/b"].overlay is None


def test_one_line_errors(tmp_path, monkeypatch, capsys):
    assert main(["view", str(tmp_path / "missing")]) == 1
    assert main(["view", str(tmp_path)]) == 1  # no results in it
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"hmrkit: error: {tmp_path / 'missing'}: no such folder",
                     f"hmrkit: error: {tmp_path}: no results of hmrkit run (<name>.npz with its .json; --no-npz leaves none)"]
    monkeypatch.setitem(sys.modules, "viser", None)  # as where viser is not installed
    with pytest.raises(ViewerUnavailable, match="pip install"):
        start_viewer(tmp_path)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    if not DATA.is_dir():
        pytest.skip(f"development data not found at {DATA}")
    out = tmp_path_factory.mktemp("view")
    photos = tmp_path_factory.mktemp("photos")
    shutil.copy(DATA / "zidane.jpg", photos / "zidane.jpg")
    assert main(["run", str(photos / "zidane.jpg"), "--out", str(out), "--no-overlay", "--mesh-format", "none"]) == 0
    assert main(["run", str(DATA / "sample_video.mp4"), "--out", str(out), "--max-frames", "3", "--mesh-format", "none"]) == 0
    return out


@pytest.mark.slow
def test_scene_shows_each_result(results):
    import cv2

    server = viser.ViserServer(host="127.0.0.1", port=8350, verbose=False)
    try:
        viewer = ResultsViewer(server, find_results(results))
        assert [r.name for r in viewer.results] == ["sample_video", "zidane"]
        assert viewer.choice.options == ("sample_video", "zidane")

        # the photo: one mesh per person, as in its .npz; the camera's picture is the photo itself
        viewer.choice.value = "zidane"
        time.sleep(0.2)
        data = np.load(results / "zidane.npz")
        info = json.loads((results / "zidane.json").read_text())
        assert len(viewer.meshes) == len(info["people"]) == len(data["vertices"]) >= 2
        for mesh, vertices in zip(viewer.meshes, data["vertices"]):
            assert np.array_equal(mesh.vertices, vertices) and np.array_equal(mesh.faces, data["faces"])
        photo = cv2.cvtColor(cv2.imread(str(DATA / "zidane.jpg")), cv2.COLOR_BGR2RGB)
        assert viewer.frustum.image.shape == photo.shape and np.array_equal(viewer.frustum.image, photo)
        fy, height = float(data["camera"][1]), int(data["image_size"][1])
        assert viewer.frustum.fov == pytest.approx(2 * np.arctan(height / (2 * fy)))
        assert viewer.frustum.aspect == pytest.approx(data["image_size"][0] / data["image_size"][1])
        assert viewer.slider.disabled
        # the panel: every person's parameters, and the 23 angles of each hand found
        text = viewer.panel.content
        hands = [(k, s, h) for k, p in enumerate(info["people"]) for s, h in p["hands"].items() if h.get("angles")]
        assert hands, "zidane.jpg has hands with angles in hmrkit's result"
        for k, person in enumerate(info["people"]):
            assert f"**Person {k}**" in text and f"{person['reprojection_error_px']:.1f} px" in text
        for k, side, hand in hands:
            line = next(l for l in text.split(f"**Person {k}**")[1].splitlines() if l.startswith(f"- {side} hand"))
            assert line.split(": ", 1)[1].count(",") == 22 and all(name in line for name in hand["angles"])

        # the video: a slider over its frames; moving it shows that frame's meshes
        viewer.choice.value = "sample_video"
        time.sleep(0.2)
        assert not viewer.slider.disabled and viewer.slider.max == 2
        viewer.slider.value = 2
        time.sleep(0.2)
        frame = np.load(results / "sample_video" / "frame_000002.npz")
        assert len(viewer.meshes) == len(frame["vertices"]) >= 1
        assert all(np.array_equal(m.vertices, v) for m, v in zip(viewer.meshes, frame["vertices"]))
        assert viewer.frustum.image.shape[:2] == tuple(int(v) for v in frame["image_size"][::-1])
    finally:
        server.stop()


def test_relative_source_is_found_from_another_folder(tmp_path, monkeypatch):
    import cv2
    from hmrkit.viewer import load_frame

    (tmp_path / "run" / "photos").mkdir(parents=True)
    (tmp_path / "run" / "out").mkdir()
    photo = np.random.default_rng(0).integers(0, 255, (40, 60, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "run" / "photos" / "p.png"), photo[..., ::-1])
    npz = tmp_path / "run" / "out" / "p.npz"
    np.savez(npz, camera=np.array([50.0, 50.0, 30.0, 20.0]), image_size=np.array([60, 40]),
             vertices=np.ones((1, 3, 3)), faces=np.array([[0, 1, 2]]))
    npz.with_suffix(".json").write_text(json.dumps({"source": "photos/p.png", "people": []}))  # as run from run/
    monkeypatch.chdir(tmp_path)  # the viewer started elsewhere: the source is not relative to here
    frame = load_frame(find_results(tmp_path / "run" / "out")[0], 0)
    assert frame.picture is not None and np.array_equal(frame.picture, photo)
