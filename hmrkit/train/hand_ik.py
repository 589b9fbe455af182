"""Train the biomechanical hand IK net on synthetic Anny hands (CPU, a few minutes).

    python -m hmrkit.train.hand_ik [--steps N] [--out PATH]

Every step draws a fresh batch of feasible hands (:mod:`hmrkit.hands.synth`: random angles
inside the limits with finger swaps, random phenotypes, random orientations, MediaPipe-like
landmark noise). Loss (Fan & Wang 2023, eq. 5): L1 on the 23 angles + L1 on the phenotypes +
L1 on the hand21 joints rebuilt through the Anny hand (in cm, both in their canonical frames).
Adam; the learning rate drops 10x at 75 % and 87.5 % of the steps (the paper's 30/35 of 40
epochs). Left hands only: right hands are mirrored into left ones at inference.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from hmrkit.eval.metrics import mpjpe, pa_mpjpe
from hmrkit.hands.hand_model import BiomechHand, canonical_frame, load_biomech_hand
from hmrkit.hands.ik_net import WEIGHTS_NAME, IKNet, ik_features, save_ik_net
from hmrkit.hands.synth import SynthBatch, SynthConfig, synth_batch
from hmrkit.paths import package_dir, weights_dir

REPO_RESULTS = package_dir().parent / "benchmarks" / "results"


@dataclass
class HandIKTrainConfig:
    steps: int = 1500
    batch: int = 512
    lr: float = 1e-3
    hidden: int = 512
    shape_weight: float = 1.0
    joint_weight: float = 1.0  # per cm of mean absolute joint coordinate error
    val_size: int = 2048
    seed: int = 0
    threads: int = 1
    log_every: int = 250
    out: str = str(weights_dir() / WEIGHTS_NAME)
    log: str = str(REPO_RESULTS / "hands.train.json")  # training record ("" for none)


def canonical(joints: torch.Tensor) -> torch.Tensor:
    """Wrist-centred joints expressed in their own canonical hand frame."""
    return (joints - joints[:, :1]) @ canonical_frame(joints)


def losses(net: IKNet, hand: BiomechHand, batch: SynthBatch, cfg: HandIKTrainConfig) -> dict[str, torch.Tensor]:
    angles, shape = net(ik_features(batch.observed))
    joints = hand(angles, shape).joints
    terms = {
        "angles": (angles - batch.angles).abs().mean(),
        "shape": (shape - batch.shape).abs().mean(),
        "joints_cm": (canonical(joints) - canonical(batch.joints)).abs().mean() * 100.0,
    }
    terms["total"] = terms["angles"] + cfg.shape_weight * terms["shape"] + cfg.joint_weight * terms["joints_cm"]
    return terms


@torch.no_grad()
def evaluate(net: IKNet, hand: BiomechHand, batch: SynthBatch) -> dict[str, float]:
    """Errors of the net alone on a fixed batch: angles (deg), joints (mm) placed by the palm."""
    net.eval()
    angles, shape = net(ik_features(batch.observed))
    rotation, translation = hand.place(shape, batch.joints)
    joints = hand(angles, shape, rotation, translation).joints
    return {
        "angle_mae_deg": float((angles - batch.angles).abs().mean().rad2deg()),
        "shape_mae": float((shape - batch.shape).abs().mean()),
        "mpjpe_mm": float(mpjpe(joints, batch.joints).mean() * 1000),
        "pa_mpjpe_mm": float(pa_mpjpe(joints, batch.joints).mean() * 1000),
    }


def train(cfg: HandIKTrainConfig) -> dict:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    hand = load_biomech_hand("left")
    synth = SynthConfig()
    val_gen = torch.Generator().manual_seed(10_000 + cfg.seed)
    val_noisy = synth_batch(hand, cfg.val_size, synth, val_gen)
    val_clean = SynthBatch(val_noisy.angles, val_noisy.shape, val_noisy.global_rotation, val_noisy.joints, val_noisy.joints)

    net = IKNet(cfg.hidden, hand.num_shape)
    net.lower.copy_(hand.axes.lower)
    net.upper.copy_(hand.axes.upper)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    milestones = [int(cfg.steps * 0.75), int(cfg.steps * 0.875)]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=0.1)
    gen = torch.Generator().manual_seed(cfg.seed)
    start = time.time()
    history = []
    for step in range(1, cfg.steps + 1):
        net.train()
        batch = synth_batch(hand, cfg.batch, synth, gen)
        terms = losses(net, hand, batch, cfg)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        sched.step()
        if step % cfg.log_every == 0 or step == cfg.steps:
            val = evaluate(net, hand, val_noisy)
            row = {"step": step, "seconds": round(time.time() - start, 1), **{k: round(v.item(), 4) for k, v in terms.items()},
                   **{f"val_{k}": round(v, 3) for k, v in val.items()}}
            history.append(row)
            print(json.dumps(row), flush=True)
    summary = {
        "config": asdict(cfg),
        "synth": asdict(synth),
        "train_seconds": round(time.time() - start, 1),
        "val_noisy": evaluate(net, hand, val_noisy),
        "val_clean": evaluate(net, hand, val_clean),
        "history": history,
    }
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_ik_net(net, out, {"steps": str(cfg.steps), "batch": str(cfg.batch), "seed": str(cfg.seed)})
    if cfg.log:
        Path(cfg.log).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.log).write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: summary[k] for k in ("train_seconds", "val_noisy", "val_clean")}), flush=True)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hmrkit.train.hand_ik", description=__doc__.splitlines()[0])
    for f in fields(HandIKTrainConfig):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    train(HandIKTrainConfig(**vars(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
