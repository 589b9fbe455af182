"""Backgrounds with people removed: SSIM against an independent computation, person removal on a
real photo (hmrkit's perception finds nobody afterwards), the cache, and data hygiene."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from conftest import shared_data
from hmrkit.synth.backgrounds import (CleaningSettings, PersonRemover, build_background_bank, random_crop, read_rgb, ssim,
                                      training_photo_sources)


def _ssim_scipy(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM as Wang et al. define it, on float grays, with scipy's Gaussian (11-tap window)."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    f = lambda z: gaussian_filter(z, 1.5, truncate=5 / 1.5, mode="reflect")  # noqa: E731
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))).mean())


def test_ssim_matches_an_independent_computation():
    rng = np.random.default_rng(0)
    a = cv2.GaussianBlur(rng.integers(0, 256, (64, 80), dtype=np.uint8), (0, 0), 2)
    b = np.clip(a.astype(int) + rng.normal(0, 12, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) == pytest.approx(_ssim_scipy(a, b), abs=1e-6)
    assert ssim(a, b) == pytest.approx(ssim(b, a))
    assert ssim(a, b) < 0.9 and ssim(a, 255 - a) < 0.1  # anti-correlated structure
    with pytest.raises(ValueError, match="one size"):
        ssim(a, a[:10])


def test_sources_are_only_even_lspet_and_top_level_demo_photos(tmp_path):
    for name in ("lspet_dev/images/im00001.jpg", "lspet_dev/images/im00002.jpg", "lspet_dev/images/im00004.jpg",
                 "coco_mini_dev/images/000000001.jpg", "demo_images/a.jpg", "demo_images/hands/h.jpg",
                 "demo_images/v.mp4", "ehf_dev/x.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in training_photo_sources(tmp_path)]
    assert found == ["lspet_dev/images/im00002.jpg", "lspet_dev/images/im00004.jpg", "demo_images/a.jpg"]


def test_real_sources_never_include_held_out_photos():
    root = shared_data()
    sources = training_photo_sources(root)
    lspet = [p for p in sources if "lspet_dev" in p.parts]
    assert len(lspet) == 500 and all(int(p.stem[2:]) % 2 == 0 for p in lspet)
    assert not [p for p in sources if "coco_mini_dev" in p.parts or "hands" in p.parts]


@pytest.mark.slow  # MediaPipe's graphs: a few seconds
def test_person_removed_from_a_real_photo():
    rgb = read_rgb(shared_data("demo_images", "bus.jpg"))
    remover = PersonRemover()
    try:
        small = cv2.resize(rgb, (480, 640), interpolation=cv2.INTER_AREA)
        assert remover.finds_person(small)  # the photo has people
        result = remover.clean(rgb, "bus.jpg")
        assert result.image.shape == small.shape
        assert 0.05 < result.mask_fraction < 0.5
        assert result.ssim >= 0.5 and result.ssim == pytest.approx(ssim(small, result.image))
        assert not result.person_left and not remover.finds_person(result.image)
        assert result.kept
        mask = remover.person_mask(small)
        assert (result.image[~mask] == small[~mask]).all()  # only the masked pixels change
    finally:
        remover.close()


@pytest.mark.slow
def test_bank_caches_outcomes_and_rejects_bad_files(tmp_path):
    photo = shared_data("demo_images", "zidane.jpg")
    (tmp_path / "tiny.png").write_bytes(cv2.imencode(".png", np.zeros((40, 40, 3), np.uint8))[1].tobytes())
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    sources = [photo, tmp_path / "tiny.png", tmp_path / "broken.jpg"]
    first = build_background_bank(sources, cache=tmp_path / "cache")
    assert first.names == ["zidane.jpg"] and set(first.rejected) == {"tiny.png", "broken.jpg"}
    folder = tmp_path / "cache" / CleaningSettings().key()
    assert len(list(folder.glob("*_hole.png"))) == 1 and len(list(folder.glob("*.png"))) == 2  # image + its hole map
    start = time.perf_counter()
    second = build_background_bank(sources, cache=tmp_path / "cache")
    assert time.perf_counter() - start < 1.0  # read back, not cleaned again
    assert np.array_equal(second.images[0], first.images[0]) and second.rejected == first.rejected


def test_random_crop_size_and_determinism():
    image = np.random.default_rng(1).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    a = random_crop(image, (128, 96), np.random.default_rng(5))
    b = random_crop(image, (128, 96), np.random.default_rng(5))
    assert a.shape == (128, 96, 3) and np.array_equal(a, b)


def test_crop_shows_less_inpainting_than_a_blind_crop():
    """A background inpainted on its left half: the chosen crops show less of it than blind ones,
    and a person standing over it hides what remains."""
    from hmrkit.synth.backgrounds import HOLE_CELL

    image = np.zeros((240, 480, 3), np.uint8)
    image[:, :240] = 255  # the "inpainted" half is white
    hole = np.zeros((240 // HOLE_CELL, 480 // HOLE_CELL), np.float32)
    hole[:, : 240 // HOLE_CELL] = 1
    blind = [random_crop(image, (64, 64), np.random.default_rng(i)).mean() / 255 for i in range(40)]
    chosen = [random_crop(image, (64, 64), np.random.default_rng(i), hole).mean() / 255 for i in range(40)]
    assert np.mean(chosen) < 0.5 * np.mean(blind)
    person = np.array([0, 0, 31, 63], float)  # the left half of the output is covered by a person
    covered = [random_crop(image, (64, 64), np.random.default_rng(i), hole, person)[:, 32:].mean() / 255 for i in range(40)]
    assert np.mean(covered) <= np.mean(chosen) + 0.05
