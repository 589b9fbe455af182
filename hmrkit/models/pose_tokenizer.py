"""AJAHR's pose tokenizer (Sec. 3.3.2, Supp. H): a VQ-VAE over body poses with two codebooks.

A pose (the 21 non-root core joint rotations, as 6D) is encoded by a 1D-convolutional encoder
over the joint axis (four convolutions and one ResNet block, as TokenHMR's and the paper's) into
``tokens`` latent vectors; each is replaced by its nearest entry of a learned codebook (the pose
*tokens*); a mirror-image decoder turns the quantized tokens back into 21 rotations. The
codebook learns by exponential moving averages with dead-code resets (the paper's choice, after
T2M-GPT), the encoder by a commitment loss; the reconstruction loss mixes 6D rotation error and
3D joint error (:mod:`hmrkit.train.tokenizer`).

AJAHR keeps **two** tokenizers, each with its own encoder, codebook and decoder:

- ``amputated`` (the paper's C_amp) trained on intact poses and on poses with collapsed limbs,
  half and half: it reconstructs both;
- ``intact`` (C_non_amp) trained on intact poses only: all its capacity is for them.

Each person's limb status (:class:`hmrkit.body.limbs.LimbStatus`, BPAC-Net's decision or the
user's statement) picks one: ``amputated`` when any limb is absent (the paper's eq. 3).

**How an absent limb enters the tokenizer.** A collapsed limb's rotations have no effect on
the body (its subtree sits on the stump whatever they are), so they are no evidence: the joint
whose subtree collapses and every joint below it are *free*. Their rotations are replaced by
the identity and a seventh input channel, the free-joint mask, says which they are; the
reconstruction loss ignores them. (The paper keeps the original rotations of amputated joints
and masks only after decoding, which lets whatever a detector hallucinated for the missing limb
steer the code; the mask channel is our variant of that, stated here because it is a choice.)
On the way out, free joints keep the rotations they came in with: the body layer collapses them.

Joints are fed in kinematic-chain order (legs, spine and head, arms: :data:`TOKEN_ORDER`) so
that neighbours along the convolved axis are mostly neighbours in the body; a linear map along
that axis turns 21 joint positions into ``tokens`` token positions and back.

    tokenizer = load_pose_tokenizer()                                  # hmrkit/weights/pose_tokenizer.safetensors
    rotations = tokenizer.project(rotations, [status, ...])            # (B, J >= 22, 3, 3) in and out
    codes = tokenizer.tokens(rotations, [status, ...])                 # (B, tokens) codebook indices
    energy = tokenizer.energy(rotations, [status, ...])                # (B,) distance to the projection
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hmrkit.body.amputation import limb_loss
from hmrkit.body.anny_rig import BODY_JOINTS, KINEMATIC_CHAINS, NUM_BODY_CORE, skeleton_of
from hmrkit.body.limbs import LIMBS, LimbStatus, levels
from hmrkit.errors import ModelAssetError
from hmrkit.geometry.rotations import matrix_to_sixd, sixd_to_matrix
from hmrkit.paths import weights_dir
from hmrkit.weights_file import read_weights

DEFAULT_WEIGHTS = "pose_tokenizer.safetensors"
FORMAT = "hmrkit-pose-tokenizer-v1"
TRAIN_COMMAND = "hmrkit train tokenizer"
NUM_TOKEN_JOINTS = NUM_BODY_CORE - 1  # joints 1..21: the global orientation is not tokenized
SIXD = 6

_SKELETON = skeleton_of(BODY_JOINTS)
_CORE = _SKELETON.names[:NUM_BODY_CORE]
# core joints 1..21 along the chains: left leg up, right leg down, spine and head, left arm, right arm
_CHAIN_SEQUENCE = (tuple(reversed(KINEMATIC_CHAINS["left_leg"])) + KINEMATIC_CHAINS["right_leg"] + KINEMATIC_CHAINS["root"][1:]
                   + KINEMATIC_CHAINS["head"] + KINEMATIC_CHAINS["left_arm"] + KINEMATIC_CHAINS["right_arm"])
TOKEN_ORDER: tuple[int, ...] = tuple(_CORE.index(name) - 1 for name in _CHAIN_SEQUENCE)  # into joints 1..21


def _free_joint_table() -> torch.Tensor:
    """(4 limbs, 4 classes, 21) bool: the body joints (1..21) a limb class makes free, i.e. the
    collapse joint and everything below it; class 0 (present) frees nothing."""
    table = torch.zeros(len(LIMBS), 4, NUM_TOKEN_JOINTS, dtype=torch.bool)
    for i, limb in enumerate(LIMBS):
        for c, level in enumerate(levels(limb), start=1):
            root = _SKELETON.index(limb_loss(f"{limb.split('_')[0]}_{level}").joint)
            free = [j - 1 for j in _SKELETON.subtree(root) if 0 < j < NUM_BODY_CORE]
            table[i, c, free] = True
    return table


FREE_JOINTS = _free_joint_table()


def free_joints(limbs: Sequence[LimbStatus] | None, batch: int) -> torch.Tensor:
    """(B, 21) bool over joints 1..21: True where a person's absent limbs leave the rotation free.
    ``limbs`` None: everyone intact."""
    if limbs is None:
        return torch.zeros(batch, NUM_TOKEN_JOINTS, dtype=torch.bool)
    if len(limbs) != batch:
        raise ValueError(f"{len(limbs)} limb statuses for {batch} people")
    classes = torch.from_numpy(np.stack([s.classes for s in limbs])).long()
    return free_joints_of_classes(classes)


def free_joints_of_classes(classes: torch.Tensor) -> torch.Tensor:
    """(B, 4) limb classes (0 present, 1-3 levels, :mod:`hmrkit.body.limbs`) -> (B, 21) free joints."""
    return FREE_JOINTS[torch.arange(len(LIMBS)), classes].any(dim=1)


@dataclass(frozen=True)
class TokenizerConfig:
    width: int = 64  # convolution channels
    code_dim: int = 32  # d, one token's size
    codebook_size: int = 512  # M, codes per codebook
    tokens: int = 16  # S, tokens per pose
    decay: float = 0.99  # EMA of the codebook
    reset_below: float = 0.5  # a code whose EMA use per batch falls below this is reset to an encoder output

    def __post_init__(self) -> None:
        if min(self.width, self.code_dim, self.codebook_size, self.tokens) < 1:
            raise ValueError(f"tokenizer sizes must be positive: {self}")


class ResBlock(nn.Module):
    """A 3-wide and a 1-wide convolution with a skip (the ResNet block of TokenHMR's tokenizer)."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv1d(width, width, 3, padding=1), nn.ReLU(), nn.Conv1d(width, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _convs(inputs: int, width: int, outputs: int) -> list[nn.Module]:
    """Four 3-wide convolutions along the joint axis, ReLU between."""
    return [nn.Conv1d(inputs, width, 3, padding=1), nn.ReLU(), nn.Conv1d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv1d(width, width, 3, padding=1), nn.ReLU(), nn.Conv1d(width, outputs, 3, padding=1)]


class EmaCodebook(nn.Module):
    """M codes of size d, learned by exponential moving averages of the encoder outputs assigned
    to them; codes nobody uses are reset to random encoder outputs (training only)."""

    def __init__(self, size: int, dim: int, decay: float, reset_below: float):
        super().__init__()
        self.decay, self.reset_below = decay, reset_below
        self.register_buffer("codes", torch.randn(size, dim) * 0.1)
        self.register_buffer("usage", torch.ones(size))  # EMA of assignments per batch
        self.register_buffer("code_sum", self.codes.clone())  # EMA of the sum of assigned outputs
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N,) index of each vector's nearest code (Euclidean, the paper's eq. 4)."""
        distance = z.square().sum(1, keepdim=True) - 2 * z @ self.codes.T + self.codes.square().sum(1)[None]
        return distance.argmin(dim=1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, d) latents -> (quantized with a straight-through gradient, (B, S) indices)."""
        flat = z.reshape(-1, z.shape[-1])
        if self.training:
            self._update(flat.detach())
        index = self.nearest(flat)
        quantized = self.codes[index].reshape(z.shape)
        return z + (quantized - z).detach(), index.reshape(z.shape[:-1])

    @torch.no_grad()
    def _update(self, flat: torch.Tensor) -> None:
        if not bool(self.initialized):  # start from the data: codes = random encoder outputs
            self.codes.copy_(_pick(flat, self.codes.shape[0]))
            self.code_sum.copy_(self.codes)
            self.usage.fill_(1.0)
            self.initialized.fill_(True)
        onehot = F.one_hot(self.nearest(flat), self.codes.shape[0]).to(flat.dtype)
        self.usage.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.code_sum.mul_(self.decay).add_(onehot.T @ flat, alpha=1 - self.decay)
        total = self.usage.sum()
        smoothed = (self.usage + 1e-5) / (total + self.codes.shape[0] * 1e-5) * total  # Laplace smoothing
        self.codes.copy_(self.code_sum / smoothed[:, None])
        dead = self.usage < self.reset_below
        if dead.any():
            fresh = _pick(flat, int(dead.sum()))
            self.codes[dead] = fresh
            self.code_sum[dead] = fresh
            self.usage[dead] = 1.0


def _pick(flat: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` rows of ``flat`` drawn at random (with replacement when there are too few)."""
    index = torch.randint(flat.shape[0], (count,), device=flat.device)
    return flat[index]


@dataclass
class TokenizerOutput:
    rotations: torch.Tensor  # (B, 21, 3, 3) decoded joints 1..21 (free joints: whatever came out)
    sixd: torch.Tensor  # (B, 21, 6) the decoder's raw 6D
    latents: torch.Tensor  # (B, S, d) the encoder's, before quantization
    indices: torch.Tensor  # (B, S) the chosen codes: the pose tokens
    commitment: torch.Tensor  # () mean squared distance between latents and their codes


class PoseVQVAE(nn.Module):
    """One tokenizer: encoder, codebook, decoder over joints 1..21 (6D + free-joint mask in)."""

    def __init__(self, config: TokenizerConfig = TokenizerConfig()):
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("order", torch.tensor(TOKEN_ORDER), persistent=False)
        self.register_buffer("unorder", torch.argsort(torch.tensor(TOKEN_ORDER)), persistent=False)
        self.register_buffer("rest_sixd", matrix_to_sixd(torch.eye(3)), persistent=False)
        # the Linear layers act along the joint axis: 21 joint positions <-> S token positions
        self.encoder = nn.Sequential(*_convs(SIXD + 1, c.width, c.width), ResBlock(c.width), nn.ReLU(),
                                     nn.Linear(NUM_TOKEN_JOINTS, c.tokens), nn.Conv1d(c.width, c.code_dim, 1))
        self.codebook = EmaCodebook(c.codebook_size, c.code_dim, c.decay, c.reset_below)
        self.decoder = nn.Sequential(nn.Conv1d(c.code_dim, c.width, 1), ResBlock(c.width), nn.ReLU(),
                                     nn.Linear(c.tokens, NUM_TOKEN_JOINTS), *_convs(c.width, c.width, SIXD))

    def encode(self, rotations: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
        """(B, 21, 3, 3) joints 1..21 and their (B, 21) free mask -> (B, S, d) latents."""
        _check_body(rotations)
        eye = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
        rotations = torch.where(free[..., None, None], eye, rotations)
        x = torch.cat([matrix_to_sixd(rotations), free[..., None].to(rotations.dtype)], dim=-1)
        return self.encoder(x[:, self.order].transpose(1, 2)).transpose(1, 2)

    def decode(self, quantized: torch.Tensor) -> torch.Tensor:
        """(B, S, d) -> (B, 21, 6) raw 6D of joints 1..21: a residual on the rest pose (identity),
        which the decoder then only has to bend (measured: far faster to train than raw 6D)."""
        rest = self.rest_sixd.to(quantized.dtype)
        return rest + self.decoder(quantized.transpose(1, 2)).transpose(1, 2)[:, self.unorder]

    def forward(self, rotations: torch.Tensor, free: torch.Tensor) -> TokenizerOutput:
        latents = self.encode(rotations, free)
        quantized, indices = self.codebook(latents)
        sixd = self.decode(quantized)
        commitment = (latents - quantized.detach()).square().mean()
        return TokenizerOutput(sixd_to_matrix(sixd), sixd, latents, indices, commitment)

    def codes_of(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, S) token indices -> (B, S, d) their codes."""
        return self.codebook.codes[indices]


def _check_body(rotations: torch.Tensor) -> None:
    if rotations.ndim != 4 or rotations.shape[1:] != (NUM_TOKEN_JOINTS, 3, 3):
        raise ValueError(f"the tokenizer takes joints 1..21 as (B, {NUM_TOKEN_JOINTS}, 3, 3), got {tuple(rotations.shape)}")


class PoseTokenizer(nn.Module):
    """AJAHR's pair of tokenizers, switched per person by its limb status (eq. 3)."""

    def __init__(self, config: TokenizerConfig = TokenizerConfig()):
        super().__init__()
        self.config = config
        self.amputated = PoseVQVAE(config)  # C_amp: intact and amputated poses
        self.intact = PoseVQVAE(config)  # C_non_amp: intact poses only

    @staticmethod
    def _body(rotations: torch.Tensor) -> torch.Tensor:
        if rotations.ndim != 4 or rotations.shape[1] < NUM_BODY_CORE or rotations.shape[2:] != (3, 3):
            raise ValueError(f"rotations must have shape (B, J >= {NUM_BODY_CORE}, 3, 3) (joint 0: global orientation), "
                             f"got {tuple(rotations.shape)}")
        return rotations[:, 1:NUM_BODY_CORE]

    def _run(self, rotations: torch.Tensor, limbs: Sequence[LimbStatus] | None) -> tuple[TokenizerOutput, torch.Tensor, torch.Tensor]:
        """Each person through the tokenizer its status selects: (outputs merged, free, use_amputated)."""
        body = self._body(rotations)
        batch = body.shape[0]
        free = free_joints(limbs, batch).to(body.device)
        use = free.any(dim=1)  # a status with an absent limb always frees its collapse joint
        return self.run_selected(body, free, use), free, use

    def run_selected(self, body: torch.Tensor, free: torch.Tensor, use_amputated: torch.Tensor) -> TokenizerOutput:
        """Joints 1..21 through ``amputated`` where ``use_amputated`` (B,) else ``intact``."""
        if bool(use_amputated.all()) or not bool(use_amputated.any()):  # one tokenizer for all: no split
            return (self.amputated if bool(use_amputated.any()) else self.intact)(body, free)
        parts = [(self.amputated, use_amputated), (self.intact, ~use_amputated)]
        outputs = [(model(body[mask], free[mask]), mask) for model, mask in parts if mask.any()]
        if len(outputs) == 1:
            return outputs[0][0]
        merged = {}
        for name in ("rotations", "sixd", "latents", "indices"):
            first = getattr(outputs[0][0], name)
            value = first.new_empty((body.shape[0],) + first.shape[1:])
            for out, mask in outputs:
                value[mask] = getattr(out, name)
            merged[name] = value
        commitment = sum(out.commitment * mask.sum() for out, mask in outputs) / body.shape[0]
        return TokenizerOutput(**merged, commitment=commitment)

    def project(self, rotations: torch.Tensor, limbs: Sequence[LimbStatus] | None = None) -> torch.Tensor:
        """(B, J >= 22, 3, 3) rotations -> the same with joints 1..21 replaced by their tokenized
        version (encode, nearest codes of the selected codebook, decode). The global orientation,
        joints past 21 (fingers) and the free joints of absent limbs are kept as they came."""
        out, free, _ = self._run(rotations, limbs)
        projected = rotations.clone()
        projected[:, 1:NUM_BODY_CORE] = torch.where(free[..., None, None], rotations[:, 1:NUM_BODY_CORE], out.rotations)
        return projected

    def tokens(self, rotations: torch.Tensor, limbs: Sequence[LimbStatus] | None = None) -> torch.Tensor:
        """(B, S) pose tokens: indices into each person's selected codebook."""
        return self._run(rotations, limbs)[0].indices

    def energy(self, rotations: torch.Tensor, limbs: Sequence[LimbStatus] | None = None) -> torch.Tensor:
        """(B,) a token prior: squared Frobenius distance, summed over the non-free joints 1..21,
        between the pose and its projection (held fixed). Zero for a pose the tokens express
        exactly; its gradient pulls a pose toward the nearest tokenized pose."""
        out, free, _ = self._run(rotations, limbs)
        gap = (self._body(rotations) - out.rotations.detach()).square().sum(dim=(-2, -1))
        return (gap * (~free).to(gap.dtype)).sum(dim=1)


# -- weights ------------------------------------------------------------------------------------


def save_pose_tokenizer(model: PoseTokenizer, path: str | Path, extra: dict[str, str] | None = None) -> Path:
    """Write both tokenizers as one safetensors file; the config travels in its metadata, with the
    content digest the loader verifies (hmrkit.io.integrity)."""
    from hmrkit.io.integrity import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items() if v.dtype.is_floating_point}
    metadata = {"format": FORMAT, "config": json.dumps(asdict(model.config)), **(extra or {})}
    save_file(state, str(path), metadata=metadata)
    return path


def load_pose_tokenizer(path: str | Path | None = None) -> PoseTokenizer:
    """The shipped tokenizer pair (or the file at ``path``), in eval mode.

    Raises :class:`hmrkit.errors.ModelAssetError` when the file is missing, unreadable, of
    another format, or its tensors do not fit its config.
    """
    path = Path(path) if path is not None else weights_dir() / DEFAULT_WEIGHTS
    state, metadata = read_weights(path, "pose tokenizer", FORMAT, TRAIN_COMMAND)
    try:
        config = TokenizerConfig(**json.loads(metadata["config"]))
        model = PoseTokenizer(config)
        for name in ("amputated", "intact"):  # the flags are not stored: a shipped codebook is trained
            state[f"{name}.codebook.initialized"] = torch.ones((), dtype=torch.bool)
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, json.JSONDecodeError) as error:
        raise ModelAssetError(f"pose tokenizer weights malformed: {path}: {str(error).splitlines()[0]}") from None
    if not all(torch.isfinite(v).all() for v in state.values() if v.dtype.is_floating_point):
        raise ModelAssetError(f"pose tokenizer weights malformed: {path}: non-finite values")
    return model.eval()
