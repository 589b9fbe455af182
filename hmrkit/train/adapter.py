"""Train HMR-Adapter (:mod:`hmrkit.models.hmr_adapter`) in the paper's two stages, on the CPU.

    hmrkit train adapter                            # the shipped weights (= python -m hmrkit.train.adapter)
    hmrkit train adapter --resume                   # continue a run from its checkpoint

Data: :mod:`hmrkit.data.wholebody_synth` on CMU's ``train`` split (fresh samples every step);
validation on a fixed draw of the held-out ``test`` split (other sequences).

- Stage 1 (``expert_steps``): the hand expert alone on the hand landmarks.
- Stage 2 (``adapter_steps``): the expert frozen, HKMR frozen (the shipped ``hkmr.safetensors``,
  run on each sample's noisy body landmarks). The body guidance is HKMR's *estimate* of the arm
  chain, not the true pose the paper conditions on: at run time only the estimate exists, and
  its errors are what the hand path must learn to weigh. Trained together (independent losses,
  one optimizer): the hand-path adapter, the body-path adapter and the two naive-concatenation
  baselines (for the ablation, ``benchmarks/bench_adapter.py``).

Losses (paper eq. 5/7 without the image terms): hands -- squared error of the orientation
matrix, L1 of the 23 angles (radians), L1 of the hand21 points (decimetres; the hand posed by the
predicted angles with the true shape and orientation, so that this term is about the fingers: with the
predicted orientation, orientation errors dominated it and the angles stayed at their mean in a first
run); body path -- squared error of the elbow and wrist local rotation
matrices and of the wrist's camera-frame rotation. The run folder holds ``checkpoint.safetensors``
+ ``state.json`` (resumable, stage included).
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

from hmrkit.data.retarget import CORE_NAMES
from hmrkit.data.wholebody_synth import WholeBodyBatch, WholeBodySynth
from hmrkit.estimators import HkmrEstimator
from hmrkit.geometry.rotations import geodesic_angle
from hmrkit.hands.hand_model import BiomechHand, load_biomech_hand
from hmrkit.models.hmr_adapter import (
    DEFAULT_WEIGHTS,
    AdapterConfig,
    HandEstimate,
    HMRAdapter,
    OFFSET_INDEX,
    apply_offsets,
    arm_chains,
    global_rotations,
    parameter_count,
    save_adapter,
)
from hmrkit.paths import cache_dir, package_dir, weights_dir
from hmrkit.train.hkmr import load_checkpoint, save_checkpoint
from hmrkit.train.options import config_parser
from hmrkit.train.schedule import learning_rate

COMMAND = "hmrkit train adapter"
REPO_RESULTS = package_dir().parent / "benchmarks" / "results"
WRISTS = [CORE_NAMES.index(f"{side}_wrist") for side in ("left", "right")]


@dataclass
class AdapterTrainConfig:
    expert_steps: int = 1500
    adapter_steps: int = 1000
    batch_size: int = 96  # bodies per step (two hands each)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    seed: int = 0
    threads: int = 1
    stride: int = 4  # CMU frames kept (every n-th of 120 Hz)
    width: int = 64
    heads: int = 4
    encoder_layers: int = 2
    decoder_layers: int = 2
    ffn: int = 128
    body_layers: int = 1
    joint_weight: float = 1.0
    val_every: int = 250
    checkpoint_every: int = 250
    val_bodies: int = 512  # held-out bodies (CMU test split) for validation
    run_dir: str = ""  # default <cache>/train/adapter
    out: str = str(weights_dir() / DEFAULT_WEIGHTS)
    record: str = str(REPO_RESULTS / "adapter_train.json")  # training record ("" for none)
    resume: bool = False

    def model_config(self) -> AdapterConfig:
        return AdapterConfig(width=self.width, heads=self.heads, encoder_layers=self.encoder_layers,
                             decoder_layers=self.decoder_layers, ffn=self.ffn, body_layers=self.body_layers)

    def run(self) -> Path:
        return Path(self.run_dir) if self.run_dir else cache_dir() / "train" / "adapter"


@dataclass(frozen=True)
class Stage:
    """One stage's schedule (:func:`hmrkit.train.schedule.learning_rate` reads these)."""

    lr: float
    warmup: int
    steps: int


def hand_loss(pred: HandEstimate, batch: WholeBodyBatch, hand: BiomechHand, joint_weight: float) -> torch.Tensor:
    rotation = batch.hand_rotation.reshape(-1, 3, 3)
    angles = batch.angles.reshape(-1, batch.angles.shape[-1])
    shape = batch.body.shape.repeat_interleave(2, dim=0)
    joints = hand(pred.angles, shape, rotation).joints  # the true orientation: this term is about the fingers
    return ((pred.rotation - rotation).square().sum((1, 2)).mean() + (pred.angles - angles).abs().mean()
            + joint_weight * 10.0 * (joints - batch.hand_joints.reshape(-1, 21, 3)).abs().mean())


def body_loss(estimate: torch.Tensor, offsets: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``estimate`` (B, 22, 3, 3) HKMR's local rotations, ``offsets`` (2B, 2, 3, 3), ``truth`` (B, 22, 3, 3)."""
    adjusted = apply_offsets(estimate, offsets.reshape(-1, 2, 2, 3, 3))
    local = (adjusted[:, OFFSET_INDEX] - truth[:, OFFSET_INDEX]).square().sum((-1, -2)).mean()
    wrist = (global_rotations(adjusted)[:, WRISTS] - global_rotations(truth)[:, WRISTS]).square().sum((-1, -2)).mean()
    return local + wrist


@torch.no_grad()
def hkmr_rotations(hkmr: HkmrEstimator, batch: WholeBodyBatch) -> torch.Tensor:
    """(B, 22, 3, 3) HKMR's estimate from the sample's noisy body landmarks."""
    return hkmr.predict(batch.body.observed).rotations[-1]


def with_estimate(batch: WholeBodyBatch, estimate: torch.Tensor) -> WholeBodyBatch:
    """``batch`` with the hands' arm chains taken from ``estimate`` (what the pipeline has)."""
    batch.hands.arm = arm_chains(estimate).reshape(-1, 4, 3, 3)
    return batch


def _deg(a: torch.Tensor) -> float:
    return float(torch.rad2deg(a).mean())


@torch.no_grad()
def validate(model: HMRAdapter, val: WholeBodyBatch, estimate: torch.Tensor, stage: int) -> dict[str, float]:
    """Orientation and angle errors (deg) of the hands; wrist errors (deg) of the body path (stage 2)."""
    truth_r = val.hand_rotation.reshape(-1, 3, 3)
    truth_a = val.angles.reshape(-1, val.angles.shape[-1])
    memory = model.expert.encode(val.hands)
    rows = {"expert": model.expert.heads(model.expert.decode(memory))}
    if stage == 2:
        rows["adapter"] = model.hand(val.hands, memory)
        rows["naive"] = model.naive_hand(model.expert, val.hands, memory)
    out = {}
    for name, pred in rows.items():
        out[f"val_{name}_orientation_deg"] = round(_deg(geodesic_angle(pred.rotation, truth_r)), 3)
        out[f"val_{name}_angles_deg"] = round(_deg((pred.angles - truth_a).abs()), 3)
    if stage == 2:
        true_wrist = global_rotations(val.body.rotations)[:, WRISTS]
        for name, offsets in (("hkmr", None), ("body_path", model.body_adapter(memory, val.hands.arm)),
                              ("naive_body", model.naive_body(memory, val.hands.arm))):
            rot = estimate if offsets is None else apply_offsets(estimate, offsets.reshape(-1, 2, 2, 3, 3))
            out[f"val_{name}_wrist_deg"] = round(_deg(geodesic_angle(global_rotations(rot)[:, WRISTS], true_wrist)), 3)
    return out


def train(cfg: AdapterTrainConfig, log=print) -> tuple[HMRAdapter, dict]:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    run = cfg.run()
    from hmrkit.body.anny_model import load_anny_body

    body = load_anny_body()
    data = WholeBodySynth(body, "train", cfg.stride)
    held_out = WholeBodySynth(body, "test", cfg.stride)
    hand = load_biomech_hand("left")
    hkmr = HkmrEstimator.load(body=body)
    val = held_out.sample(cfg.val_bodies, torch.Generator().manual_seed(12345))
    val_estimate = hkmr_rotations(hkmr, val)
    with_estimate(val, val_estimate)

    model = HMRAdapter(cfg.model_config(), hand.axes.lower, hand.axes.upper)
    stages = (Stage(cfg.lr, cfg.warmup, cfg.expert_steps), Stage(cfg.lr, cfg.warmup, cfg.adapter_steps))

    def trainable(stage: int) -> torch.nn.Module:
        if stage == 1:
            return model.expert
        return torch.nn.ModuleList([model.hand_adapter, model.body_adapter, model.naive_hand, model.naive_body])

    def stage_optimizer(stage: int) -> torch.optim.Optimizer:
        if stage == 2:  # the expert is frozen from here on
            model.expert.requires_grad_(False)
        return torch.optim.AdamW(trainable(stage).parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def checkpoint(stage: int, step: int) -> None:
        save_checkpoint(run, {"model": model}, {"adam": optimizer},
                        {"stage": stage, "step": step, "seconds": time.perf_counter() - start, "history": history,
                         "config": asdict(cfg)})

    step, stage, elapsed, history = 0, 1, 0.0, []
    resume = cfg.resume and (run / "state.json").exists()
    if resume:
        stage = json.loads((run / "state.json").read_text())["stage"]
    optimizer = stage_optimizer(stage)
    if resume:
        meta = load_checkpoint(run, {"model": model}, {"adam": optimizer})
        step, elapsed, history = meta["step"], meta["seconds"], meta["history"]
        log(f"resumed {run} at stage {stage}, step {step}")
    counts = {name: parameter_count(getattr(model, name)) for name in ("expert", "hand_adapter", "body_adapter", "naive_hand", "naive_body")}
    log(f"HMR-Adapter parameters: {counts}; {len(data.bodies)} training poses, {len(held_out.bodies)} held-out; run folder {run}")

    start = time.perf_counter() - elapsed
    while True:
        schedule = stages[stage - 1]
        window, window_steps = 0.0, 0
        while step < schedule.steps:
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + stage * 100_000 + step)
            batch = data.sample(cfg.batch_size, g)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(schedule, step)
            if stage == 1:
                loss = hand_loss(model.expert(batch.hands), batch, hand, cfg.joint_weight)
            else:
                estimate = hkmr_rotations(hkmr, batch)
                with_estimate(batch, estimate)
                with torch.no_grad():
                    memory = model.expert.encode(batch.hands)
                loss = (hand_loss(model.hand(batch.hands, memory), batch, hand, cfg.joint_weight)
                        + hand_loss(model.naive_hand(model.expert, batch.hands, memory), batch, hand, cfg.joint_weight)
                        + body_loss(estimate, model.body_adapter(memory, batch.hands.arm), batch.body.rotations)
                        + body_loss(estimate, model.naive_body(memory, batch.hands.arm), batch.body.rotations))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            window += float(loss.detach())
            window_steps += 1
            last = step == schedule.steps
            if step % cfg.val_every == 0 or last:
                model.eval()
                row = {"stage": stage, "step": step, "seconds": round(time.perf_counter() - start, 1),
                       "loss": round(window / window_steps, 5), **validate(model, val, val_estimate, stage)}
                model.train()
                history.append(row)
                window, window_steps = 0.0, 0
                log(json.dumps(row))
            if step % cfg.checkpoint_every == 0 or last:
                checkpoint(stage, step)
        if stage == 2:
            break
        stage, step = 2, 0
        model.reset_adapters()  # from the trained expert: copies of its SA and CA, zero output projection
        optimizer = stage_optimizer(stage)
        checkpoint(stage, step)
    model.expert.requires_grad_(False)
    model.eval()
    seconds = time.perf_counter() - start
    summary = {"steps": {"expert": cfg.expert_steps, "adapters": cfg.adapter_steps}, "seconds": round(seconds, 1),
               "parameters": counts, "training_poses": len(data.bodies), "held_out_poses": len(held_out.bodies),
               "config": asdict(cfg), "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, {cfg.threads} thread(s)",
               "history": history}
    if cfg.record:
        record = Path(cfg.record)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(summary, indent=1))
    return model, summary


def parse_args(argv: list[str] | None) -> AdapterTrainConfig:
    parser = config_parser(AdapterTrainConfig, COMMAND, __doc__.splitlines()[0])
    cfg = AdapterTrainConfig(**vars(parser.parse_args(argv)))
    if cfg.width % cfg.heads:
        parser.error(f"--width {cfg.width} must be a multiple of --heads {cfg.heads}")
    if min(cfg.expert_steps, cfg.adapter_steps, cfg.batch_size, cfg.val_bodies) < 1:
        parser.error("steps, batch size and validation bodies must be at least 1")
    return cfg


def main(argv: list[str] | None = None) -> int:
    """Train both stages, save the weights (config, steps and parameter counts in the metadata)."""
    cfg = parse_args(list(sys.argv[1:] if argv is None else argv))
    model, summary = train(cfg)
    notes = {"steps": json.dumps(summary["steps"]), "seconds": f"{summary['seconds']:.0f}",
             "parameters": json.dumps(summary["parameters"]), "train": json.dumps(summary["config"])}
    out = save_adapter(model, cfg.out, notes)
    (cfg.run() / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {out} ({summary['seconds']:.0f} s); run folder {cfg.run()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
