"""Square crop boxes and the maps between full-image pixels, crop pixels and normalized crop coords.

Three coordinate systems, all with pixel centres at integer coordinates (OpenCV's convention):
- image pixels ``u``;
- crop pixels ``u'`` of a ``crop_size`` x ``crop_size`` crop, the box's edges mapping to the
  crop's outer pixel edges (-0.5 and crop_size - 0.5), so ``u' = (u - c) * crop_size / size + (crop_size - 1) / 2``;
- normalized crop coords ``n = (u - c) / (size / 2)``, -1 and 1 at the box edges; the frame of
  HMR/SPIN-style weak-perspective cameras (see :mod:`hmrkit.geometry.cameras`).
Boxes carry any batch shape; points are ``(..., N, 2)`` and broadcast against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from hmrkit.geometry.arrays import Array, as_tensor, like


@dataclass(frozen=True)
class CropBox:
    """Square box in image pixels: ``center`` (..., 2) and side ``size`` (...), both float tensors."""

    center: torch.Tensor
    size: torch.Tensor

    def __post_init__(self) -> None:
        center, size = as_tensor(self.center), as_tensor(self.size)
        if center.ndim < 1 or center.shape[-1] != 2:
            raise ValueError(f"CropBox.center must have shape (..., 2), got {tuple(center.shape)}")
        if size.shape != center.shape[:-1]:
            raise ValueError(
                f"CropBox.size must have shape {tuple(center.shape[:-1])} to match center {tuple(center.shape)},"
                f" got {tuple(size.shape)}"
            )
        if not bool((size > 0).all()):
            raise ValueError("CropBox.size must be positive")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "size", size.to(center.dtype))


def bounding_rect(keypoints: Array, visible: Array | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Corners ``(lo, hi)``, each (..., 2), of the tight rectangle around the visible keypoints (..., N, 2)."""
    kp = as_tensor(keypoints)
    if kp.ndim < 2 or kp.shape[-1] != 2:
        raise ValueError(f"keypoints must have shape (..., N, 2), got {tuple(kp.shape)}")
    vis = torch.ones(kp.shape[:-1], dtype=torch.bool) if visible is None else as_tensor(visible, floating=False).bool()
    vis = vis.to(kp.device)
    if vis.shape != kp.shape[:-1]:
        raise ValueError(f"visible must have shape {tuple(kp.shape[:-1])}, got {tuple(vis.shape)}")
    if not bool(vis.any(-1).all()):
        raise ValueError("a sample has no visible keypoint")
    m = vis.unsqueeze(-1)
    lo = torch.where(m, kp, torch.full_like(kp, torch.inf)).amin(-2)
    hi = torch.where(m, kp, torch.full_like(kp, -torch.inf)).amax(-2)
    return lo, hi


def box_from_keypoints(
    keypoints: Array, visible: Array | None = None, padding: float = 1.2, min_size: float = 1.0
) -> CropBox:
    """Square box around the visible keypoints (..., N, 2): centred on their bounding rectangle,
    side ``padding`` times its longer side (at least ``min_size`` pixels, for one-point boxes)."""
    lo, hi = bounding_rect(keypoints, visible)
    return CropBox((lo + hi) / 2, ((hi - lo).amax(-1) * padding).clamp_min(min_size))


def _box_for(points: torch.Tensor, box: CropBox) -> tuple[torch.Tensor, torch.Tensor]:
    """Box centre (..., 1, 2) and half-size (..., 1, 1), in the points' dtype, ready to broadcast."""
    if points.ndim < 2 or points.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., N, 2), got {tuple(points.shape)}")
    return box.center.to(points).unsqueeze(-2), box.size.to(points)[..., None, None] / 2


def _normalize(p: torch.Tensor, box: CropBox) -> torch.Tensor:
    c, half = _box_for(p, box)
    return (p - c) / half


def _denormalize(p: torch.Tensor, box: CropBox) -> torch.Tensor:
    c, half = _box_for(p, box)
    return c + p * half


def image_to_normalized(points: Array, box: CropBox) -> Array:
    """Image pixels -> normalized crop coords ([-1, 1] inside the box)."""
    return like(_normalize(as_tensor(points), box), points)


def normalized_to_image(points: Array, box: CropBox) -> Array:
    """Normalized crop coords -> image pixels."""
    return like(_denormalize(as_tensor(points), box), points)


def image_to_crop(points: Array, box: CropBox, crop_size: int) -> Array:
    """Image pixels -> pixels of the ``crop_size`` crop made by :func:`warp_to_crop`."""
    return like((_normalize(as_tensor(points), box) + 1) * (crop_size / 2) - 0.5, points)


def crop_to_image(points: Array, box: CropBox, crop_size: int) -> Array:
    """Pixels of the ``crop_size`` crop -> image pixels."""
    return like(_denormalize((as_tensor(points) + 0.5) * (2 / crop_size) - 1, box), points)


def crop_affine(box: CropBox, crop_size: int) -> torch.Tensor:
    """(..., 2, 3) affine matrix taking image pixels to crop pixels (the ``M`` of cv2.warpAffine)."""
    k = crop_size / box.size
    zero = torch.zeros_like(k)
    offset = (crop_size - 1) / 2 - box.center * k.unsqueeze(-1)
    row_x = torch.stack([k, zero, offset[..., 0]], -1)
    row_y = torch.stack([zero, k, offset[..., 1]], -1)
    return torch.stack([row_x, row_y], -2)


def warp_to_crop(
    image: np.ndarray, box: CropBox, crop_size: int, border_value: int = 0, interpolation: int = cv2.INTER_LINEAR
) -> np.ndarray:
    """Cut one box out of an (H, W[, C]) image into a ``crop_size`` square; outside is ``border_value``.

    Bilinear sampling aliases when shrinking a box much larger than the crop; blur first if that matters.
    """
    if box.center.shape != (2,):
        raise ValueError(f"warp_to_crop takes one box (center of shape (2,)), got {tuple(box.center.shape)}")
    if image.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {image.shape}")
    M = crop_affine(box, crop_size).double().numpy()
    return cv2.warpAffine(
        image, M, (crop_size, crop_size), flags=interpolation,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(border_value,) * 4,
    )
