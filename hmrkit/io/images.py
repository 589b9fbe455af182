"""Reading photos and video frames into RGB uint8 arrays, with one clear error per bad input.

Everything downstream (perception, fitting, rendering) assumes an RGB uint8 HxWx3 array in
display orientation. Photos arrive in many shapes (EXIF-rotated phone shots, grayscale scans,
cut-outs with alpha, 16-bit PNGs, 50-megapixel files, half-copied JPEGs), so all the
conversions live here and nowhere else.

Choices:
- Alpha is composited on WHITE (what image viewers show for cut-outs); a black background
  would turn dark hair and clothes into one blob for the detectors.
- 16-bit samples are SCALED to 8 bits (v * 255 / 65535, rounded), never clipped. Pillow opens
  16-bit RGB(A) files as 8-bit by keeping the high byte (floor(v / 256)): that is a scaling
  too and lies within one level of the exact value, so it is kept.
- Images whose long side exceeds ``max_side`` are downscaled (area interpolation; JPEGs are
  decoded directly at a reduced DCT scale, which is much faster). ``LoadedImage.scale`` says
  by how much, so callers can map pixels back (``original_px = px / scale``) and tell users.
- A truncated or corrupt file is an error, never a half-grey picture.
- The camera's focal length is read from EXIF when the file has one (:func:`exif_focal`): the
  35 mm-equivalent focal length (keeping the diagonal field of view, so it survives resizing),
  else the focal length in mm with the sensor's resolution (FocalPlaneX/YResolution) and the
  pixel size it refers to (PixelX/YDimension; without them a resized export would be read as a
  far longer lens). Absurd values are ignored with a note. Cropped photos keep their EXIF but
  not its field of view: ``--intrinsics`` or ``--fov`` override it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

DEFAULT_MAX_SIDE = 4096
_WHITE = (255, 255, 255)
FILM_DIAGONAL_MM = math.hypot(36.0, 24.0)  # 35 mm film: equivalent focal lengths keep the diagonal view
MAX_EQUIVALENT_MM = 10000.0  # no real lens is longer (35 mm-equivalent): such EXIF values are errors
_EXIF_IFD = 0x8769
_FOCAL_LENGTH, _FOCAL_35MM = 0x920A, 0xA405
_PIXEL_X, _PIXEL_Y = 0xA002, 0xA003
_PLANE_X_RES, _PLANE_Y_RES, _PLANE_UNIT = 0xA20E, 0xA20F, 0xA210
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # ResolutionUnit: inch (EXIF's default), cm, mm, um


class ImageError(ValueError):
    """An image could not be read or is not a usable picture."""


class VideoError(ValueError):
    """A video could not be opened or decoded."""


@dataclass(frozen=True)
class ExifFocal:
    """The focal lengths a photo's EXIF implies, in pixels of the original image (display
    orientation; the principal point is taken at the image centre)."""

    fx: float
    fy: float
    equivalent_mm: float  # the 35 mm-equivalent focal length they amount to
    tags: str  # which EXIF tags gave them, e.g. "FocalLengthIn35mmFilm 26 mm"


@dataclass(frozen=True)
class LoadedImage:
    """A decoded photo.

    rgb: HxWx3 uint8, display orientation (EXIF applied), possibly downscaled.
    scale: rgb pixels per original pixel (1.0, or < 1 when downscaled).
    original_size: (width, height) of the file's picture after EXIF orientation.
    notes: human-readable remarks worth passing on to the user (downscaling, alpha, ...).
    exif_focal: the camera's focal lengths from EXIF, None when the file gives no usable ones.
    """

    rgb: np.ndarray
    scale: float
    original_size: tuple[int, int]
    notes: tuple[str, ...] = ()
    exif_focal: ExifFocal | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of ``rgb``."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


def load_image(path: str | Path, max_side: int | None = DEFAULT_MAX_SIDE) -> LoadedImage:
    """Read an image file as RGB uint8 (see the module notes). Raises ImageError."""
    p = Path(path)
    if not p.exists():
        raise ImageError(f"image not found: {p}")
    if not p.is_file():
        raise ImageError(f"not a file: {p}")
    if p.stat().st_size == 0:
        raise ImageError(f"image file is empty (0 bytes): {p}")
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be >= 1 or None, got {max_side}")
    notes: list[str] = []
    try:
        with Image.open(p) as im:
            _check_nonempty(im, p)
            raw_size = im.size
            if max_side is not None and im.format == "JPEG":
                _draft_jpeg(im, max_side)
            _load_strictly(im, p)
            focal = _read_exif_focal(im, raw_size, notes)  # after loading: a PNG's eXIf chunk may follow its pixels
            decoded_size = im.size
            im = ImageOps.exif_transpose(im)
            turned = im.size != decoded_size
            original_size = (raw_size[1], raw_size[0]) if turned else raw_size
            if focal is not None and turned:
                focal = ExifFocal(focal.fy, focal.fx, focal.equivalent_mm, focal.tags)
            rgb = _to_rgb_uint8(im, p, notes)
    except ImageError:
        raise
    except UnidentifiedImageError:
        if _header_says_empty(p):
            raise ImageError(f"image has zero size (its header says width or height 0): {p}") from None
        raise ImageError(f"not an image file (unrecognised format): {p}") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"image too large to decode safely: {p} ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"cannot decode image {p}: {e}") from None
    return replace(_limit_size(rgb, original_size, max_side, notes), exif_focal=focal)


def _read_exif_focal(im: Image.Image, size: tuple[int, int], notes: list[str]) -> ExifFocal | None:
    """:func:`exif_focal` of an opened file; a broken EXIF block only costs the focal length."""
    try:
        exif = im.getexif()
        tags = {**exif, **exif.get_ifd(_EXIF_IFD)}  # the focal tags belong in the Exif IFD; TIFFs may hold them in IFD0
    except Exception as error:  # noqa: BLE001 - Pillow's EXIF parser raises many kinds on bad blocks
        notes.append(f"EXIF unreadable, focal length not used ({type(error).__name__})")
        return None
    return exif_focal(tags, size, notes)


def _number(value: object) -> float | None:
    """An EXIF number (int, IFDRational) as a finite float; None when absent or not a number."""
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def exif_focal(tags: dict[int, object], size: tuple[int, int], notes: list[str]) -> ExifFocal | None:
    """Focal lengths (pixels) from the EXIF sub-IFD ``tags`` of a picture stored ``size`` = (width,
    height) before orientation. Values that cannot be right are ignored with a note in ``notes``."""
    width, height = size
    equivalent = _number(tags.get(_FOCAL_35MM))
    if equivalent is not None:
        if 0 < equivalent <= MAX_EQUIVALENT_MM:
            f = equivalent * math.hypot(width, height) / FILM_DIAGONAL_MM
            return ExifFocal(f, f, equivalent, f"FocalLengthIn35mmFilm {equivalent:g} mm")
        notes.append(f"EXIF 35 mm-equivalent focal length {equivalent:g} mm ignored (not in (0, {MAX_EQUIVALENT_MM:g}])")
    focal = _number(tags.get(_FOCAL_LENGTH))
    if focal is None:
        return None
    if focal <= 0:
        notes.append(f"EXIF focal length {focal:g} mm ignored (not positive)")
        return None
    unit = _UNIT_MM.get(int(_number(tags.get(_PLANE_UNIT)) or 2))
    x_res = _number(tags.get(_PLANE_X_RES))
    y_res = _number(tags.get(_PLANE_Y_RES)) or x_res
    pixels_x, pixels_y = _number(tags.get(_PIXEL_X)), _number(tags.get(_PIXEL_Y))
    if unit is None or not x_res or x_res <= 0 or not y_res or y_res <= 0 or not pixels_x or pixels_x <= 0:
        notes.append(f"EXIF focal length {focal:g} mm ignored (no 35 mm equivalent, and no sensor resolution "
                     "with the pixel size it refers to)")
        return None
    pixels_y = pixels_y if pixels_y and pixels_y > 0 else pixels_x * height / width
    if abs(pixels_x / pixels_y - width / height) > 0.01 * width / height:
        notes.append(f"EXIF focal length {focal:g} mm ignored (EXIF pixel size {pixels_x:g}x{pixels_y:g} "
                     f"is not this {width}x{height} picture's shape: cropped?)")
        return None
    per_mm_x, per_mm_y = x_res / unit, y_res / unit  # sensor pixels per mm
    equivalent = focal * FILM_DIAGONAL_MM / math.hypot(pixels_x / per_mm_x, pixels_y / per_mm_y)
    if not 0 < equivalent <= MAX_EQUIVALENT_MM:
        notes.append(f"EXIF focal length {focal:g} mm ignored (its sensor size makes it {equivalent:g} mm 35 mm-equivalent)")
        return None
    fx, fy = focal * per_mm_x * width / pixels_x, focal * per_mm_y * height / pixels_y
    return ExifFocal(fx, fy, equivalent, f"FocalLength {focal:g} mm, FocalPlaneResolution")


def _check_nonempty(im: Image.Image, p: Path) -> None:
    if im.width <= 0 or im.height <= 0:
        raise ImageError(f"image has zero size {im.width}x{im.height}: {p}")


def _header_says_empty(p: Path) -> bool:
    """PNG or GIF header with a zero width or height (Pillow refuses to identify those)."""
    with open(p, "rb") as f:
        head = f.read(24)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        return w == 0 or h == 0
    if head[:4] == b"GIF8" and len(head) >= 10:
        w, h = int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
        return w == 0 or h == 0
    return False


def _draft_jpeg(im: Image.Image, max_side: int) -> None:
    """Ask libjpeg for a 1/2, 1/4 or 1/8 scale decode that is still >= the target size."""
    long_side = max(im.size)
    if long_side <= max_side:
        return
    s = max_side / long_side
    im.draft(im.mode, (math.ceil(im.width * s), math.ceil(im.height * s)))


def _load_strictly(im: Image.Image, p: Path) -> None:
    """Decode all pixels; a truncated file or a decoder warning is an error."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise ImageError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set by another library; "
            f"refusing to decode {p} since truncation could not be detected"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.load()
    except (OSError, SyntaxError, Warning) as e:
        raise ImageError(f"image file is truncated or corrupt: {p} ({e})") from None


def _to_rgb_uint8(im: Image.Image, p: Path, notes: list[str]) -> np.ndarray:
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im).astype(np.float64)
        rgb8 = np.rint(np.clip(a, 0, 65535) * (255.0 / 65535.0)).astype(np.uint8)
        notes.append("16-bit image scaled to 8 bits")
        return np.repeat(rgb8[..., None], 3, axis=2)
    if mode == "F":
        raise ImageError(f"floating-point images are not supported (convert to 8/16-bit): {p}")
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in im.info
    ) or (mode in ("L", "RGB") and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        alpha = np.asarray(rgba)[..., 3]
        if alpha.min() < 255:
            notes.append("transparent pixels composited on white")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        im = Image.alpha_composite(background, rgba)
    rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb)


def _limit_size(
    rgb: np.ndarray, original_size: tuple[int, int], max_side: int | None, notes: list[str]
) -> LoadedImage:
    ow, oh = original_size
    h, w = rgb.shape[:2]
    target_scale = 1.0
    if max_side is not None and max(ow, oh) > max_side:
        target_scale = max_side / max(ow, oh)
    tw = max(1, round(ow * target_scale))
    th = max(1, round(oh * target_scale))
    if (tw, th) != (w, h):
        rgb = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA)
    if target_scale < 1.0:
        notes.append(
            f"downscaled from {ow}x{oh} to {tw}x{th} (scale {target_scale:.4f}); "
            f"long side limit {max_side} px"
        )
    return LoadedImage(
        rgb=np.ascontiguousarray(rgb),
        scale=target_scale,
        original_size=(ow, oh),
        notes=tuple(notes),
    )


def ensure_rgb_uint8(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Validate an in-memory RGB picture at an API boundary; returns it C-contiguous."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{what} must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"{what} must be HxWx3 RGB, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"{what} is empty (shape {image.shape})")
    if image.dtype != np.uint8:
        raise ImageError(f"{what} must be uint8, got {image.dtype}")
    return np.ascontiguousarray(image)


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: index in the file, its time stamp and the RGB pixels."""

    index: int
    time_s: float
    fps: float
    rgb: np.ndarray


class VideoReader:
    """Frames of a video file as RGB uint8, via OpenCV's FFmpeg backend.

    Opening checks that the file exists and that a first frame decodes, so a bad file fails
    here with a VideoError rather than yielding nothing. Use as a context manager or call
    close(). ``fps`` falls back to 30 when the container does not say (and notes it).
    """

    def __init__(self, path: str | Path, max_side: int | None = None) -> None:
        p = Path(path)
        if not p.is_file():
            raise VideoError(f"video not found: {p}")
        if p.stat().st_size == 0:
            raise VideoError(f"video file is empty (0 bytes): {p}")
        self.path = p
        self.max_side = max_side
        self.notes: list[str] = []
        self._cap = cv2.VideoCapture(str(p))
        if not self._cap.isOpened():
            self._cap.release()
            raise VideoError(f"cannot open video (unknown format or codec): {p}")
        ok, first = self._cap.read()
        if not ok or first is None or first.size == 0:
            self._cap.release()
            raise VideoError(f"video has no decodable frames: {p}")
        self._first: np.ndarray | None = first
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not math.isfinite(fps) or fps <= 0:
            fps = 30.0
            self.notes.append("frame rate unknown; assuming 30 fps")
        self.fps = fps
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.size = (int(first.shape[1]), int(first.shape[0]))

    def __iter__(self) -> Iterator[VideoFrame]:
        if self._first is None:
            raise VideoError(f"video can be iterated only once: {self.path}")
        index = 0
        frame, self._first = self._first, None
        while frame is not None:
            yield VideoFrame(index, index / self.fps, self.fps, self._to_rgb(frame))
            ok, frame = self._cap.read()
            if not ok:
                frame = None
            index += 1
        self.close()

    def _to_rgb(self, bgr: np.ndarray) -> np.ndarray:
        if bgr.ndim == 2:
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        if self.max_side is not None and max(h, w) > self.max_side:
            s = self.max_side / max(h, w)
            rgb = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        return rgb

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
