"""``hmrkit view`` in a real browser: Debian's Chromium, headless, with software WebGL, loads the
viewer's page; its screenshot is compared with the same scene with the meshes hidden. The pixels
that change must be the people's meshes where hmrkit's own camera projects them (IoU with the
silhouette drawn here from the .npz vertices), and the photo must show behind them.

Needs Debian's ``chromium`` (``.ci/run`` installs it: ``apt-get install chromium``); skips without it."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from hmrkit.cli import main

viser = pytest.importorskip("viser", reason="viser is an optional extra (pip install viser==1.1.1)")
CHROMIUM = shutil.which("chromium")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")]

from conftest import free_port  # noqa: E402
from headless_chromium import HeadlessChromium  # noqa: E402
from hmrkit.viewer import start_viewer  # noqa: E402

# wide enough that the 16:9 photo, seen through its camera, clears the notice (left) and the panel (right)
WIDTH, HEIGHT = 1800, 600


def silhouette(vertices: list[np.ndarray], faces: np.ndarray, focal: float) -> np.ndarray:
    """Where the meshes cover the page: each triangle filled, pinhole camera at the page centre."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    for v in vertices:
        xy = np.stack([WIDTH / 2 + focal * v[:, 0] / v[:, 2], HEIGHT / 2 + focal * v[:, 1] / v[:, 2]], -1)
        for triangle in np.round(xy[faces] * 4).astype(np.int32):  # 2 bits of sub-pixel precision
            cv2.fillConvexPoly(mask, triangle, 1, shift=2)
    return mask.astype(bool)


def test_browser_shows_the_meshes_over_the_photo(tmp_path):
    from conftest import shared_data

    photo_path = tmp_path / "zidane.jpg"
    shutil.copy(shared_data("demo_images", "zidane.jpg"), photo_path)
    out = tmp_path / "out"
    assert main(["run", str(photo_path), "--out", str(out), "--no-overlay", "--mesh-format", "none"]) == 0
    data = np.load(out / "zidane.npz")
    width, height = (int(v) for v in data["image_size"])
    fy = float(data["camera"][1])
    port = free_port()
    server, viewer = start_viewer(out, port=port)
    browser = HeadlessChromium(CHROMIUM, WIDTH, HEIGHT)
    try:
        browser.open(f"http://127.0.0.1:{port}")
        shown = browser.settled()
        assert len(server.get_clients()) == 1
        for mesh in viewer.meshes:
            mesh.visible = False
        empty = browser.settled(unlike=shown)  # the same scene without the meshes
    finally:
        browser.close()
        server.stop()

    # the changed pixels are the meshes, where the photo's camera puts them (vertical field of view kept)
    changed = np.abs(shown.astype(int) - empty.astype(int)).max(-1) > 30
    expected = silhouette(list(data["vertices"]), data["faces"], fy * HEIGHT / height)
    assert expected.mean() > 0.02, "the people cover a good part of the page"
    iou = (changed & expected).sum() / (changed | expected).sum()
    assert iou > 0.9, f"meshes in the browser vs hmrkit's projection: IoU {iou:.3f}"

    # behind them, the photo: the camera's picture fills the page's height, centred
    scale = HEIGHT / height
    left = int(round(WIDTH / 2 - width * scale / 2))
    page = empty[:, left + 2: left + int(width * scale) - 2].astype(float)
    photo = cv2.resize(cv2.cvtColor(cv2.imread(str(photo_path)), cv2.COLOR_BGR2RGB), (int(width * scale), HEIGHT),
                       interpolation=cv2.INTER_AREA)[:, 2:-2].astype(float)
    photo = photo[:, : page.shape[1]]
    assert np.corrcoef(page.mean(-1).ravel(), photo.mean(-1).ravel())[0, 1] > 0.9
    assert np.abs(page - photo).mean() < 25
