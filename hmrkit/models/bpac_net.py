"""BPAC-Net, AJAHR's body-part amputation classifier (Sec. 3.3.1, Supp. G), and its pipeline classifier.

The net sees one person: a square RGB crop concatenated with 33 heatmaps of the person's
MediaPipe landmarks (one Gaussian per landmark, scaled by its visibility, so a limb MediaPipe
invented with low confidence draws faint spots), X = concat(I, K). A small ResNet with a CBAM
module (channel then spatial attention) after every basic block extracts the features; a
feature head gives a vector (the paper's alignment token, kept for later use) and four heads
give four classes each: present, then the three absence levels of :mod:`hmrkit.body.limbs`
(arm: hand / forearm / arm; leg: foot / lower_leg / leg). The paper's ResNet-32 (16 blocks)
is cut to 8 narrower blocks on a 112 px crop so one person costs a few ms on a CPU.

:class:`BpacLiteNet` takes the same input through an ImageNet-pretrained EfficientNet-Lite0
trunk (with CBAM on its last map) and lets each limb's head also read the trunk's maps at that
limb's landmarks. It is what ``hmrkit/weights/bpac.safetensors`` holds: trained from scratch on
this CPU, :class:`BpacNet`'s convolutions learned nothing from the image (its heads read the
landmark list alone), while the pretrained trunk does (``hmrkit/weights/bpac.md``). A weights
file's config (``imagenet_trunk``) says which of the two it holds (:func:`build_bpac_net`).

:class:`BpacClassifier` turns the heads' probabilities into a :class:`LimbStatus`: a limb is
called absent only when its "present" probability falls below a threshold calibrated on
training data for a low false-amputation rate (the real photos of intact people must not turn
into amputees); the level is then the most probable of the three absence classes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmrkit.body.conventions import MEDIAPIPE33, sides_swapped
from hmrkit.body.limbs import LIMBS, LimbStatus
from hmrkit.errors import ModelAssetError
from hmrkit.geometry.crops import CropBox, crop_affine
from hmrkit.paths import weights_dir
from hmrkit.perception.types import PersonDetection
from hmrkit.weights_file import read_weights

FILE_FORMAT = "hmrkit-bpac-v1"
DEFAULT_WEIGHTS = "bpac.safetensors"
TRAIN_COMMAND = "hmrkit train bpac"
NUM_LANDMARKS = len(MEDIAPIPE33)
NUM_CLASSES = 4  # present + three absence levels
# Landmark order of the mirrored image (left <-> right by name), and limb order likewise.
FLIP_LANDMARKS: tuple[int, ...] = tuple(sides_swapped(tuple(MEDIAPIPE33.names)))
FLIP_LIMBS: tuple[int, ...] = tuple(sides_swapped(tuple(LIMBS)))
_NOSE, _SHOULDERS = MEDIAPIPE33.index("nose"), MEDIAPIPE33.indices(["left_shoulder", "right_shoulder"])
_RGB_MEAN = (0.485, 0.456, 0.406)
_RGB_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BpacConfig:
    crop_size: int = 112  # input side in pixels
    widths: tuple[int, ...] = (16, 32, 64, 128)  # channels of the four stages
    blocks: tuple[int, ...] = (2, 2, 2, 2)  # basic blocks per stage, each followed by CBAM
    feature_dim: int = 256  # the feature head's output
    reduction: int = 8  # CBAM's channel-attention bottleneck
    heatmap_sigma: float = 0.02  # Gaussian sigma as a fraction of the crop side
    crop_padding: float = 1.15  # crop side = this x the longer side of the person's extent
    keypoint_dim: int = 64  # the landmark list's MLP width
    imagenet_trunk: bool = False  # True: BpacLiteNet (ImageNet EfficientNet-Lite0 trunk, fine-tuned); False: BpacNet
    trunk_size: int = 128  # BpacLiteNet: the crop is resized to this side for the trunk
    limb_dim: int = 128  # BpacLiteNet: width of each limb's sampled trunk features after their projection

    @classmethod
    def from_json(cls, text: str) -> BpacConfig:
        data = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# -- the net -----------------------------------------------------------------------------------


class Cbam(nn.Module):
    """Convolutional Block Attention Module (Woo et al. 2018): channel attention from the
    average- and max-pooled features through a shared MLP, then spatial attention from a 7x7
    convolution over the channel-wise mean and max."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel = torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))
        x = x * channel
        spatial = torch.sigmoid(self.spatial(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))
        return x * spatial


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convolutions, identity or 1x1 shortcut) with CBAM at its end."""

    def __init__(self, cin: int, cout: int, stride: int, reduction: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())
        self.cbam = Cbam(cout, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y)) + self.shortcut(x)
        return self.cbam(F.relu(y))


@dataclass
class BpacInput:
    """What the net reads about B people."""

    image: torch.Tensor  # (B, 3 + 33, S, S): RGB in [0, 1], then the landmark heatmaps (landmark_heatmaps)
    keypoints: torch.Tensor  # (B, 33, 3): x, y in [-1, 1] across the crop, visibility (all 0 for a landmark not found)


@dataclass
class BpacOutput:
    logits: torch.Tensor  # (B, 4 limbs, 4 classes), LIMBS order
    features: torch.Tensor  # (B, feature_dim): the feature head's vector


class BpacNet(nn.Module):
    """ResNet + CBAM over the crop and heatmaps; the landmark list itself joins the pooled image
    features through a small MLP before the feature head (not in the paper: on this CPU's training
    budget the visibility of a missing limb's guessed landmarks is learned from the list within a few
    hundred steps, while the convolutions take far longer to read it off the heatmaps)."""

    def __init__(self, config: BpacConfig = BpacConfig()) -> None:
        super().__init__()
        self.config = config
        c0 = config.widths[0]
        # stride-4 stem (two strided 3x3 convolutions): the crop's 112 px become 28 px maps
        self.stem = nn.Sequential(nn.Conv2d(3 + NUM_LANDMARKS, c0 // 2, 3, 2, 1, bias=False), nn.BatchNorm2d(c0 // 2),
                                  nn.ReLU(inplace=True), nn.Conv2d(c0 // 2, c0, 3, 2, 1, bias=False),
                                  nn.BatchNorm2d(c0), nn.ReLU(inplace=True))
        blocks, cin = [], c0
        for stage, (width, count) in enumerate(zip(config.widths, config.blocks)):
            for i in range(count):
                blocks.append(BasicBlock(cin, width, 2 if stage > 0 and i == 0 else 1, config.reduction))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.keypoint_mlp = nn.Sequential(nn.Linear(NUM_LANDMARKS * 3, config.keypoint_dim), nn.ReLU(inplace=True),
                                          nn.Linear(config.keypoint_dim, config.keypoint_dim), nn.ReLU(inplace=True))
        self.feature_head = nn.Sequential(nn.Linear(cin + config.keypoint_dim, config.feature_dim), nn.ReLU(inplace=True))
        self.heads = nn.ModuleList(nn.Linear(config.feature_dim, NUM_CLASSES) for _ in LIMBS)
        self.register_buffer("rgb_mean", torch.tensor(_RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("rgb_std", torch.tensor(_RGB_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, inputs: BpacInput) -> BpacOutput:
        _check_input(inputs, self.config.crop_size)
        x = inputs.image
        x = torch.cat([(x[:, :3] - self.rgb_mean) / self.rgb_std, x[:, 3:]], 1)
        pooled = self.blocks(self.stem(x)).mean((2, 3))
        features = self.feature_head(torch.cat([pooled, self.keypoint_mlp(inputs.keypoints.flatten(1))], 1))
        return BpacOutput(torch.stack([head(features) for head in self.heads], 1), features)


# Per limb, the landmarks at which BpacLiteNet samples its trunk's maps: the limb's root, its two
# joints and its tip (a missing hand or foot shows at the wrist / ankle and the tip MediaPipe guessed).
LIMB_LANDMARKS: dict[str, tuple[str, str, str, str]] = {
    "left_arm": ("left_shoulder", "left_elbow", "left_wrist", "left_index"),
    "right_arm": ("right_shoulder", "right_elbow", "right_wrist", "right_index"),
    "left_leg": ("left_hip", "left_knee", "left_ankle", "left_foot_index"),
    "right_leg": ("right_hip", "right_knee", "right_ankle", "right_foot_index"),
}


class BpacLiteNet(nn.Module):
    """BPAC-Net on an ImageNet-pretrained trunk (not in the paper, which trains a ResNet-32 + CBAM;
    here from-scratch convolutions learned nothing from the image within this CPU's training budget,
    ``bpac_scratch_diagnosis.md``, while a fine-tuned pretrained trunk does within a few hundred steps).

    The same input as :class:`BpacNet`, X = concat(I, K): the crop goes through EfficientNet-Lite0
    (the Lite I2L encoder, :class:`hmrkit.models.lite_i2l.EfficientNetLite0`), and the 33 landmark
    heatmaps join its stem's output through a strided 3x3 convolution that starts at zero (so
    training starts from the pretrained trunk unchanged). A CBAM module refines the last feature
    map before the global pooling and the feature head. Each limb's head reads the feature
    vector, the landmark list's MLP and the trunk's stride-8 and stride-16 maps sampled at the
    limb's four landmarks (:data:`LIMB_LANDMARKS`; one projection for both arms, one for both
    legs): what the image shows where MediaPipe put the wrist or the foot."""

    def __init__(self, config: BpacConfig = BpacConfig(imagenet_trunk=True)) -> None:
        from hmrkit.models.lite_i2l import HEAD_CHANNELS, SKIP_CHANNELS, STEM_CHANNELS, EfficientNetLite0

        super().__init__()
        self.config = config
        self.trunk = EfficientNetLite0(stem=True)
        self.heatmap_stem = nn.Conv2d(NUM_LANDMARKS, STEM_CHANNELS, 3, 2, 1, bias=False)
        nn.init.zeros_(self.heatmap_stem.weight)
        self.cbam = Cbam(HEAD_CHANNELS, 2 * config.reduction)
        self.feature_head = nn.Sequential(nn.Linear(HEAD_CHANNELS, config.feature_dim), nn.ReLU(inplace=True))
        sampled = len(LIMB_LANDMARKS["left_arm"]) * sum(SKIP_CHANNELS[1:])  # the stride-8 and -16 maps, sampled at the landmarks
        self.limb_features = nn.ModuleList(nn.Sequential(nn.Linear(sampled, config.limb_dim), nn.ReLU(inplace=True))
                                           for _ in ("arm", "leg"))
        self.keypoint_mlp = nn.Sequential(nn.Linear(NUM_LANDMARKS * 3, config.keypoint_dim), nn.ReLU(inplace=True),
                                          nn.Linear(config.keypoint_dim, config.keypoint_dim), nn.ReLU(inplace=True))
        width = config.feature_dim + config.limb_dim + config.keypoint_dim
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(width, 128), nn.ReLU(inplace=True), nn.Linear(128, NUM_CLASSES))
                                   for _ in LIMBS)
        self.register_buffer("limb_landmarks", torch.tensor([MEDIAPIPE33.indices(list(LIMB_LANDMARKS[limb])) for limb in LIMBS]),
                             persistent=False)
        self.register_buffer("rgb_mean", torch.tensor(_RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("rgb_std", torch.tensor(_RGB_STD).view(1, 3, 1, 1), persistent=False)

    def start_from_imagenet(self) -> None:
        """Load the trunk's ImageNet weights (training from scratch; a shipped file has its own)."""
        self.trunk.load_imagenet()

    def forward(self, inputs: BpacInput) -> BpacOutput:
        _check_input(inputs, self.config.crop_size)
        side = self.config.trunk_size
        x = F.interpolate(inputs.image, size=(side, side), mode="bilinear", align_corners=False)
        skips, top = self.trunk((x[:, :3] - self.rgb_mean) / self.rgb_std, stem_extra=self.heatmap_stem(x[:, 3:]))
        maps = skips[1:]  # stride 8 and 16
        features = self.feature_head(self.cbam(top).mean((2, 3)))
        b, limbs, per_limb = len(features), *self.limb_landmarks.shape
        grid = inputs.keypoints[:, self.limb_landmarks.flatten(), :2].view(b, limbs * per_limb, 1, 2)
        sampled = torch.cat([F.grid_sample(m, grid, align_corners=False)[..., 0] for m in maps], 1)  # (B, C, limbs * 4)
        sampled = sampled.view(b, -1, limbs, per_limb).permute(0, 2, 3, 1).flatten(2)  # (B, limbs, 4 * C)
        keypoints = self.keypoint_mlp(inputs.keypoints.flatten(1))
        logits = [head(torch.cat([features, self.limb_features[k // 2](sampled[:, k]), keypoints], 1))
                  for k, head in enumerate(self.heads)]
        return BpacOutput(torch.stack(logits, 1), features)


def build_bpac_net(config: BpacConfig) -> BpacNet | BpacLiteNet:
    """The net a config describes (``imagenet_trunk`` picks the trunk)."""
    return BpacLiteNet(config) if config.imagenet_trunk else BpacNet(config)


def _check_input(inputs: BpacInput, s: int) -> None:
    x = inputs.image
    if x.ndim != 4 or x.shape[1:] != (3 + NUM_LANDMARKS, s, s):
        raise ValueError(f"BPAC-Net takes images (B, {3 + NUM_LANDMARKS}, {s}, {s}), got {tuple(x.shape)}")
    if inputs.keypoints.shape != (x.shape[0], NUM_LANDMARKS, 3):
        raise ValueError(f"BPAC-Net takes keypoints (B, {NUM_LANDMARKS}, 3), got {tuple(inputs.keypoints.shape)}")


# -- inputs ------------------------------------------------------------------------------------


def landmark_heatmaps(xy: torch.Tensor, weight: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(B, 33, size, size) Gaussians exp(-d^2 / 2 sigma^2) at the landmarks ``xy`` (B, 33, 2), in
    pixels of the crop (centres at integers), each scaled by ``weight`` (B, 33) (visibility; 0 for
    a landmark not found). Separable: the outer product of a row and a column profile."""
    grid = torch.arange(size, dtype=xy.dtype, device=xy.device)
    gx = torch.exp(-(grid - xy[..., :1]).square() / (2 * sigma**2))  # (B, 33, size)
    gy = torch.exp(-(grid - xy[..., 1:]).square() / (2 * sigma**2))
    return weight[..., None, None] * gy[..., :, None] * gx[..., None, :]


def person_crop_box(landmarks_xy: np.ndarray, padding: float) -> CropBox:
    """The square crop of one person, from its 33 landmarks alone (seen or guessed: where a missing
    limb would be is part of the evidence) and the head top (landmarks stop at the eyes), its side
    ``padding`` times their longer extent. Training (synthetic sets, cached detections) and the
    pipeline cut the same crop from the same landmarks, whatever box a detector drew."""
    xy = np.asarray(landmarks_xy, dtype=np.float64)
    pts = xy[np.isfinite(xy).all(1)]
    if len(pts) == 0:
        raise ValueError("a person crop needs landmarks")
    lo, hi = pts.min(0), pts.max(0)
    if np.isfinite(xy[[_NOSE] + _SHOULDERS]).all():
        lo[1] = min(lo[1], xy[_NOSE, 1] - 0.8 * abs(xy[_SHOULDERS, 1].mean() - xy[_NOSE, 1]))
    side = max(float((hi - lo).max()) * padding, 8.0)
    return CropBox(torch.tensor((lo + hi) / 2), torch.tensor(side))


def cut_person(image: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """(size, size, 3) uint8 crop of ``box``; a box much larger than the crop is first shrunk with
    area averaging (bilinear warping alone would alias), outside the image is black."""
    scale = size / float(box.size)
    centre = box.center.double().numpy()
    if scale < 0.5:
        half = float(box.size) / 2 + 2
        x0, y0 = (max(int(np.floor(c - half)), 0) for c in centre)
        x1, y1 = min(int(np.ceil(centre[0] + half)), image.shape[1]), min(int(np.ceil(centre[1] + half)), image.shape[0])
        if x1 > x0 and y1 > y0:
            factor = 2 * scale
            region = image[y0:y1, x0:x1]
            w, h = max(int(round((x1 - x0) * factor)), 1), max(int(round((y1 - y0) * factor)), 1)
            image = cv2.resize(region, (w, h), interpolation=cv2.INTER_AREA)
            fx, fy = w / (x1 - x0), h / (y1 - y0)  # pixel centre u -> (u - x0 + 0.5) * f - 0.5
            centre = np.array([(centre[0] - x0 + 0.5) * fx - 0.5, (centre[1] - y0 + 0.5) * fy - 0.5])
            box = CropBox(torch.tensor(centre), torch.tensor(float(box.size) * fx))
    m = crop_affine(box, size).double().numpy()
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def crop_landmarks(landmarks_xy: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Landmarks (33, 2) in image pixels -> pixels of the ``size`` crop of ``box``."""
    k = size / float(box.size)
    return ((np.asarray(landmarks_xy, dtype=np.float64) - box.center.double().numpy()) * k + (size - 1) / 2).astype(np.float32)


def net_input(crops: torch.Tensor, xy: torch.Tensor, visibility: torch.Tensor, config: BpacConfig) -> BpacInput:
    """The net's input from uint8 or [0, 1] crops (B, S, S, 3) or (B, 3, S, S), crop-pixel landmarks
    (B, 33, 2) (NaN: not found) and visibility (B, 33)."""
    if crops.shape[-1] == 3:
        crops = crops.permute(0, 3, 1, 2)
    rgb = crops.float() / 255.0 if crops.dtype == torch.uint8 else crops.float()
    found = torch.isfinite(xy).all(-1)
    weight = torch.where(found, visibility.float().clamp(0, 1), torch.zeros_like(visibility, dtype=torch.float32))
    xy = torch.where(found[..., None], xy.float(), torch.zeros_like(xy, dtype=torch.float32))
    heat = landmark_heatmaps(xy, weight, config.crop_size, config.heatmap_sigma * config.crop_size)
    s = config.crop_size
    keypoints = torch.cat([torch.where(found[..., None], (2 * xy + 1) / s - 1, torch.zeros_like(xy)).clamp(-3, 3),
                           weight[..., None]], -1)
    return BpacInput(torch.cat([rgb, heat], 1), keypoints)


def mirror(rgb: torch.Tensor, xy: torch.Tensor, visibility: torch.Tensor, labels: torch.Tensor | None = None):
    """The mirrored people: crops (B, 3, S, S) flipped left-right, landmarks (B, 33, 2) in crop pixels
    mirrored and renamed (the person's left wrist becomes their right wrist), visibility likewise,
    limb labels (B, 4) swapped left <-> right. Flipping before the heatmaps are drawn moves 3
    channels instead of 36."""
    order = list(FLIP_LANDMARKS)
    xy = xy[:, order].clone()
    xy[..., 0] = rgb.shape[-1] - 1 - xy[..., 0]
    return rgb.flip(-1), xy, visibility[:, order], None if labels is None else labels[:, list(FLIP_LIMBS)]


@torch.no_grad()
def limb_probabilities(net: BpacNet | BpacLiteNet, crops: torch.Tensor, xy: torch.Tensor, visibility: torch.Tensor,
                       flip_average: bool = True) -> torch.Tensor:
    """(B, 4 limbs, 4 classes) softmax probabilities of people given as uint8 crops (B, S, S, 3),
    crop-pixel landmarks and visibility. ``flip_average``: also ask about the mirrored person and
    average (its left arm is this person's right arm): a steadier P(present) for the same cost
    as a batch twice the size."""
    net.eval()
    rgb = crops.permute(0, 3, 1, 2).float() / 255.0 if crops.shape[-1] == 3 else crops.float()
    p = torch.softmax(net(net_input(rgb, xy, visibility, net.config)).logits, -1)
    if flip_average:
        m_rgb, m_xy, m_vis, _ = mirror(rgb, xy, visibility)
        p = (p + torch.softmax(net(net_input(m_rgb, m_xy, m_vis, net.config)).logits, -1)[:, list(FLIP_LIMBS)]) / 2
    return p


def decide(probabilities: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(..., 4) classes from (..., 4, 4) probabilities: 0 (present) unless P(present) is below the
    limb's threshold, then the most probable absence level."""
    absent = probabilities[..., 0] < thresholds
    return np.where(absent, 1 + probabilities[..., 1:].argmax(-1), 0)


# -- weights -----------------------------------------------------------------------------------


def save_bpac(net: BpacNet | BpacLiteNet, thresholds: np.ndarray, path: str | Path, extra: dict[str, str] | None = None,
              flip_average: bool = True) -> Path:
    """Write the net and its decision rule (thresholds (4,), one per limb, calibrated with or without
    ``flip_average``); the config goes in the metadata, with the content digest the loader verifies
    (hmrkit.io.integrity)."""
    from hmrkit.io.integrity import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": FILE_FORMAT, "config": json.dumps(asdict(net.config)), "flip_average": "1" if flip_average else "0",
                "thresholds": json.dumps([float(t) for t in np.asarray(thresholds).reshape(len(LIMBS))])}
    metadata.update(extra or {})
    state = {k: v.detach().float().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata=metadata)
    return path


def load_bpac(path: str | Path | None = None) -> tuple[BpacNet | BpacLiteNet, np.ndarray, dict[str, str]]:
    """The net (eval mode), its thresholds and the file's metadata; :class:`ModelAssetError` (one
    line) when the file is missing, damaged or not a BPAC-Net file."""
    path = Path(path) if path is not None else weights_dir() / DEFAULT_WEIGHTS
    state, metadata = read_weights(path, "BPAC-Net", FILE_FORMAT, TRAIN_COMMAND)
    try:
        net = build_bpac_net(BpacConfig.from_json(metadata["config"]))
        net.load_state_dict(state, strict=True)
        thresholds = np.asarray(json.loads(metadata["thresholds"]), dtype=np.float64)
        if thresholds.shape != (len(LIMBS),) or not np.all((thresholds >= 0) & (thresholds <= 1)):
            raise ValueError(f"thresholds must be {len(LIMBS)} numbers in [0, 1]")
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelAssetError(f"BPAC-Net weights malformed: {path}: {str(error).splitlines()[0]}") from None
    return net.eval(), thresholds, metadata


# -- the pipeline's classifier -----------------------------------------------------------------


@dataclass
class BpacClassifier:
    """Limb status of the people of one image from the shipped (or a given) BPAC-Net."""

    net: BpacNet | BpacLiteNet
    thresholds: np.ndarray  # (4,) per limb: absent when P(present) < threshold
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> BpacClassifier:
        net, thresholds, metadata = load_bpac(path)
        return cls(net, thresholds, metadata)

    @property
    def flip_average(self) -> bool:
        return self.metadata.get("flip_average", "1") == "1"

    def probabilities(self, rgb: np.ndarray, people: list[PersonDetection]) -> np.ndarray:
        """(N, 4 limbs, 4 classes) probabilities, one batch for the image's people with a body
        (people without one get NaN rows)."""
        cfg = self.net.config
        out = np.full((len(people), len(LIMBS), NUM_CLASSES), np.nan)
        with_body = [i for i, p in enumerate(people) if p.body is not None]
        if not with_body:
            return out
        crops, xys = [], []
        for i in with_body:
            box = person_crop_box(people[i].body.xy, cfg.crop_padding)
            crops.append(cut_person(rgb, box, cfg.crop_size))
            xys.append(crop_landmarks(people[i].body.xy, box, cfg.crop_size))
        vis = np.stack([people[i].body.visibility for i in with_body])
        probs = limb_probabilities(self.net, torch.from_numpy(np.stack(crops)), torch.from_numpy(np.stack(xys)),
                                   torch.from_numpy(vis), self.flip_average)
        out[with_body] = probs.double().numpy()
        return out

    def at_threshold(self, threshold: float) -> BpacClassifier:
        """The same net deciding with one threshold on P(present) for every limb instead of the
        calibrated ones (the operating point: benchmarks/results/bpac_operating.md)."""
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"the threshold on P(present) must lie between 0 and 1, got {threshold}")
        return replace(self, thresholds=np.full(len(LIMBS), float(threshold)))

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """(N, 4) classes from (N, 4, 4) probabilities (:func:`decide` with this model's thresholds)."""
        return decide(probabilities, self.thresholds)

    def classify(self, rgb: np.ndarray, people: list[PersonDetection]) -> list[LimbStatus]:
        """One :class:`LimbStatus` per person (source "bpac", probabilities filled); a person found
        by hands only has no body landmarks to judge and is reported intact."""
        probs = self.probabilities(rgb, people)
        statuses = []
        for p in probs:
            if np.isnan(p).any():
                statuses.append(LimbStatus.intact())
            else:
                statuses.append(LimbStatus.from_classes(self.decide(p[None])[0], p, "bpac", self.thresholds))
        return statuses
