"""Backgrounds for synthetic people: real photos with their people removed (AJAHR, Supp. A).

The paper segments people (SAM), inpaints them away (LaMa) and keeps a background only if it
passes two checks: SSIM >= 0.5 against the original photo (heavy inpainting is blurry), and a
pose detector finds nobody afterwards. Neither SAM nor LaMa ships in a registry package, so
here MediaPipe's selfie segmentation (in the mediapipe wheel) gives the mask, dilated to take
the person's outline too, and OpenCV's Telea inpainting fills it; hmrkit's own perception
(:class:`~hmrkit.perception.mediapipe_backend.MediaPipeBackend`) is the "nobody left" check.

Cleaning costs ~0.1-0.5 s a photo, so the outcome (image or rejection) is cached on disk keyed
by the source file's content and the settings.

Data hygiene: the only sources are the even-numbered ``lspet_dev`` photos and the top level of
``demo_images`` (:func:`training_photo_sources`). The odd-numbered ``lspet_dev`` photos and
``coco_mini_dev`` measure false amputations on real people and must never be trained on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from hmrkit.paths import cache_dir

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
HOLE_CELL = 8  # pixels per cell of a background's map of inpainted pixels


@dataclass(frozen=True)
class CleaningSettings:
    max_side: int = 640  # photos are downscaled to this long side first (backgrounds are cropped small)
    mask_threshold: float = 0.3  # selfie segmentation probability counted as person
    dilate_fraction: float = 0.02  # dilation radius, share of the image diagonal (takes the outline)
    inpaint_radius: int = 5  # OpenCV Telea's neighbourhood, pixels
    min_ssim: float = 0.5  # AJAHR's quality threshold
    min_side: int = 96  # smaller photos are not used

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class CleanedBackground:
    image: np.ndarray  # (H, W, 3) uint8 RGB, people inpainted away
    ssim: float  # against the (downscaled) original
    mask_fraction: float  # share of the image that was inpainted
    person_left: bool  # hmrkit's perception still found someone
    source: str  # file name
    kept: bool  # both checks passed: SSIM >= min_ssim and nobody found


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity (Wang et al. 2004; Gaussian window, sigma 1.5) of two RGB or
    gray uint8 images of equal size, on their luminance."""
    def gray(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        return (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) if x.ndim == 3 else x).astype(np.float64)

    x, y = gray(a), gray(b)
    if x.shape != y.shape:
        raise ValueError(f"ssim needs images of one size, got {x.shape} and {y.shape}")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


class PersonRemover:
    """Selfie-segmentation mask -> dilation -> Telea inpainting -> the two quality checks."""

    def __init__(self, settings: CleaningSettings = CleaningSettings()):
        import mediapipe as mp

        from hmrkit.perception.mediapipe_backend import MediaPipeBackend, MediaPipeConfig

        self.settings = settings
        self._segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        self._backend = MediaPipeBackend(MediaPipeConfig(hands=False, hands_fallback=False))

    def close(self) -> None:
        self._segmenter.close()
        self._backend.close()

    def person_mask(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W) bool: people, dilated by ``dilate_fraction`` of the diagonal."""
        s = self.settings
        prob = self._segmenter.process(np.ascontiguousarray(rgb)).segmentation_mask
        mask = (prob >= s.mask_threshold).astype(np.uint8)
        radius = max(2, int(round(s.dilate_fraction * float(np.hypot(*rgb.shape[:2])))))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        return cv2.dilate(mask, kernel) > 0

    def finds_person(self, rgb: np.ndarray) -> bool:
        return bool(self._backend.detect_pose(rgb))

    def clean(self, rgb: np.ndarray, source: str = "<array>") -> CleanedBackground:
        s = self.settings
        rgb = downscale(rgb, s.max_side)
        mask = self.person_mask(rgb)
        if mask.any():
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            cleaned = cv2.cvtColor(cv2.inpaint(bgr, mask.astype(np.uint8), s.inpaint_radius, cv2.INPAINT_TELEA), cv2.COLOR_BGR2RGB)
        else:
            cleaned = rgb.copy()
        score, left = ssim(rgb, cleaned), self.finds_person(cleaned)
        return CleanedBackground(cleaned, score, float(mask.mean()), left, source, score >= s.min_ssim and not left)


def downscale(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    f = max_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def read_rgb(path: Path) -> np.ndarray | None:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def training_photo_sources(data_root: Path) -> list[Path]:
    """The photos synthesis may learn from: even-numbered ``lspet_dev`` and top-level ``demo_images``
    (not ``hands/``, not videos). Never the odd ``lspet_dev`` photos, never ``coco_mini_dev``."""
    data_root = Path(data_root)
    lspet = sorted(p for p in (data_root / "lspet_dev" / "images").glob("im*.jpg") if is_even_lspet(p))
    demo = sorted(p for p in (data_root / "demo_images").glob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return lspet + demo


def is_even_lspet(path: Path) -> bool:
    digits = "".join(c for c in Path(path).stem if c.isdigit())
    return bool(digits) and int(digits) % 2 == 0


def default_data_root() -> Path:
    """``$HMRKIT_DATA_DIR`` else the development checkout's ``../shared/data``."""
    import os

    from hmrkit.data.data_dirs import DATA_ENV
    from hmrkit.paths import package_dir

    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return package_dir().parent.parent / "shared" / "data"


def data_root(setting: str | Path | None) -> Path:
    """A generator's data folder: ``setting`` else :func:`default_data_root`; one clear error when absent."""
    root = Path(setting) if setting else default_data_root()
    if not root.is_dir():
        raise FileNotFoundError(f"development data not found at {root} (set $HMRKIT_DATA_DIR)")
    return root


@dataclass
class BackgroundBank:
    """The kept backgrounds, in the order of their sources (so a seed picks the same one)."""

    images: list[np.ndarray]
    names: list[str]
    rejected: dict[str, str]  # source name -> why
    holes: list[np.ndarray]  # (h, w) float32 share of inpainted pixels per HOLE_CELL x HOLE_CELL cell

    def __len__(self) -> int:
        return len(self.images)


def build_background_bank(sources: list[Path], settings: CleaningSettings = CleaningSettings(),
                          cache: Path | None = None, progress=None, max_hole: float = 1.0) -> BackgroundBank:
    """Clean every source (or read its cached outcome); returns the kept ones. ``max_hole``:
    also reject backgrounds with more than this share inpainted (mostly smear even when the SSIM
    check passes)."""
    folder = Path(cache or cache_dir() / "synth" / "backgrounds") / settings.key()
    folder.mkdir(parents=True, exist_ok=True)
    remover: PersonRemover | None = None
    images, names, rejected, holes = [], [], {}, []
    try:
        for n, path in enumerate(sources):
            if progress is not None:
                progress(n, len(sources))
            data = Path(path).read_bytes()
            key = hashlib.sha1(data).hexdigest()[:16]
            meta_path, image_path = folder / f"{key}.json", folder / f"{key}.png"
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
            if meta is None or (meta["kept"] and not image_path.exists()):
                bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
                if bgr is None or min(bgr.shape[:2]) < settings.min_side:
                    meta = {"kept": False, "why": "unreadable or too small"}
                else:
                    remover = remover or PersonRemover(settings)
                    result = remover.clean(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), Path(path).name)
                    why = "" if result.kept else ("person still found" if result.person_left else f"ssim {result.ssim:.2f}")
                    meta = {"kept": result.kept, "why": why, "ssim": result.ssim, "mask_fraction": result.mask_fraction}
                    if result.kept:
                        cv2.imwrite(str(image_path), cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR))
                meta_path.write_text(json.dumps(meta))
            if meta["kept"] and meta["mask_fraction"] > max_hole:
                rejected[Path(path).name] = f"{100 * meta['mask_fraction']:.0f} % inpainted"
            elif meta["kept"]:
                image = read_rgb(image_path)
                hole_path = folder / f"{key}_hole.png"
                if not hole_path.exists():  # the inpainted pixels: those that differ from the downscaled photo
                    original = downscale(cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                                                      cv2.COLOR_BGR2RGB), settings.max_side)
                    cells = cv2.resize((original != image).any(-1).astype(np.float32), None, fx=1 / HOLE_CELL,
                                       fy=1 / HOLE_CELL, interpolation=cv2.INTER_AREA)
                    cv2.imwrite(str(hole_path), (cells * 255 + 0.5).astype(np.uint8))
                images.append(image)
                names.append(Path(path).name)
                holes.append(cv2.imread(str(hole_path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255)
            else:
                rejected[Path(path).name] = meta["why"]
    finally:
        if remover is not None:
            remover.close()
    return BackgroundBank(images, names, rejected, holes)




def random_crop(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
                hole: np.ndarray | None = None, person: np.ndarray | None = None, candidates: int = 12) -> np.ndarray:
    """A crop of ``image`` with the aspect of ``size`` = (H, W), 40-100 % of the largest such crop,
    randomly mirrored, resized to ``size``. With ``hole`` (the bank's map of inpainted cells) the
    least smeared of ``candidates`` random crops is taken: the one showing the fewest inpainted
    pixels outside ``person`` (its box in the output, which hides what lies under it)."""
    h, w = image.shape[:2]
    out_h, out_w = size
    largest = min(h / out_h, w / out_w)
    mirror = rng.random() < 0.5
    n = candidates if hole is not None else 1
    scales = largest * rng.uniform(0.4, 1.0, n)
    ch, cw = np.maximum(8, (out_h * scales).astype(int)), np.maximum(8, (out_w * scales).astype(int))
    y0s, x0s = (rng.random(n) * (h - ch + 1)).astype(int), (rng.random(n) * (w - cw + 1)).astype(int)
    best = 0
    if hole is not None:
        table = np.pad(hole, ((1, 0), (1, 0))).cumsum(0).cumsum(1)  # summed-area table of the cells

        def cells(x0, y0, x1, y1):  # inpainted share summed over a pixel box (cells it covers)
            c = np.clip(np.array([x0, x1]) / HOLE_CELL, 0, hole.shape[1]).round().astype(int)
            r = np.clip(np.array([y0, y1]) / HOLE_CELL, 0, hole.shape[0]).round().astype(int)
            return table[r[1], c[1]] - table[r[0], c[1]] - table[r[1], c[0]] + table[r[0], c[0]]

        smear = np.zeros(n)
        for k in range(n):
            fx, fy = cw[k] / out_w, ch[k] / out_h
            smear[k] = cells(x0s[k], y0s[k], x0s[k] + cw[k], y0s[k] + ch[k])
            if person is not None and np.isfinite(person).all():
                px0, px1 = (out_w - 1 - person[2], out_w - 1 - person[0]) if mirror else (person[0], person[2])
                smear[k] -= cells(x0s[k] + px0 * fx, y0s[k] + person[1] * fy, x0s[k] + (px1 + 1) * fx, y0s[k] + (person[3] + 1) * fy)
            smear[k] /= ch[k] * cw[k] / HOLE_CELL ** 2  # share of the crop
        best = int(np.argmin(smear))
    y0, x0, ch, cw = y0s[best], x0s[best], ch[best], cw[best]
    crop = image[y0:y0 + ch, x0:x0 + cw]
    if mirror:
        crop = crop[:, ::-1]
    interp = cv2.INTER_AREA if ch > out_h else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(crop), (out_w, out_h), interpolation=interp)
