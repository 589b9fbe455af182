"""Pinhole and weak-perspective cameras, and the conversion between them.

OpenCV frame: x right, y down, z forward; pixels with centres at integer coordinates.
Weak perspective follows HMR/SPIN: a point X (camera-aligned axes, metres) lands at
``n = s * (X_xy + (tx, ty))`` in normalized crop coords (-1..1 across the crop box, see
:mod:`hmrkit.geometry.crops`). It equals a pinhole camera with focal ``f`` looking at the body
from depth ``tz = 2 f / (s * box_size)`` when the body's depth extent is small against ``tz``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from hmrkit.geometry.crops import CropBox

Scalar = float | torch.Tensor

# Field of view assumed along the image's longer side when the focal
# length is unknown. Phone main cameras (26 mm equivalent) see ~69 deg along the long side;
# CLIFF's rule f = image diagonal gives ~44 deg for 4:3 images. 60 deg sits between. A wrong
# focal mostly moves the body in depth; the 2D fit barely changes.
DEFAULT_FOV_DEGREES = 60.0


def default_focal_length(height: int, width: int, fov_degrees: float = DEFAULT_FOV_DEGREES) -> float:
    """Focal length in pixels giving ``fov_degrees`` along the longer image side:
    ``max(H, W) / (2 tan(fov / 2))``, i.e. 0.866 * max(H, W) at the default 60 deg."""
    if height <= 0 or width <= 0 or not 0 < fov_degrees < 180:
        raise ValueError(f"need positive image size and 0 < fov < 180, got {height}x{width}, fov {fov_degrees}")
    return max(height, width) / (2 * math.tan(math.radians(fov_degrees) / 2))


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels of the ORIGINAL image (before any downscaling), pixel centres
    at integer coordinates: what a user (``--intrinsics``) or a photo's EXIF says about the camera.

    The pipeline turns them into the :class:`PerspectiveCamera` of the (possibly downscaled)
    picture it fits with :meth:`for_scale`, so users never deal with hmrkit's working size.
    """

    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        try:
            finite = all(math.isfinite(float(v)) for v in values)
        except (TypeError, ValueError):
            finite = False
        if not finite:
            raise ValueError(f"camera intrinsics must be finite numbers, got fx,fy,cx,cy = {values}")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"focal lengths must be positive pixels, got fx {self.fx}, fy {self.fy}")

    @classmethod
    def parse(cls, text: str) -> CameraIntrinsics:
        """``"fx,fy,cx,cy"`` (the command line's form); ValueError with a one-line reason."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 4:
            raise ValueError(f"intrinsics take four numbers fx,fy,cx,cy (pixels), got {text!r}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"intrinsics take four numbers fx,fy,cx,cy (pixels), got {text!r}") from None
        return cls(*values)

    @classmethod
    def centred(cls, fx: float, fy: float, width: int, height: int) -> CameraIntrinsics:
        """Focal lengths with the principal point at the centre of a ``width`` x ``height`` image."""
        return cls(fx, fy, (width - 1) / 2, (height - 1) / 2)

    def for_scale(self, scale: float) -> PerspectiveCamera:
        """The camera of the picture downscaled by ``scale`` (its pixels per original pixel):
        focal lengths times ``scale``; pixel centres stay at integers on both grids, so
        ``c' = (c + 0.5) scale - 0.5`` (the inverse of the pipeline's back-conversion)."""
        return PerspectiveCamera(self.fx * scale, self.fy * scale, (self.cx + 0.5) * scale - 0.5, (self.cy + 0.5) * scale - 0.5)

    def inside(self, width: int, height: int) -> bool:
        """Whether the principal point lies on the ``width`` x ``height`` original image."""
        return -0.5 <= self.cx <= width - 0.5 and -0.5 <= self.cy <= height - 0.5


def _batch_field(value: Scalar, batch: int, like: torch.Tensor, name: str) -> torch.Tensor:
    """A float or (B,) camera field as a (B,) tensor."""
    v = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if v.ndim > 1 or (v.ndim == 1 and v.shape[0] not in (1, batch)):
        raise ValueError(f"camera field {name} must be a float or a ({batch},) tensor, got {tuple(v.shape)}")
    return v.expand(batch)


def per_sample(value: Scalar, points: torch.Tensor, name: str) -> torch.Tensor:
    """A float or (B,) camera field as a (B, 1) tensor that broadcasts against (B, N)."""
    return _batch_field(value, points.shape[0], points, name)[:, None]


def _check_points(points: torch.Tensor, dim: int) -> None:
    if points.ndim != 3 or points.shape[-1] != dim:
        raise ValueError(f"points must have shape (B, N, {dim}), got {tuple(points.shape)}")


@dataclass(frozen=True)
class PerspectiveCamera:
    """Pinhole intrinsics in pixels; each field a float or a (B,) tensor."""

    fx: Scalar
    fy: Scalar
    cx: Scalar
    cy: Scalar

    @classmethod
    def from_image_size(cls, height: int, width: int, fov_degrees: float = DEFAULT_FOV_DEGREES) -> PerspectiveCamera:
        """Square pixels, principal point at the image centre, :func:`default_focal_length`."""
        f = default_focal_length(height, width, fov_degrees)
        return cls(f, f, (width - 1) / 2, (height - 1) / 2)

    def matrix(self) -> torch.Tensor:
        """Intrinsics K, (3, 3) or (B, 3, 3)."""
        fields = (self.fx, self.fy, self.cx, self.cy)
        dtype = next((v.dtype for v in fields if isinstance(v, torch.Tensor)), torch.get_default_dtype())
        fx, fy, cx, cy = torch.broadcast_tensors(*(torch.as_tensor(v, dtype=dtype) for v in fields))
        zero, one = torch.zeros_like(fx), torch.ones_like(fx)
        return torch.stack([fx, zero, cx, zero, fy, cy, zero, zero, one], -1).reshape(*fx.shape, 3, 3)


@dataclass(frozen=True)
class WeakPerspectiveCamera:
    """HMR/SPIN weak perspective ``n = s * (X_xy + t)``; each field a float or a (B,) tensor."""

    s: Scalar
    tx: Scalar
    ty: Scalar

    @classmethod
    def from_vector(cls, cam: torch.Tensor) -> WeakPerspectiveCamera:
        """From a network's (B, 3) output ``[s, tx, ty]``."""
        if cam.ndim != 2 or cam.shape[1] != 3:
            raise ValueError(f"weak-perspective camera vector must have shape (B, 3), got {tuple(cam.shape)}")
        return cls(cam[:, 0], cam[:, 1], cam[:, 2])


def perspective_project(
    points: torch.Tensor, camera: PerspectiveCamera, translation: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, N, 3) camera-frame points (plus an optional (B, 3) translation) -> (B, N, 2) pixels.

    No guard for points at or behind z = 0: callers keep bodies in front of the camera.
    """
    _check_points(points, 3)
    if translation is not None:
        if translation.shape != (points.shape[0], 3):
            raise ValueError(f"translation must have shape ({points.shape[0]}, 3), got {tuple(translation.shape)}")
        points = points + translation[:, None, :]
    x, y, z = points.unbind(-1)
    u = per_sample(camera.fx, points, "fx") * x / z + per_sample(camera.cx, points, "cx")
    v = per_sample(camera.fy, points, "fy") * y / z + per_sample(camera.cy, points, "cy")
    return torch.stack([u, v], -1)


def weak_perspective_project(points: torch.Tensor, camera: WeakPerspectiveCamera) -> torch.Tensor:
    """(B, N, 3) points -> (B, N, 2) normalized crop coords ``s * (X_xy + t)``."""
    _check_points(points, 3)
    s = per_sample(camera.s, points, "s")
    tx, ty = per_sample(camera.tx, points, "tx"), per_sample(camera.ty, points, "ty")
    return torch.stack([s * (points[..., 0] + tx), s * (points[..., 1] + ty)], -1)


def _conversion_inputs(
    box: CropBox, camera: PerspectiveCamera, batch: int | None, like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Box centre (B, 2) and side (B,), mean focal (B,) -- weak perspective is isotropic --
    and principal point (B, 2), all in ``like``'s dtype."""
    if box.center.ndim != 2 or (batch is not None and box.center.shape[0] != batch):
        want = "(B, 2)" if batch is None else f"({batch}, 2)"
        raise ValueError(f"crop box center must have shape {want}, got {tuple(box.center.shape)}")
    n = box.center.shape[0]
    fx, fy, cx, cy = (_batch_field(getattr(camera, k), n, like, k) for k in ("fx", "fy", "cx", "cy"))
    return box.center.to(like), box.size.to(like), (fx + fy) / 2, torch.stack([cx, cy], -1)


def weak_to_perspective_translation(
    weak: WeakPerspectiveCamera, box: CropBox, camera: PerspectiveCamera
) -> torch.Tensor:
    """Full-image camera translation (B, 3) equivalent to a crop's weak-perspective camera.

    ``tz = 2 f / (s b)`` and ``t_xy = t + 2 (c_box - c_principal) / (s b)`` for box side ``b``
    (CLIFF's / 4D-Humans' ``cam_crop_to_full`` with a general principal point). Projecting
    ``X + T`` with ``camera`` then matches the weak projection exactly for points at ``Z = 0``.
    The mean of fx and fy serves as ``f``.
    """
    like = box.center
    center, b, f, principal = _conversion_inputs(box, camera, None, like)
    n = center.shape[0]
    sb = _batch_field(weak.s, n, like, "s") * b
    t = torch.stack([_batch_field(weak.tx, n, like, "tx"), _batch_field(weak.ty, n, like, "ty")], -1)
    txy = t + 2 * (center - principal) / sb[:, None]
    return torch.cat([txy, (2 * f / sb)[:, None]], -1)


def perspective_to_weak(translation: torch.Tensor, box: CropBox, camera: PerspectiveCamera) -> WeakPerspectiveCamera:
    """Inverse of :func:`weak_to_perspective_translation` for a (B, 3) translation with ``tz > 0``."""
    if translation.ndim != 2 or translation.shape[1] != 3:
        raise ValueError(f"translation must have shape (B, 3), got {tuple(translation.shape)}")
    center, b, f, principal = _conversion_inputs(box, camera, translation.shape[0], translation)
    tz = translation[:, 2]
    t = translation[:, :2] - (center - principal) * (tz / f)[:, None]
    return WeakPerspectiveCamera(2 * f / (tz * b), t[:, 0], t[:, 1])
