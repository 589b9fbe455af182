"""HKMR: the hierarchical kinematic regressor (Georgakis et al., ECCV 2020) on hmrkit's core skeleton.

The 22 core joints form six kinematic chains (:data:`hmrkit.body.anny_rig.KINEMATIC_CHAINS`):
the root chain (pelvis..spine3) and five children (head, two arms, two legs). Starting from
the mean pose and shape, each *outer* iteration t:

1. runs the root chain's *inner* iterations, then those of the five child chains, which also
   see the root chain's new pose (the hierarchy);
2. re-estimates the shape from the features, the previous shape and the new pose;
3. estimates a weak-perspective camera (s, tx, ty) from the features, pose and shape.

One inner iteration of a chain c is one *pass*: the embedding ``psi = E_c(Phi, beta, theta_c
[, theta_root])`` is computed from the chain's current pose, then each joint's residual is
predicted by its own fully connected layer from ``psi`` and the residuals of the joints already
predicted in this pass (eq. 1), and the residuals are added. Passes alternate *forward*
(root to tip, f_i) and *backward* (tip to root, b_i, eq. 2), so the default 4 inner iterations
are two forward-backward cycles. Poses are 6D rotations (first two matrix columns), residuals
are added in 6D and orthonormalized on output.

Ablations (paper, Table 2): ``joint_hierarchy=False`` lets each joint see only the residual of
the joint just before it in the pass; ``backward_pass=False`` runs forward passes only.

Chains run batched: the five child chains (the head padded to four joints) keep stacked
per-chain weights and go through their joints together, so a pass costs one small batched
matrix product per joint position, not per joint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from hmrkit.body.anny_rig import KINEMATIC_CHAINS, NUM_BODY_CORE
from hmrkit.data.retarget import CORE_NAMES
from hmrkit.geometry.rotations import matrix_to_sixd, sixd_to_matrix

NUM_SHAPE = 6
CAMERA_DIM = 3
SIXD = 6
# the root chain runs first; the five child chains then run together (the head padded to 4 joints)
CHAIN_GROUPS: tuple[tuple[str, ...], ...] = (("root",), ("head", "left_arm", "right_arm", "left_leg", "right_leg"))


def chain_indices(names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, K) core-joint indices of the named chains, padded to the longest chain by repeating
    the last joint, and the (C, K) mask of real (not padded) entries."""
    chains = [[CORE_NAMES.index(j) for j in KINEMATIC_CHAINS[c]] for c in names]
    k = max(len(c) for c in chains)
    index = torch.tensor([c + [c[-1]] * (k - len(c)) for c in chains])
    valid = torch.tensor([[i < len(c) for i in range(k)] for c in chains])
    return index, valid


def initial_sixd(batch: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, 22, 6) the mean pose HKMR starts from: Anny's rest pose, upright, facing the camera
    (root = canonical-to-OpenCV turn, diag(1, -1, -1))."""
    rotations = torch.eye(3, dtype=dtype).expand(batch, NUM_BODY_CORE, 3, 3).clone()
    rotations[:, 0] = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=dtype))
    return matrix_to_sixd(rotations)


def camera_from_raw(raw: torch.Tensor) -> torch.Tensor:
    """(B, 3) network output -> weak-perspective [s, tx, ty]; ``s = exp(raw_0)`` stays positive."""
    return torch.cat([raw[:, :1].exp(), raw[:, 1:]], dim=1)


@dataclass
class RegressorOutput:
    """Per outer iteration (the losses sum over them); the last entry is the estimate."""

    rotations: list[torch.Tensor] = field(default_factory=list)  # (B, 22, 3, 3) local; joint 0 in the camera frame
    shape: list[torch.Tensor] = field(default_factory=list)  # (B, 6) phenotypes in (0, 1)
    camera: list[torch.Tensor] = field(default_factory=list)  # (B, 3) weak perspective [s, tx, ty] of the person box

    def append(self, sixd: torch.Tensor, shape_logit: torch.Tensor, camera: torch.Tensor) -> None:
        self.rotations.append(sixd_to_matrix(sixd))
        self.shape.append(torch.sigmoid(shape_logit))
        self.camera.append(camera)


@dataclass(frozen=True)
class HkmrConfig:
    feature_dim: int = 512  # Phi, the encoder's output
    embed_dim: int = 128  # psi, the chain embedding (the paper's d)
    embed_hidden: int = 256
    head_hidden: int = 256  # shape and camera networks
    inner_iterations: int = 4  # passes per chain per outer step (alternating forward / backward)
    outer_iterations: int = 3
    backward_pass: bool = True  # False: the "forward only" ablation
    joint_hierarchy: bool = True  # False: the "no joint hierarchy" ablation

    def __post_init__(self) -> None:
        if self.inner_iterations < 1 or self.outer_iterations < 1:
            raise ValueError("HKMR needs at least one inner and one outer iteration")


def _stacked(*shape: int, gain: float = 1.0) -> nn.Parameter:
    """Per-chain weights (C, fan_in, fan_out), Xavier-uniform with ``gain``."""
    bound = gain * math.sqrt(6.0 / (shape[-2] + shape[-1]))
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


class ChainGroup(nn.Module):
    """C kinematic chains (padded to K joints): their embeddings E_c and joint layers f_i, b_i.

    Tensors inside run chain-major, (C, B, ...), so every layer is one batched matrix product.
    A padded joint's residual is always zero, so it never changes a real joint's input: the
    head's backward pass starts at its real last joint with ``[psi, 0]``, as the paper's chains.
    """

    def __init__(self, names: tuple[str, ...], config: HkmrConfig, with_root: bool):
        super().__init__()
        self.names = names
        joints, valid = chain_indices(names)
        self.register_buffer("joints", joints, persistent=False)
        self.register_buffer("valid", valid.float()[..., None], persistent=False)  # (C, K, 1)
        c, k = joints.shape
        self.hierarchy = config.joint_hierarchy
        self.with_root = with_root
        state = NUM_SHAPE + k * SIXD + (len(KINEMATIC_CHAINS["root"]) * SIXD if with_root else 0)
        d, h = config.embed_dim, config.embed_hidden
        # E_c: Phi's part of the first layer is applied once per image (Phi never changes)
        self.embed_phi = _stacked(c, config.feature_dim, h)
        self.embed_state = _stacked(c, state, h)
        self.embed_bias = nn.Parameter(torch.zeros(c, 1, h))
        self.embed_out = _stacked(c, h, d)
        self.embed_out_bias = nn.Parameter(torch.zeros(c, 1, d))
        # f_i and b_i, each one linear layer on [psi, earlier residuals of the pass]; split into
        # psi's part (all joints at once) and, per pass step s, the part reading the residuals
        # of the s joints before it (or of the one joint before it, without the hierarchy)
        self.passes = nn.ModuleDict()
        for direction in ("fwd", "bwd"):
            layers = nn.ParameterList([_stacked(c, d, k * SIXD, gain=0.01), nn.Parameter(torch.zeros(c, 1, k * SIXD))])
            layers.extend(_stacked(c, SIXD * (s if self.hierarchy else 1), SIXD, gain=0.01) for s in range(1, k))
            self.passes[direction] = layers

    def phi_part(self, features: torch.Tensor) -> torch.Tensor:
        """(C, B, H) the features' contribution to E_c's first layer."""
        c = self.joints.shape[0]
        return torch.baddbmm(self.embed_bias, features.expand(c, -1, -1), self.embed_phi)

    def embed(self, phi_part: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """psi (C, B, d) from the per-image part and the chain state (C, B, S)."""
        h = nn.functional.leaky_relu(phi_part + torch.bmm(state, self.embed_state), 0.1)
        return nn.functional.leaky_relu(torch.baddbmm(self.embed_out_bias, h, self.embed_out), 0.1)

    def run_pass(self, psi: torch.Tensor, forward: bool) -> torch.Tensor:
        """(C, B, K, 6) residuals, predicted joint by joint in the pass's order (eq. 1 or 2)."""
        c, b, _ = psi.shape
        k = self.joints.shape[1]
        layers = self.passes["fwd" if forward else "bwd"]
        from_psi = torch.baddbmm(layers[1], psi, layers[0]).reshape(c, b, k, SIXD)
        order = list(range(k)) if forward else list(reversed(range(k)))
        done: list[torch.Tensor] = []
        for step, i in enumerate(order):
            delta = from_psi[:, :, i]
            if step:
                earlier = torch.cat(done, dim=-1) if self.hierarchy else done[-1]
                delta = delta + torch.bmm(earlier, layers[1 + step])
            done.append(delta * self.valid[:, i, None])
        if not forward:
            done.reverse()
        return torch.stack(done, dim=2)

    def refine(self, phi_part: torch.Tensor, theta: torch.Tensor, shape_logit: torch.Tensor, root: torch.Tensor | None,
               config: HkmrConfig) -> torch.Tensor:
        """The chains' inner iterations on (C, B, K, 6) poses; returns the refined poses."""
        c, b, k, _ = theta.shape
        context = [shape_logit.expand(c, -1, -1)]
        if self.with_root:
            context.append(root.reshape(1, b, -1).expand(c, -1, -1))
        for p in range(config.inner_iterations):
            forward = p % 2 == 0 or not config.backward_pass
            state = torch.cat(context + [(theta * self.valid[:, None]).reshape(c, b, k * SIXD)], dim=-1)
            theta = theta + self.run_pass(self.embed(phi_part, state), forward)
        return theta

    def gather(self, theta: torch.Tensor) -> torch.Tensor:
        """(B, 22, 6) -> (C, B, K, 6) this group's joints."""
        return theta[:, self.joints].transpose(0, 1)

    def scatter(self, theta: torch.Tensor, chains: torch.Tensor) -> torch.Tensor:
        """``theta`` (B, 22, 6) with this group's real joints replaced by ``chains`` (C, B, K, 6)."""
        real = self.valid[..., 0].bool()
        out = theta.clone()
        out[:, self.joints[real]] = chains.transpose(0, 1)[:, real]
        return out


def _mlp(inputs: int, hidden: int, outputs: int, gain: float = 0.01) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(inputs, hidden), nn.LeakyReLU(0.1), nn.Linear(hidden, outputs))
    nn.init.xavier_uniform_(net[-1].weight, gain=gain)
    nn.init.zeros_(net[-1].bias)
    return net


class HkmrHead(nn.Module):
    """The regressor: features Phi (B, F) -> :class:`RegressorOutput`."""

    def __init__(self, config: HkmrConfig = HkmrConfig()):
        super().__init__()
        self.config = config
        self.groups = nn.ModuleList(ChainGroup(names, config, with_root=names != ("root",)) for names in CHAIN_GROUPS)
        pose = NUM_BODY_CORE * SIXD
        self.shape_net = _mlp(config.feature_dim + NUM_SHAPE + pose, config.head_hidden, NUM_SHAPE)
        self.camera_net = _mlp(config.feature_dim + NUM_SHAPE + pose, config.head_hidden, CAMERA_DIM)

    def forward(self, features: torch.Tensor) -> RegressorOutput:
        cfg = self.config
        b = features.shape[0]
        theta = initial_sixd(b, features.dtype).to(features.device)
        shape_logit = features.new_zeros(b, NUM_SHAPE)
        root_group, child_group = self.groups
        phi_root, phi_children = root_group.phi_part(features), child_group.phi_part(features)
        out = RegressorOutput()
        for _ in range(cfg.outer_iterations):
            root = root_group.refine(phi_root, root_group.gather(theta), shape_logit, None, cfg)  # (1, B, 4, 6)
            children = child_group.refine(phi_children, child_group.gather(theta), shape_logit, root[0], cfg)
            theta = child_group.scatter(root_group.scatter(theta, root), children)
            shape_logit = shape_logit + self.shape_net(torch.cat([features, shape_logit, theta.flatten(1)], dim=1))
            camera = camera_from_raw(self.camera_net(torch.cat([features, shape_logit, theta.flatten(1)], dim=1)))
            out.append(theta, shape_logit, camera)
        return out


class BodyRegressor(nn.Module):
    """An encoder (landmarks or image crops -> Phi) followed by a regressor head (HKMR or flat)."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, inputs) -> RegressorOutput:
        return self.head(self.encoder(inputs))
