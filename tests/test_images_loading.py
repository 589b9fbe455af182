"""load_image: every odd file a user may hand us gives RGB uint8 or one clear ImageError."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hmrkit.io import ImageError, LoadedImage, ensure_rgb_uint8, load_image


def _rng_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _smooth_image(h: int, w: int) -> np.ndarray:
    """Gradients with a different pattern per channel: JPEG keeps them, a BGR swap shows."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), np.full_like(xx, 60)]).astype(np.uint8)


def _jpeg_bytes(a: np.ndarray, **kw) -> bytes:
    b = io.BytesIO()
    Image.fromarray(a).save(b, "JPEG", quality=92, **kw)
    return b.getvalue()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.jpg")


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not a file"):
        load_image(tmp_path)


def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageError, match="0 bytes"):
        load_image(p)


def test_text_file_named_jpg(tmp_path: Path) -> None:
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture\n" * 20)
    with pytest.raises(ImageError, match="not an image"):
        load_image(p)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.995])
def test_truncated_jpeg(tmp_path: Path, keep: float) -> None:
    data = _jpeg_bytes(_rng_image(64, 80))
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageError, match="truncated|corrupt|decode"):
        load_image(p)


def test_complete_jpeg_loads(tmp_path: Path) -> None:
    a = _smooth_image(40, 50)
    p = tmp_path / "ok.jpg"
    p.write_bytes(_jpeg_bytes(a))
    out = load_image(p)
    assert isinstance(out, LoadedImage)
    assert out.rgb.shape == (40, 50, 3) and out.rgb.dtype == np.uint8
    assert out.scale == 1.0 and out.original_size == (50, 40) and out.notes == ()
    # JPEG is lossy but must be close to the source, channel order RGB (no BGR swap)
    assert np.abs(out.rgb.astype(int) - a).mean() < 4
    assert np.abs(out.rgb.astype(int) - a[..., ::-1]).mean() > 40


def test_zero_size_png(tmp_path: Path) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    p = tmp_path / "zero.png"
    p.write_bytes(png)
    with pytest.raises(ImageError, match="zero size"):
        load_image(p)


def test_png_rgb_exact_and_bgr_not_swapped(tmp_path: Path) -> None:
    a = _rng_image(7, 9)
    p = tmp_path / "c.png"
    cv2.imwrite(str(p), a[..., ::-1])  # OpenCV writes BGR
    np.testing.assert_array_equal(load_image(p).rgb, a)


def test_grayscale(tmp_path: Path) -> None:
    g = np.arange(60, dtype=np.uint8).reshape(6, 10) * 4
    p = tmp_path / "g.png"
    Image.fromarray(g, mode="L").save(p)
    out = load_image(p).rgb
    assert out.shape == (6, 10, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)


def test_rgba_composited_on_white(tmp_path: Path) -> None:
    rgb = _rng_image(4, 5)
    alpha = np.array([0, 64, 128, 255, 255], dtype=np.uint8)[None, :].repeat(4, axis=0)
    p = tmp_path / "a.png"
    Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA").save(p)
    out = load_image(p)
    a = alpha[..., None] / 255.0
    expected = rgb * a + 255.0 * (1 - a)
    assert np.abs(out.rgb.astype(float) - expected).max() <= 1.0
    np.testing.assert_array_equal(out.rgb[:, 0], 255)  # fully transparent -> white
    assert any("white" in n for n in out.notes)


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    idx = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    palette = [255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9)
    im = Image.fromarray(idx, mode="P")
    im.putpalette(palette)
    p = tmp_path / "p.png"
    im.save(p)
    out = load_image(p).rgb
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[0, 1], [0, 255, 0])
    np.testing.assert_array_equal(out[1, 0], [0, 0, 255])
    q = tmp_path / "pt.png"
    im.save(q, transparency=1)  # palette entry 1 (green) is transparent
    out = load_image(q).rgb
    np.testing.assert_array_equal(out[0, 1], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])


def test_16bit_grayscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    g16 = np.linspace(0, 65535, 12 * 20).reshape(12, 20).astype(np.uint16)
    p = tmp_path / "g16.png"
    assert cv2.imwrite(str(p), g16)
    out = load_image(p)
    expected = np.rint(g16 / 257.0)
    for c in range(3):
        assert np.abs(out.rgb[..., c].astype(int) - expected).max() == 0
    assert out.rgb.max() == 255 and out.rgb.min() == 0
    assert np.unique(out.rgb).size > 200  # a clip would leave ~2 values
    assert any("16-bit" in n for n in out.notes)


def test_16bit_colour_is_scaled_and_rgb(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 10 * 30).reshape(10, 30)
    rgb16 = np.dstack([ramp, 65535 - ramp, ramp / 2]).astype(np.uint16)
    p = tmp_path / "c16.png"
    assert cv2.imwrite(str(p), rgb16[..., ::-1])  # BGR on disk for OpenCV
    out = load_image(p).rgb
    assert np.abs(out.astype(float) - rgb16 / 257.0).max() <= 1.0


def test_exif_orientation_applied(tmp_path: Path) -> None:
    a = _rng_image(3, 5)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = tmp_path / "o.png"
    Image.fromarray(a).save(p, exif=exif)
    out = load_image(p)
    np.testing.assert_array_equal(out.rgb, np.rot90(a, k=-1))
    assert out.original_size == (3, 5)


def test_exif_orientation_jpeg_with_downscale(tmp_path: Path) -> None:
    a = np.zeros((40, 100, 3), dtype=np.uint8)
    a[:, :10] = (255, 0, 0)  # red band on the stored image's left
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 CCW to display": the left band ends at the bottom
    p = tmp_path / "o.jpg"
    p.write_bytes(_jpeg_bytes(a, exif=exif))
    out = load_image(p, max_side=50)
    assert out.rgb.shape == (50, 20, 3)
    assert out.original_size == (40, 100)
    assert out.scale == pytest.approx(0.5)
    assert out.rgb[-3:, :, 0].mean() > 200 and out.rgb[:10, :, 0].mean() < 50


def test_huge_image_is_downscaled_with_a_note(tmp_path: Path) -> None:
    a = np.zeros((300, 5000, 3), dtype=np.uint8)
    a[:, 2500:] = 200
    p = tmp_path / "wide.png"
    cv2.imwrite(str(p), a)
    out = load_image(p)
    assert out.rgb.shape == (round(300 * 4096 / 5000), 4096, 3)
    assert out.scale == pytest.approx(4096 / 5000)
    assert out.original_size == (5000, 300)
    assert any("downscaled" in n for n in out.notes)
    assert out.rgb[:, 2048 + 5].min() == 200 and out.rgb[:, 2048 - 5].max() == 0
    full = load_image(p, max_side=None)
    assert full.rgb.shape == (300, 5000, 3) and full.scale == 1.0 and full.notes == ()


def test_huge_jpeg_reduced_decode_matches_plain_resize(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:1000, 0:9000]
    a = np.dstack([(xx / 9000 * 255), (yy / 1000 * 255), np.full_like(xx, 90)]).astype(np.uint8)
    p = tmp_path / "big.jpg"
    p.write_bytes(_jpeg_bytes(a))
    out = load_image(p, max_side=2000)
    assert out.rgb.shape == (222, 2000, 3)
    assert out.original_size == (9000, 1000)
    ref = cv2.resize(a, (2000, 222), interpolation=cv2.INTER_AREA)
    assert np.abs(out.rgb.astype(int) - ref).mean() < 3


def test_cmyk_jpeg(tmp_path: Path) -> None:
    a = _smooth_image(16, 16)
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(a).convert("CMYK").save(p, "JPEG", quality=95)
    out = load_image(p).rgb
    assert out.shape == (16, 16, 3)
    assert np.abs(out.astype(int) - a).mean() < 6


def test_bad_max_side(tmp_path: Path) -> None:
    p = tmp_path / "x.png"
    cv2.imwrite(str(p), _rng_image(4, 4))
    with pytest.raises(ValueError):
        load_image(p, max_side=0)


def test_ensure_rgb_uint8_rejects_bad_arrays() -> None:
    ok = _rng_image(3, 4)
    assert ensure_rgb_uint8(ok) is ok
    for bad, msg in [
        (np.zeros((0, 5, 3), np.uint8), "empty"),
        (np.zeros((4, 5), np.uint8), "HxWx3"),
        (np.zeros((4, 5, 4), np.uint8), "HxWx3"),
        (np.zeros((4, 5, 3), np.float32), "uint8"),
        ([[1, 2, 3]], "numpy"),
    ]:
        with pytest.raises(ImageError, match=msg):
            ensure_rgb_uint8(bad)  # type: ignore[arg-type]
    # a non-contiguous view comes back contiguous
    assert ensure_rgb_uint8(ok[:, ::-1]).flags.c_contiguous


def test_refuses_when_pil_truncation_is_tolerated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFile

    p = tmp_path / "ok.png"
    cv2.imwrite(str(p), _rng_image(4, 4))
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ImageError, match="LOAD_TRUNCATED_IMAGES"):
        load_image(p)
