"""Lite I2L MeshNet as a hand estimator: a square hand crop of a known side -> 21 landmarks.

The output (:class:`LiteI2LHand`) has what MediaPipe's hand landmarks give the rest of hmrkit
(:class:`hmrkit.perception.types.HandLandmarks`): ``xy`` in image pixels and ``world`` in metres
around the hand's geometric centre, plus the mesh. The network sees left hands only: a right
crop is flipped before and its answer flipped back.

Metric size: the network's 3D is in crop pixels (x, y and wrist-relative depth in the same
units, weak perspective), i.e. known up to one scale. :func:`lixels_to_side` fixes the scale so
the palm (wrist to middle-finger MCP) is as long as the neutral Anny hand's (91.5 mm): the IK
net reads bone lengths, and a crop does not tell a small hand near from a large one far.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from hmrkit.models.lite_i2l import LiteI2L, LiteI2LConfig, lixels_to_crop, load_lite_i2l

PALM_LENGTH_M = 0.0915  # wrist -> middle MCP of the neutral Anny hand (hand_model, zero angles)


def lixels_to_side(coords: torch.Tensor, config: LiteI2LConfig, sides: list[str]) -> torch.Tensor:
    """(B, N, 3) lixels of left-hand crops (N >= 10, hand21 first) -> metres in a camera-like frame
    (x right, y down, z away) of each crop's own side, wrist at the origin, palm scaled to
    :data:`PALM_LENGTH_M`."""
    points = lixels_to_crop(coords, config)
    points = points - points[:, :1]
    palm = (points[:, 9] - points[:, 0]).norm(dim=-1).clamp_min(1e-6)
    points = points * (PALM_LENGTH_M / palm)[:, None, None]
    flip = torch.tensor([-1.0 if s == "right" else 1.0 for s in sides], dtype=points.dtype)
    points[..., 0] = points[..., 0] * flip[:, None]
    return points


@dataclass
class LiteI2LHand:
    """One hand from the network (the fields of MediaPipe's hand landmarks, plus the mesh)."""

    side: str
    xy: np.ndarray  # (21, 2) image pixels
    world: np.ndarray  # (21, 3) metres, origin at the hand's geometric centre (as MediaPipe's world landmarks)
    vertices: np.ndarray  # (1596, 3) the Anny hand mesh of ``side``, same frame and scale as ``world``
    crop: tuple[float, float, float, float]  # x0, y0, x1, y1 of the square crop it saw


class LiteI2LEstimator:
    """``LiteI2LEstimator.load().estimate(rgb, crop, side)``."""

    def __init__(self, net: LiteI2L):
        self.net = net.eval()
        self.config = net.config

    @classmethod
    def load(cls, path: str | Path | None = None) -> LiteI2LEstimator:
        return cls(load_lite_i2l(path)[0])

    def crop_input(self, rgb: np.ndarray, crop: tuple[float, float, float, float], side: str) -> tuple[torch.Tensor, float]:
        """The crop resampled to the network's size (outside the image: black), flipped for a right
        hand; and its pixels per network pixel."""
        import cv2

        x0, y0, x1, y1 = crop
        size = self.config.input_size
        scale = (x1 - x0) / size
        # the trainer shrinks its images with cv2.INTER_AREA (pixel averages); warpAffine has no area
        # mode, and sampling a larger crop bilinearly aliases fine texture. So: sample k x k points per
        # network pixel (k = ceil(scale), at most one image pixel apart) and average them. Fine pixel
        # centre j -> image x0 + (j + 0.5) * scale / k - 0.5, so network pixel centre i -> x0 + (i + 0.5) * scale - 0.5
        k = max(1, int(np.ceil(scale - 1e-9)))
        step = scale / k
        m = np.array([[step, 0, x0 + 0.5 * step - 0.5], [0, step, y0 + 0.5 * step - 0.5]], np.float64)
        patch = cv2.warpAffine(rgb, m, (size * k, size * k), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT)
        if k > 1:
            patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
        if side == "right":
            patch = patch[:, ::-1]
        x = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1).float()[None] / 255.0
        return x, scale

    @torch.no_grad()
    def estimate(self, rgb: np.ndarray, crop: tuple[float, float, float, float], side: str) -> LiteI2LHand:
        """One hand in the square ``crop`` (x0, y0, x1, y1; may reach past the image) of an RGB image."""
        if side not in ("left", "right"):
            raise ValueError(f"hand side must be 'left' or 'right', got {side!r}")
        x0, y0, x1, y1 = (float(v) for v in crop)
        if not x1 - x0 > 1 or abs((x1 - x0) - (y1 - y0)) > 1e-3 * (x1 - x0):
            raise ValueError(f"the hand crop must be a non-empty square, got {crop}")
        image, scale = self.crop_input(rgb, (x0, y0, x1, y1), side)
        out = self.net(image)
        px = lixels_to_crop(out.joints, self.config)[0, :, :2].numpy()
        if side == "right":
            px[:, 0] = self.config.input_size - 1 - px[:, 0]
        xy = np.stack([x0 + (px[:, 0] + 0.5) * scale - 0.5, y0 + (px[:, 1] + 0.5) * scale - 0.5], 1)
        both = lixels_to_side(torch.cat([out.joints, out.vertices], 1), self.config, [side])[0]
        centre = both[:21].mean(0)
        world = (both - centre).numpy()
        return LiteI2LHand(side, xy.astype(np.float64), world[:21].astype(np.float64), world[21:].astype(np.float32),
                           (x0, y0, x1, y1))


@lru_cache(maxsize=1)
def shipped_estimator() -> LiteI2LEstimator:
    """The shipped network, loaded once per process."""
    return LiteI2LEstimator.load()


# ------------------------------------------------------------------------- in the pipeline
def body_hand_crop(body, side: str, min_visibility: float = 0.5) -> tuple[float, float, float, float] | None:
    """A square crop around one hand from the body's landmarks (wrist, pinky, index, thumb; the
    training crops have the hand over 50-85 % of the side): centred one wrist-to-knuckle distance
    past the wrist, 3.2 of those distances wide (at least half the forearm). None when the wrist
    is not seen or the arm is degenerate."""
    if float(body.visibility[_mp(f"{side}_wrist")]) < min_visibility:
        return None
    wrist = body.point(f"{side}_wrist")
    knuckles = np.mean([body.point(f"{side}_{k}") for k in ("pinky", "index", "thumb")], axis=0)
    reach = float(np.linalg.norm(knuckles - wrist))
    forearm = float(np.linalg.norm(wrist - body.point(f"{side}_elbow")))
    width = max(3.2 * reach, 0.5 * forearm)
    if not np.isfinite(width) or width < 8.0:
        return None
    cx, cy = wrist + (knuckles - wrist) * 1.0
    return (float(cx - width / 2), float(cy - width / 2), float(cx + width / 2), float(cy + width / 2))


def _mp(name: str) -> int:
    from hmrkit.perception.types import mp33_index

    return mp33_index(name)


def network_hands(rgb: np.ndarray, perception, replace_all: bool, estimator: LiteI2LEstimator | None = None):
    """``perception`` with the network's hands: on every body's seen wrists (``replace_all``: the
    ``lite-i2l`` hand estimator), or only on the wrists where MediaPipe found no hand (the
    fallback). The hands carry ``score`` 0 (the network gives no confidence) and the side from the pose."""
    from hmrkit.perception.types import HandLandmarks

    est = estimator or shipped_estimator()
    people = []
    h, w = rgb.shape[:2]
    for person in perception.people:
        if person.body is None:
            people.append(person)
            continue
        hands = {} if replace_all else dict(person.hands)
        for side in ("left", "right"):
            if side in hands:
                continue
            crop = body_hand_crop(person.body, side)
            if crop is None or not (-0.25 * w <= (crop[0] + crop[2]) / 2 <= 1.25 * w and -0.25 * h <= (crop[1] + crop[3]) / 2 <= 1.25 * h):
                continue
            found = est.estimate(rgb, crop, side)
            hands[side] = HandLandmarks(side, found.xy, found.world, 0.0, "pose", found.crop)
        people.append(replace(person, hands=hands))
    return replace(perception, people=people)
