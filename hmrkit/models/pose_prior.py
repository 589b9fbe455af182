"""A learned body-pose prior: a small VAE over the 21 non-root core joint rotations (HKMR's prior).

HKMR (after VPoser) trains a VAE on real poses and, at regression time, keeps only the
encoder: the KL divergence between the encoder's posterior for a predicted pose and the unit
Gaussian is the prior loss (``kl``). Poses go in and come out as 6D rotations (first two
columns of each matrix); the decoder's output is orthonormalized back to matrices.

The weights hmrkit ships (``hmrkit/weights/pose_vae.safetensors``, see its model card) were
trained on CMU mocap retargeted to hmrkit's skeleton (:mod:`hmrkit.train.pose_prior`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hmrkit.errors import ModelAssetError
from hmrkit.weights_file import read_weights
from hmrkit.geometry.rotations import matrix_to_sixd, sixd_to_matrix
from hmrkit.paths import weights_dir

NUM_POSE_JOINTS = 21  # core joints 1..21: everything but the global orientation
DEFAULT_WEIGHTS = "pose_vae.safetensors"


@dataclass(frozen=True)
class PosePriorConfig:
    num_joints: int = NUM_POSE_JOINTS
    latent_dim: int = 32
    hidden: int = 512
    # Training weighted reconstruction (squared Frobenius error summed over joints) against
    # ``beta`` * KL; ``nll_proxy`` divides by the same weight so it is the training objective.
    beta: float = 0.01


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.LeakyReLU(0.2),
        nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
        nn.Linear(hidden, outputs),
    )  # fmt: skip


class PosePrior(nn.Module):
    """VAE over ``(B, 21, 3, 3)`` local rotations of core joints 1..21 (pass ``rotations[:, 1:22]``)."""

    def __init__(self, config: PosePriorConfig = PosePriorConfig()):
        super().__init__()
        self.config = config
        size = config.num_joints * 6
        self.encoder = _mlp(size, config.hidden, 2 * config.latent_dim)
        self.decoder = _mlp(config.latent_dim, config.hidden, size)
        # The encoder sees 6D inputs standardized by the training data's statistics: a pose far
        # from the data then gives large inputs, hence a large posterior mean and a high KL.
        # (Without this, an MLP encoder maps random rotations near the origin: a *low* KL.)
        self.register_buffer("input_mean", torch.zeros(size))
        self.register_buffer("input_std", torch.ones(size))

    @torch.no_grad()
    def set_input_statistics(self, rotations: torch.Tensor, min_std: float = 0.1) -> None:
        """Standardize encoder inputs by ``rotations``' 6D mean and std (floored at ``min_std``:
        joints that never move in the data, such as CMU's collars, still get a finite scale)."""
        self._check(rotations)
        x = matrix_to_sixd(rotations).reshape(rotations.shape[0], -1)
        self.input_mean.copy_(x.mean(dim=0))
        self.input_std.copy_(x.std(dim=0).clamp(min=min_std))

    def _check(self, rotations: torch.Tensor) -> None:
        if rotations.ndim != 4 or rotations.shape[1:] != (self.config.num_joints, 3, 3):
            raise ValueError(
                f"pose prior takes rotations of shape (B, {self.config.num_joints}, 3, 3) "
                f"(core joints 1..{self.config.num_joints}, no global orientation), got {tuple(rotations.shape)}"
            )

    def _encoder_input(self, rotations: torch.Tensor) -> torch.Tensor:
        """(B, 21, 3, 3) -> (B, 126) standardized 6D: what the encoder reads."""
        self._check(rotations)
        return (matrix_to_sixd(rotations).reshape(rotations.shape[0], -1) - self.input_mean) / self.input_std

    def encode(self, rotations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``(mu, logvar)``, each ``(B, latent_dim)``."""
        h = self.encoder(self._encoder_input(rotations))
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar.clamp(-20.0, 10.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, latent_dim)`` -> ``(B, 21, 3, 3)`` rotations."""
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"latent codes must have shape (B, {self.config.latent_dim}), got {tuple(z.shape)}")
        return sixd_to_matrix(self.decoder(z).reshape(z.shape[0], self.config.num_joints, 6))

    def kl(self, rotations: torch.Tensor) -> torch.Tensor:
        """``(B,)`` KL(q(z | pose) || N(0, I)): HKMR's prior loss; low for plausible poses."""
        return kl_to_unit_gaussian(*self.encode(rotations))

    def reconstruction(self, rotations: torch.Tensor) -> torch.Tensor:
        """``decode(mu)``: the nearest pose the prior can express, ``(B, 21, 3, 3)``."""
        return self.decode(self.encode(rotations)[0])

    def nll_proxy(self, rotations: torch.Tensor) -> torch.Tensor:
        """``(B,)`` negative ELBO up to constants, with the posterior mean as the sample:
        squared reconstruction error / beta + KL."""
        mu, logvar = self.encode(rotations)
        error = reconstruction_error(self.decode(mu), rotations)
        return error / self.config.beta + kl_to_unit_gaussian(mu, logvar)

    def sample(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(count, 21, 3, 3)`` poses decoded from the unit Gaussian."""
        ref = next(self.parameters())
        z = torch.randn(count, self.config.latent_dim, generator=generator, dtype=ref.dtype).to(ref.device)
        return self.decode(z)


def kl_to_unit_gaussian(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``(B,)`` KL(N(mu, exp(logvar)) || N(0, I)), summed over latent dimensions."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def reconstruction_error(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(B,)`` squared Frobenius distance between rotation matrices, summed over joints."""
    return (predicted - target).square().sum(dim=(-3, -2, -1))


# -- weights ------------------------------------------------------------------------------------


def save_pose_prior(model: PosePrior, path: str | Path, extra: dict[str, str] | None = None) -> Path:
    """Write ``model`` as safetensors with its content digest; its config travels in the file's metadata."""
    from hmrkit.io.integrity import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": "hmrkit-pose-prior-v1", "config": json.dumps(asdict(model.config))}
    metadata.update(extra or {})
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=metadata)
    return path


def load_pose_prior(path: str | Path | None = None) -> PosePrior:
    """The shipped prior (or the safetensors file at ``path``), in eval mode.

    Raises :class:`hmrkit.errors.ModelAssetError` when the file is missing or is not a pose
    prior written by :func:`save_pose_prior`.
    """
    path = Path(path) if path is not None else weights_dir() / DEFAULT_WEIGHTS
    state, metadata = read_weights(path, "pose prior", "hmrkit-pose-prior-v1", "python -m hmrkit.train.pose_prior")
    try:
        config = PosePriorConfig(**json.loads(metadata["config"]))
        model = PosePrior(config)
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelAssetError(f"pose prior weights malformed: {path}: {str(error).splitlines()[0]}") from None
    return model.eval()


class EncoderMean:
    """The encoder's posterior mean as a numpy (float64) function with its closed-form Jacobian:
    what the Gauss-Newton body fit evaluates on every step (a handful of array calls; the
    encoder is three linear layers with leaky ReLUs)."""

    def __init__(self, prior: PosePrior):
        first, activation, second, _, third = prior.encoder
        latent = prior.config.latent_dim

        def array(t: torch.Tensor) -> np.ndarray:
            return t.detach().double().cpu().numpy()

        self.layers = [(array(first.weight), array(first.bias)), (array(second.weight), array(second.bias)),
                       (array(third.weight[:latent]), array(third.bias[:latent]))]
        self.negative_slope = activation.negative_slope
        self.input_mean, self.input_std = array(prior.input_mean), array(prior.input_std)

    def __call__(self, rotations: np.ndarray, with_jacobian: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, 21, 3, 3) rotations -> posterior mean (B, L) and, ``with_jacobian``, its Jacobian
        with respect to the 6D inputs (B, L, 21 * 6), in the order of :func:`matrix_to_sixd`."""
        x = (rotations[..., :2].reshape(rotations.shape[0], -1) - self.input_mean) / self.input_std
        (w1, b1), (w2, b2), (w3, b3) = self.layers
        h1 = x @ w1.T + b1
        h2 = self._leaky(h1) @ w2.T + b2
        mean = self._leaky(h2) @ w3.T + b3
        if not with_jacobian:
            return mean, None
        jacobian = (w3[None] * self._slope(h2)[:, None]) @ w2
        return mean, ((jacobian * self._slope(h1)[:, None]) @ w1) / self.input_std

    def _slope(self, h: np.ndarray) -> np.ndarray:
        return np.where(h > 0, 1.0, self.negative_slope)

    def _leaky(self, h: np.ndarray) -> np.ndarray:
        return h * self._slope(h)
