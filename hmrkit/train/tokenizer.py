"""Train AJAHR's dual pose tokenizer (two VQ-VAEs, :mod:`hmrkit.models.pose_tokenizer`) on the CPU.

    hmrkit train tokenizer                          # the shipped weights (= python -m hmrkit.train.tokenizer)
    hmrkit train tokenizer --steps 1500 --tokens 8 --run-dir /tmp/t8 --out /tmp/t8.safetensors
    hmrkit train tokenizer --resume                 # continue a run from its checkpoint

Data: real motion retargeted to the core skeleton (``--motion``, default CMU ``train`` + HDM05
``train`` + iClone, as HKMR: :mod:`hmrkit.data.training_motion`), every ``stride``-th frame and
its left-right mirror. Every step trains both tokenizers on fresh batches: ``intact`` on intact
poses, ``amputated`` on a half-and-half mix (the paper's Supp. H) of intact poses and poses with
1-3 limbs absent (70 / 20 / 10 %), limbs and levels uniform over the 12 types. An absent limb
frees its collapse joint and the joints below (identity in, mask channel on, no loss).

Loss (the paper's eq. 5 with EMA codebooks): ``mix_weight`` * (squared 6D error of the non-free
joints + squared error of their 3D joint positions in decimetres, forward kinematics on Anny's
neutral rest skeleton, root fixed) + ``commitment`` * squared latent-to-code distance.
Validation: a fixed draw of the held-out CMU ``test`` split, MPJPE (mm) of the non-collapsed
core joints after encode-quantize-decode, intact and amputated. The run folder holds
``checkpoint.safetensors`` + ``state.json`` (resumable) and ``curves.png``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from hmrkit.train.options import config_parser
from hmrkit.train.schedule import learning_rate
from hmrkit.body.anny_rig import BODY_JOINTS, NUM_BODY_CORE, skeleton_of
from hmrkit.body.kinematics import forward_kinematics, tree_of
from hmrkit.body.limbs import LIMBS
from hmrkit.data.retarget import load_cmu_poses, mirror_core_rotations
from hmrkit.data.training_motion import parse_motion_sets, training_poses
from hmrkit.geometry.rotations import matrix_to_sixd
from hmrkit.models.pose_tokenizer import (
    DEFAULT_WEIGHTS,
    PoseTokenizer,
    PoseVQVAE,
    TokenizerConfig,
    free_joints_of_classes,
    save_pose_tokenizer,
)
from hmrkit.paths import cache_dir, package_dir, weights_dir
from hmrkit.train.hkmr import load_checkpoint, save_checkpoint

COMMAND = "hmrkit train tokenizer"
CORE_PARENTS = tuple(max(p, 0) for p in skeleton_of(BODY_JOINTS).parents[:NUM_BODY_CORE])
ABSENT_LIMB_COUNT = (0.7, 0.2, 0.1)  # chance of 1, 2, 3 absent limbs in an amputated sample
REPO_RESULTS = package_dir().parent / "benchmarks" / "results"


@dataclass
class TrainConfig:
    steps: int = 3000
    batch_size: int = 128
    lr: float = 3e-3  # measured: 1e-3 learns far slower in this budget
    weight_decay: float = 1e-5
    warmup: int = 100
    seed: int = 0
    threads: int = 1
    stride: int = 2  # motion frames kept (every n-th of 120 Hz)
    motion: str = "cmu,hdm05,iclone"
    amputated_share: float = 0.5  # of the amputated tokenizer's batches (the paper's 0.5)
    mix_weight: float = 100.0  # lambda_mix
    commitment: float = 1.0  # lambda_com
    width: int = 64
    code_dim: int = 32
    codebook_size: int = 512
    tokens: int = 16
    val_every: int = 250
    checkpoint_every: int = 250
    val_stride: int = 4  # held-out CMU test frames kept for validation
    unified_only: bool = False  # train only the amputated (unified) tokenizer: the ablations save half the time
    run_dir: str = ""  # default <cache>/train/tokenizer
    out: str = str(weights_dir() / DEFAULT_WEIGHTS)
    record: str = str(REPO_RESULTS / "tokenizer_train.json")  # training record + curves beside it ("" for none)
    resume: bool = False

    def tokenizer_config(self) -> TokenizerConfig:
        return TokenizerConfig(self.width, self.code_dim, self.codebook_size, self.tokens)

    def run(self) -> Path:
        return Path(self.run_dir) if self.run_dir else cache_dir() / "train" / "tokenizer"


# -- data ----------------------------------------------------------------------------------------


def random_limb_classes(batch: int, amputated_share: float, generator: torch.Generator) -> torch.Tensor:
    """(B, 4) limb classes: all 0 (intact) for 1 - ``amputated_share`` of the samples, else 1-3
    absent limbs (:data:`ABSENT_LIMB_COUNT`), each at a uniform level 1..3."""
    amputated = torch.rand(batch, generator=generator) < amputated_share
    count = 1 + torch.multinomial(torch.tensor(ABSENT_LIMB_COUNT), batch, replacement=True, generator=generator)
    rank = torch.rand(batch, len(LIMBS), generator=generator).argsort(dim=1).argsort(dim=1)  # a random order of the limbs
    chosen = (rank < count[:, None]) & amputated[:, None]
    level = 1 + torch.randint(3, (batch, len(LIMBS)), generator=generator)
    return torch.where(chosen, level, 0)


def motion_poses(cfg: TrainConfig) -> torch.Tensor:
    """(N, 21, 3, 3) joints 1..21 of the training motion and its mirror."""
    poses = training_poses(parse_motion_sets(cfg.motion), cfg.stride)
    return torch.cat([poses, mirror_core_rotations(poses)])[:, 1:NUM_BODY_CORE].contiguous()


def held_out_poses(stride: int) -> torch.Tensor:
    """(N, 21, 3, 3) joints 1..21 of the held-out CMU ``test`` split."""
    return torch.from_numpy(load_cmu_poses("test", stride=stride).rotations).float()[:, 1:NUM_BODY_CORE].contiguous()


def neutral_rest_joints() -> torch.Tensor:
    """(1, 22, 3) Anny's neutral rest core joints: what the joint-position loss poses."""
    from hmrkit.body.anny_model import load_anny_body

    body = load_anny_body()
    with torch.no_grad():
        return body.rest_joints(body.blend_coefficients(body.default_shape(1)))[:, :NUM_BODY_CORE].float()


class JointLoss:
    """Core joint positions of joints 1..21 on the neutral skeleton (root at rest), and which of
    them a free mask leaves comparable (those whose parent is not free)."""

    def __init__(self, rest: torch.Tensor):
        self.rest = rest
        self.tree = tree_of(CORE_PARENTS)
        self.parents = torch.tensor(CORE_PARENTS)

    def joints(self, body: torch.Tensor) -> torch.Tensor:
        root = torch.eye(3, dtype=body.dtype).expand(body.shape[0], 1, 3, 3)
        return forward_kinematics(torch.cat([root, body], dim=1), self.rest, self.tree)[1]

    def kept(self, free: torch.Tensor) -> torch.Tensor:
        """(B, 21) free -> (B, 22) joints still on the body (not strictly below a collapse)."""
        free22 = torch.cat([torch.zeros_like(free[:, :1]), free], dim=1)
        return ~free22[:, self.parents]


def step_losses(model: PoseVQVAE, body: torch.Tensor, free: torch.Tensor, fk: JointLoss, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    out = model(body, free)
    present = (~free).to(body.dtype)
    rot = ((out.sixd - matrix_to_sixd(body)).square().sum(-1) * present).sum() / present.sum().clamp(min=1)
    kept = fk.kept(free).to(body.dtype)
    # the target's free joints at identity: its kept joints sit where the collapsed body has them
    target = torch.where(free[..., None, None], torch.eye(3, dtype=body.dtype), body)
    joint = ((fk.joints(out.rotations) - fk.joints(target)).square().sum(-1) * 100.0 * kept).sum() / kept.sum()
    total = cfg.mix_weight * (rot + joint) + cfg.commitment * out.commitment
    return {"total": total, "rot6d": rot.detach(), "joints_dm2": joint.detach(), "commitment": out.commitment.detach()}


@torch.no_grad()
def reconstruction_mpjpe(model: PoseVQVAE, body: torch.Tensor, free: torch.Tensor, fk: JointLoss, chunk: int = 4096) -> dict[str, float]:
    """MPJPE (mm) over the kept core joints after encode-quantize-decode, and codes in use."""
    model.eval()
    errors, used = [], set()
    for start in range(0, body.shape[0], chunk):
        b, f = body[start:start + chunk], free[start:start + chunk]
        out = model(b, f)
        target = torch.where(f[..., None, None], torch.eye(3), b)
        kept = fk.kept(f).float()
        error = (fk.joints(out.rotations) - fk.joints(target)).norm(dim=-1)
        errors.append((error * kept).sum(1) / kept.sum(1))
        used.update(out.indices.unique().tolist())
    model.train()
    return {"mpjpe_mm": float(torch.cat(errors).mean()) * 1000, "codes_used": len(used)}


# -- the loop ------------------------------------------------------------------------------------


def plot_curves(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    steps = [h["step"] for h in history]
    for key in sorted({k for h in history for k in h if k.endswith(("rot6d", "joints_dm2", "commitment"))}):
        axes[0].plot(steps, [h.get(key, float("nan")) for h in history], label=key)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_title("training losses (mean over logging window)")
    axes[0].legend(fontsize=7)
    for key in sorted({k for h in history for k in h if k.startswith("val_") and k.endswith("mpjpe_mm")}):
        axes[1].plot(steps, [h.get(key, float("nan")) for h in history], "o-", label=key[4:])
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("mm")
    axes[1].set_title("held-out CMU test: reconstruction MPJPE")
    axes[1].legend(fontsize=7)
    axes[1].grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def train(cfg: TrainConfig, log=print) -> tuple[PoseTokenizer, dict]:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    run = cfg.run()
    data = motion_poses(cfg)
    fk = JointLoss(neutral_rest_joints())
    val = held_out_poses(cfg.val_stride)
    val_free = free_joints_of_classes(random_limb_classes(len(val), 1.0, torch.Generator().manual_seed(7)))
    no_free = torch.zeros_like(val_free)

    model = PoseTokenizer(cfg.tokenizer_config())
    parts = {"amputated": model.amputated} if cfg.unified_only else {"amputated": model.amputated, "intact": model.intact}
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay) for name, m in parts.items()}
    step, elapsed, history = 0, 0.0, []
    if cfg.resume and (run / "checkpoint.safetensors").exists():
        meta = load_checkpoint(run, dict(parts), optimizers)
        step, elapsed, history = meta["step"], meta["seconds"], meta["history"]
        log(f"resumed {run} at step {step}")
    params = sum(p.numel() for p in model.amputated.parameters())
    log(f"tokenizer: {params / 1e6:.2f} M parameters each ({len(parts)} trained); {len(data)} training poses; run folder {run}")

    start = time.perf_counter() - elapsed
    window: dict[str, float] = {}
    window_steps = 0
    model.train()
    while step < cfg.steps:
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        for name, part in parts.items():
            body = data[torch.randint(len(data), (cfg.batch_size,), generator=generator)]
            share = cfg.amputated_share if name == "amputated" else 0.0
            free = free_joints_of_classes(random_limb_classes(cfg.batch_size, share, generator))
            for group in optimizers[name].param_groups:
                group["lr"] = learning_rate(cfg, step)
            terms = step_losses(part, body, free, fk, cfg)
            optimizers[name].zero_grad(set_to_none=True)
            terms["total"].backward()
            optimizers[name].step()
            for k, v in terms.items():
                window[f"{name}_{k}"] = window.get(f"{name}_{k}", 0.0) + float(v.detach())
        step += 1
        window_steps += 1
        last = step == cfg.steps
        if step % cfg.val_every == 0 or last:
            row = {"step": step, "seconds": round(time.perf_counter() - start, 1), "lr": learning_rate(cfg, step - 1),
                   **{k: round(v / window_steps, 6) for k, v in window.items()}}
            for name, part in parts.items():
                intact = reconstruction_mpjpe(part, val, no_free, fk)
                row[f"val_{name}_intact_mpjpe_mm"] = round(intact["mpjpe_mm"], 2)
                row[f"val_{name}_codes_used"] = intact["codes_used"]
            row["val_amputated_amputated_mpjpe_mm"] = round(reconstruction_mpjpe(model.amputated, val, val_free, fk)["mpjpe_mm"], 2)
            history.append(row)
            window, window_steps = {}, 0
            log(json.dumps(row))
        if step % cfg.checkpoint_every == 0 or last:
            meta = {"step": step, "seconds": time.perf_counter() - start, "history": history, "config": asdict(cfg)}
            save_checkpoint(run, dict(parts), optimizers, meta)
            c = cfg.tokenizer_config()
            plot_curves(history, run / "curves.png", f"pose tokenizer: {c.tokens} tokens, codebook {c.codebook_size} x {c.code_dim}, batch {cfg.batch_size}")
    model.eval()
    seconds = time.perf_counter() - start
    summary = {"steps": step, "seconds": round(seconds, 1), "parameters_per_tokenizer": params, "training_poses": len(data),
               "config": asdict(cfg), "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, {cfg.threads} thread(s)",
               "history": history}
    if cfg.record:
        record = Path(cfg.record)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(summary, indent=1))
        c = cfg.tokenizer_config()
        plot_curves(history, record.with_name(record.stem + "_curves.png"),
                    f"pose tokenizer: {c.tokens} tokens, codebook {c.codebook_size} x {c.code_dim}, batch {cfg.batch_size}")
    return model, summary


def parse_args(argv: list[str] | None) -> TrainConfig:
    parser = config_parser(TrainConfig, COMMAND, __doc__.splitlines()[0])
    cfg = TrainConfig(**vars(parser.parse_args(argv)))
    try:
        parse_motion_sets(cfg.motion)
        cfg.tokenizer_config()
    except ValueError as error:
        parser.error(str(error))
    return cfg


def main(argv: list[str] | None = None) -> int:
    """Train both tokenizers, save the weights (config and summary in the metadata), keep the run folder."""
    cfg = parse_args(list(sys.argv[1:] if argv is None else argv))
    model, summary = train(cfg)
    notes = {"steps": str(summary["steps"]), "seconds": f"{summary['seconds']:.0f}", "train": json.dumps(summary["config"]),
             "unified_only": str(cfg.unified_only)}
    out = save_pose_tokenizer(model, cfg.out, notes)
    (cfg.run() / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {out} ({summary['seconds']:.0f} s); run folder {cfg.run()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
