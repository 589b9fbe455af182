"""HMR-Adapter (dual-path cross augmentation, paper 000 Sec. 3.3-3.5) on hmrkit's landmark stack.

hmrkit's hand expert in the pipeline is MediaPipe's 21 hand landmarks + the IK net, an MLP with
no attention to adapt. So the hand expert here is a small transformer of the paper's shape over
*hand tokens* instead of image patches:

- **Hand expert** (:class:`HandExpert`, trained first, then frozen): one token per hand21
  landmark (wrist-relative position in decimetres + confidence, a learned per-landmark
  embedding; a missing landmark is the learned mask token) and one for the palm's frame, a
  self-attention encoder (the
  paper's ViT backbone), then a decoder head as the paper's: a single query token, per block a
  self-attention, a cross-attention to the hand tokens and an FFN; linear heads give the hand's
  global orientation (6D, camera frame) and the 23 biomechanical angles (a sigmoid onto each
  angle's limits, so every output is feasible). A right hand is mirrored into a left one
  (x -> -x) first, as the IK net does, so one set of weights serves both sides.
- **Hand-path adapter** (:class:`HandPathAdapter`, Sec. 3.3, eq. 2-3): per decoder block a new
  self-attention SA' and a *decoupled* cross-attention CA' whose keys and values are the arm
  chain's 6D rotations from the body estimate -- the camera-frame (global) rotations of collar,
  shoulder, elbow and wrist, so that the root-to-wrist chain the paper uses is folded in -- each
  mapped by a linear layer to the token width. CA' is added to the expert's own cross-attention
  output. SA' and CA' start as copies of the expert's SA and CA (the paper's initialisation) and
  CA''s output projection starts at zero: at initialisation the adapted model *is* the expert.
- **Body-path adapter** (:class:`BodyPathAdapter`, Sec. 3.4, eq. 4): the frozen expert's encoder
  features at the four MCP tokens (index, middle, ring, little) of a hand are the keys and
  values; HKMR (frozen) has no token sequence to attend from -- its chains read one pooled
  feature vector -- so the queries are an empty begin token (the paper's) plus one token per arm
  joint rotation of HKMR's estimate. An FFN on the begin token gives the body-pose offset: local
  rotation offsets (axis-angle, zero-initialised) of the elbow and the wrist, which carry the
  forearm's twist in Anny's skeleton (there is no separate twist joint).
- **Baselines** for the ablation (the paper: naive incorporation harms): :class:`NaiveHandConcat`
  appends the body tokens to the hand tokens the decoder attends to and fine-tunes a copy of the
  expert's decoder and heads; :class:`NaiveBodyConcat` is an MLP on the concatenated arm
  rotations and MCP features. "No adapter" is the expert alone (hands) and HKMR alone (body).

Every model sees one hand (left convention); :mod:`hmrkit.data.wholebody_synth` makes those
inputs from whole-body samples and the pipeline stage (:mod:`hmrkit.hand_adapter_stage`) from
perception and HKMR. Weights: ``hmrkit/weights/hmr_adapter.safetensors`` (:func:`save_adapter`,
:func:`load_adapter`), trained by ``hmrkit train adapter`` (:mod:`hmrkit.train.adapter`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.data.retarget import CORE_NAMES, CORE_PARENTS
from hmrkit.errors import ModelAssetError
from hmrkit.geometry.rotations import axis_angle_to_matrix, matrix_to_sixd, sixd_to_matrix  # not roma: start-up time
from hmrkit.hands.biomech import ANGLE_NAMES, NUM_ANGLES, squash
from hmrkit.hands.hand_model import canonical_frame, mirror_rotation
from hmrkit.paths import weights_dir
from hmrkit.weights_file import read_weights

ARM_JOINTS = ("collar", "shoulder", "elbow", "wrist")  # per side: "left_collar", ...
OFFSET_JOINTS = ("elbow", "wrist")  # the body path's pose offset
MCP = (5, 9, 13, 17)  # hand21: index, middle, ring, little MCP
PALM_FRAME = (0, 5, 9, 17)  # the points canonical_frame reads
PARENTS21 = (0, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)  # hand21 (as hmrkit.hands.ik_net)
FILE_FORMAT = "hmrkit.hmr_adapter"
DEFAULT_WEIGHTS = "hmr_adapter.safetensors"
TRAIN_COMMAND = "hmrkit train adapter"
SIDES = ("left", "right")
ARM_INDEX = torch.tensor([[CORE_NAMES.index(f"{side}_{j}") for j in ARM_JOINTS] for side in SIDES])  # (2, 4)
OFFSET_INDEX = torch.tensor([[CORE_NAMES.index(f"{side}_{j}") for j in OFFSET_JOINTS] for side in SIDES])  # (2, 2)


def global_rotations(local: torch.Tensor) -> torch.Tensor:
    """(B, 22, 3, 3) local core rotations (joint 0 in the camera frame) -> camera-frame rotations."""
    out = [local[:, 0]]
    for j in range(1, NUM_BODY_CORE):
        out.append(out[CORE_PARENTS[j]] @ local[:, j])
    return torch.stack(out, dim=1)


def arm_chains(local: torch.Tensor) -> torch.Tensor:
    """(B, 22, 3, 3) local core rotations -> (B, 2, 4, 3, 3) each arm's camera-frame collar,
    shoulder, elbow, wrist rotations in the left-hand convention (the right arm mirrored)."""
    arms = global_rotations(local)[:, ARM_INDEX]
    return torch.stack([arms[:, 0], mirror_rotation(arms[:, 1])], dim=1)


def apply_offsets(local: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """(B, 22, 3, 3) local core rotations with the body path's (B, 2, 2, 3, 3) offsets (per side,
    elbow and wrist, left convention) right-multiplied onto the elbows and wrists."""
    offsets = torch.stack([offsets[:, 0], mirror_rotation(offsets[:, 1])], dim=1)
    out = local.clone()
    out[:, OFFSET_INDEX] = local[:, OFFSET_INDEX] @ offsets
    return out


@dataclass(frozen=True)
class AdapterConfig:
    width: int = 64  # token width
    heads: int = 4
    encoder_layers: int = 2  # the expert's token encoder (its "backbone")
    decoder_layers: int = 2  # the expert's decoder head: the hand path adapts each of these
    queries: int = 1  # the decoder's query tokens (the paper's: one)
    ffn: int = 128
    body_layers: int = 1  # blocks of the body-path adapter

    @classmethod
    def from_json(cls, text: str) -> "AdapterConfig":
        return cls(**json.loads(text))


@dataclass
class HandInputs:
    """One hand per row, in the left-hand convention (a right hand mirrored x -> -x)."""

    points: torch.Tensor  # (N, 21, 3) landmarks relative to the wrist landmark, camera axes, metres
    confidence: torch.Tensor  # (N, 21) in [0, 1]; 0 where missing
    missing: torch.Tensor  # (N, 21) bool: no landmark (occluded, truncated, hand not found)
    arm: torch.Tensor  # (N, 4, 3, 3) camera-frame rotations of collar, shoulder, elbow, wrist (body estimate)

    def __len__(self) -> int:
        return self.points.shape[0]


@dataclass
class HandEstimate:
    rotation: torch.Tensor  # (N, 3, 3) the hand's global orientation (wrist, camera frame, left convention)
    angles: torch.Tensor  # (N, 23) biomechanical angles inside their limits


def _ffn(width: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))


class EncoderLayer(nn.Module):
    """Pre-norm self-attention + FFN over the hand tokens."""

    def __init__(self, cfg: AdapterConfig):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.width)
        self.attn = nn.MultiheadAttention(cfg.width, cfg.heads, batch_first=True)
        self.ffn = _ffn(cfg.width, cfg.ffn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.ffn(x)


class DecoderBlock(nn.Module):
    """The paper's decoder block: SA on the query, CA to the (hand) tokens, FFN."""

    def __init__(self, cfg: AdapterConfig):
        super().__init__()
        self.norm_sa = nn.LayerNorm(cfg.width)
        self.sa = nn.MultiheadAttention(cfg.width, cfg.heads, batch_first=True)
        self.norm_ca = nn.LayerNorm(cfg.width)
        self.ca = nn.MultiheadAttention(cfg.width, cfg.heads, batch_first=True)
        self.ffn = _ffn(cfg.width, cfg.ffn)

    def query(self, z: torch.Tensor) -> torch.Tensor:
        """SA(Z): the cross-attention's query features."""
        h = self.norm_sa(z)
        return z + self.sa(h, h, h, need_weights=False)[0]

    def cross(self, q: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return self.ca(self.norm_ca(q), memory, memory, need_weights=False)[0]


class HandTokens(nn.Module):
    """21 landmark tokens and a palm token. A landmark's features: its position (dm) in the camera's
    axes and, where the palm is seen, in the palm's frame (:func:`~hmrkit.hands.hand_model.canonical_frame`
    of wrist, index, middle and little MCP: the rotation-free coordinates the IK net reads), there
    also the unit directions of its bone and of its parent's bone and its bone's length (so the joint's
    bend is readable from one token), flags for what is given, the confidence, and a per-landmark
    embedding; a missing landmark is the learned mask token. The 22nd token holds the palm frame
    itself (6D: the orientation the IK net gets in closed form), the mask token when a palm point is missing."""

    FEATURES = 3 + 3 + 3 + 3 + 1 + 2 + 1

    def __init__(self, cfg: AdapterConfig):
        super().__init__()
        self.point = nn.Linear(self.FEATURES, cfg.width)
        self.palm = nn.Linear(6, cfg.width)
        self.joint = nn.Parameter(0.02 * torch.randn(22, cfg.width))
        self.mask_token = nn.Parameter(0.02 * torch.randn(cfg.width))

    def forward(self, inputs: HandInputs) -> torch.Tensor:
        n = len(inputs)
        frame = canonical_frame(inputs.points)
        palm_seen = ~inputs.missing[:, list(PALM_FRAME)].any(1)
        local = torch.where(palm_seen[:, None, None], inputs.points @ frame, 0.0)
        parent, grandparent = list(PARENTS21), [PARENTS21[p] for p in PARENTS21]
        bone = local - local[:, parent]
        length = bone.norm(dim=-1, keepdim=True)
        direction = bone / length.clamp_min(1e-6)
        before = local[:, parent] - local[:, grandparent]
        before = before / before.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        seen = ~inputs.missing & palm_seen[:, None]
        bone_seen = seen & seen[:, parent] & seen[:, grandparent]
        bone_seen[:, 0] = False  # the wrist has no bone
        bone_features = torch.where(bone_seen[..., None], torch.cat([direction, before, 10.0 * length], dim=-1), 0.0)
        x = torch.cat([10.0 * inputs.points, 10.0 * local, bone_features, palm_seen[:, None, None].expand(n, 21, 1).float(),
                       bone_seen[..., None].float(), inputs.confidence[..., None]], dim=-1)
        points = torch.where(inputs.missing[..., None], self.mask_token, self.point(x))
        palm = torch.where(palm_seen[:, None], self.palm(matrix_to_sixd(frame)), self.mask_token)
        return torch.cat([points, palm[:, None]], dim=1) + self.joint


class ArmTokens(nn.Module):
    """The arm chain's 6D rotations -> tokens (linear map + a per-joint embedding), paper's F^B."""

    def __init__(self, cfg: AdapterConfig):
        super().__init__()
        self.rotation = nn.Linear(6, cfg.width)
        self.joint = nn.Parameter(0.02 * torch.randn(len(ARM_JOINTS), cfg.width))

    def forward(self, arm: torch.Tensor) -> torch.Tensor:
        return self.rotation(matrix_to_sixd(arm)) + self.joint


class HandExpert(nn.Module):
    """Hand tokens -> encoder -> decoder -> orientation (6D) + 23 angles (the heads read the
    decoder's ``queries`` query tokens, one as in the paper by default)."""

    def __init__(self, cfg: AdapterConfig, lower: torch.Tensor | None = None, upper: torch.Tensor | None = None):
        super().__init__()
        self.tokens = HandTokens(cfg)
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.encoder_norm = nn.LayerNorm(cfg.width)
        self.query = nn.Parameter(0.02 * torch.randn(1, cfg.queries, cfg.width))
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.decoder_layers))
        self.out_norm = nn.LayerNorm(cfg.width)
        self.rotation_head = nn.Linear(cfg.queries * cfg.width, 6)
        self.angle_head = nn.Linear(cfg.queries * cfg.width, NUM_ANGLES)
        self.register_buffer("lower", torch.zeros(NUM_ANGLES) if lower is None else lower.clone().float())
        self.register_buffer("upper", torch.zeros(NUM_ANGLES) if upper is None else upper.clone().float())

    def encode(self, inputs: HandInputs) -> torch.Tensor:
        """(N, 22, W) hand token features: 21 landmarks and the palm frame (the body path samples the MCP ones)."""
        x = self.tokens(inputs)
        for layer in self.encoder:
            x = layer(x)
        return self.encoder_norm(x)

    def decode(self, memory: torch.Tensor, adapter: "HandPathAdapter | None" = None, body: torch.Tensor | None = None) -> torch.Tensor:
        """(N, Q x W) the query tokens after the decoder; ``adapter`` adds its body cross-attention per block (eq. 3)."""
        z = self.query.expand(memory.shape[0], -1, -1)
        for i, block in enumerate(self.blocks):
            q = block.query(z)
            h = block.cross(q, memory)
            if adapter is not None:
                h = h + adapter.layers[i](z, body)
            z = q + h
            z = z + block.ffn(z)
        return self.out_norm(z).flatten(1)

    def heads(self, z: torch.Tensor) -> HandEstimate:
        return HandEstimate(sixd_to_matrix(self.rotation_head(z)), squash(self.angle_head(z), self.lower, self.upper))

    def forward(self, inputs: HandInputs) -> HandEstimate:
        return self.heads(self.decode(self.encode(inputs)))


class AdapterLayer(nn.Module):
    """SA' + decoupled CA' for one decoder block: copies of the block's SA and CA, output projection zeroed."""

    def __init__(self, block: DecoderBlock):
        super().__init__()
        self.norm_sa = copy.deepcopy(block.norm_sa)
        self.sa = copy.deepcopy(block.sa)
        self.norm_ca = copy.deepcopy(block.norm_ca)
        self.ca = copy.deepcopy(block.ca)
        nn.init.zeros_(self.ca.out_proj.weight)
        nn.init.zeros_(self.ca.out_proj.bias)

    def forward(self, z: torch.Tensor, body: torch.Tensor) -> torch.Tensor:
        h = self.norm_sa(z)
        q = z + self.sa(h, h, h, need_weights=False)[0]
        return self.ca(self.norm_ca(q), body, body, need_weights=False)[0]


class HandPathAdapter(nn.Module):
    """Body guidance into the frozen hand expert (Sec. 3.3): arm tokens + one :class:`AdapterLayer` per block."""

    def __init__(self, cfg: AdapterConfig, expert: HandExpert):
        super().__init__()
        self.arm = ArmTokens(cfg)
        self.layers = nn.ModuleList(AdapterLayer(block) for block in expert.blocks)

    def forward(self, expert: HandExpert, inputs: HandInputs, memory: torch.Tensor | None = None) -> HandEstimate:
        memory = expert.encode(inputs) if memory is None else memory
        return expert.heads(expert.decode(memory, self, self.arm(inputs.arm)))


class BodyPathAdapter(nn.Module):
    """Hand MCP features into the body estimate (Sec. 3.4): begin token + arm tokens attend to the
    four MCP features; an FFN on the begin token gives elbow and wrist local rotation offsets."""

    def __init__(self, cfg: AdapterConfig):
        super().__init__()
        self.arm = ArmTokens(cfg)
        self.begin = nn.Parameter(0.02 * torch.randn(1, 1, cfg.width))
        self.features = nn.Linear(cfg.width, cfg.width)  # the paper's 1x1 convolution on the hand features
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.body_layers))
        self.out = nn.Sequential(nn.LayerNorm(cfg.width), nn.Linear(cfg.width, cfg.ffn), nn.GELU(),
                                 nn.Linear(cfg.ffn, 3 * len(OFFSET_JOINTS)))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, memory: torch.Tensor, arm: torch.Tensor) -> torch.Tensor:
        """(N, 22, W) expert features, (N, 4, 3, 3) arm -> (N, 2, 3, 3) offsets (elbow, wrist) to right-multiply."""
        mcp = self.features(memory[:, list(MCP)])
        z = torch.cat([self.begin.expand(memory.shape[0], 1, -1), self.arm(arm)], dim=1)
        for block in self.blocks:
            q = block.query(z)
            z = q + block.cross(q, mcp)
            z = z + block.ffn(z)
        return axis_angle_to_matrix(self.out(z[:, 0]).reshape(-1, len(OFFSET_JOINTS), 3))


class NaiveHandConcat(nn.Module):
    """Baseline: body tokens concatenated to the hand tokens, decoder and heads fine-tuned (a copy)."""

    def __init__(self, cfg: AdapterConfig, expert: HandExpert):
        super().__init__()
        self.arm = ArmTokens(cfg)
        self.query = copy.deepcopy(expert.query)
        self.blocks = copy.deepcopy(expert.blocks)
        self.out_norm = copy.deepcopy(expert.out_norm)
        self.rotation_head = copy.deepcopy(expert.rotation_head)
        self.angle_head = copy.deepcopy(expert.angle_head)

    def forward(self, expert: HandExpert, inputs: HandInputs, memory: torch.Tensor | None = None) -> HandEstimate:
        memory = expert.encode(inputs) if memory is None else memory
        memory = torch.cat([memory, self.arm(inputs.arm)], dim=1)
        z = self.query.expand(memory.shape[0], -1, -1)
        for block in self.blocks:
            q = block.query(z)
            z = q + block.cross(q, memory)
            z = z + block.ffn(z)
        z = self.out_norm(z).flatten(1)
        return HandEstimate(sixd_to_matrix(self.rotation_head(z)), squash(self.angle_head(z), expert.lower, expert.upper))


class NaiveBodyConcat(nn.Module):
    """Baseline: an MLP on [arm 6D rotations, MCP features] -> the same offsets as the body path."""

    def __init__(self, cfg: AdapterConfig):
        super().__init__()
        inputs = 6 * len(ARM_JOINTS) + len(MCP) * cfg.width
        self.net = nn.Sequential(nn.Linear(inputs, 2 * cfg.ffn), nn.GELU(), nn.Linear(2 * cfg.ffn, 3 * len(OFFSET_JOINTS)))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, memory: torch.Tensor, arm: torch.Tensor) -> torch.Tensor:
        x = torch.cat([matrix_to_sixd(arm).flatten(1), memory[:, list(MCP)].flatten(1)], dim=1)
        return axis_angle_to_matrix(self.net(x).reshape(-1, len(OFFSET_JOINTS), 3))


class HMRAdapter(nn.Module):
    """The frozen hand expert, both adapters, and the two naive baselines (for the ablation)."""

    def __init__(self, cfg: AdapterConfig = AdapterConfig(), lower: torch.Tensor | None = None, upper: torch.Tensor | None = None):
        super().__init__()
        self.config = cfg
        self.expert = HandExpert(cfg, lower, upper)
        self.reset_adapters()

    def reset_adapters(self) -> None:
        """(Re)build the adapters and baselines from the current expert (stage 2 starts here)."""
        cfg = self.config
        self.hand_adapter = HandPathAdapter(cfg, self.expert)
        self.body_adapter = BodyPathAdapter(cfg)
        self.naive_hand = NaiveHandConcat(cfg, self.expert)
        self.naive_body = NaiveBodyConcat(cfg)

    def hand(self, inputs: HandInputs, memory: torch.Tensor | None = None) -> HandEstimate:
        """The hand path: the expert with body guidance."""
        return self.hand_adapter(self.expert, inputs, memory)

    def body_offset(self, inputs: HandInputs, memory: torch.Tensor | None = None) -> torch.Tensor:
        """The body path: (N, 2, 3, 3) elbow and wrist local rotation offsets of this hand's arm."""
        memory = self.expert.encode(inputs) if memory is None else memory
        return self.body_adapter(memory, inputs.arm)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def save_adapter(model: HMRAdapter, path: str | Path, extra: dict[str, str] | None = None) -> Path:
    """safetensors with the content digest (:mod:`hmrkit.io.integrity`); the config in the metadata."""
    from hmrkit.io.integrity import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": FILE_FORMAT, "config": json.dumps(asdict(model.config)), "angle_names": ",".join(ANGLE_NAMES),
                **(extra or {})}
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=metadata)
    return path


def load_adapter(path: str | Path | None = None) -> tuple[HMRAdapter, dict[str, str]]:
    """The model (eval mode) and the file's metadata; :class:`ModelAssetError` (one line) when the
    file is missing, damaged or not an HMR-Adapter file."""
    path = Path(path) if path is not None else weights_dir() / DEFAULT_WEIGHTS
    state, metadata = read_weights(path, "HMR-Adapter", FILE_FORMAT, TRAIN_COMMAND)
    if metadata.get("angle_names") != ",".join(ANGLE_NAMES):
        raise ModelAssetError(f"{path} was trained for other hand angle names than this hmrkit's")
    try:
        model = HMRAdapter(AdapterConfig.from_json(metadata["config"]))
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelAssetError(f"HMR-Adapter weights malformed: {path}: {str(error).splitlines()[0]}") from None
    return model.eval(), metadata
