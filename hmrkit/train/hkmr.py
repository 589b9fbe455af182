"""Train HKMR, the flat HMR baseline or an HKMR ablation on synthetic landmarks from real mocap.

    python -m hmrkit.train.hkmr --model hkmr                   # the shipped hkmr.safetensors (~22 min, 1 thread)
    python -m hmrkit.train.hkmr --model flat --out hmrkit/weights/hmr_flat.safetensors
    python -m hmrkit.train.hkmr --model forward_only --steps 1500 --run-dir /tmp/fwd --out /tmp/fwd.safetensors
    python -m hmrkit.train.hkmr --resume ...                   # continue a run from its checkpoint
    torchrun --nproc_per_node 4 -m hmrkit.train.hkmr --ddp ... # data-parallel (gloo on CPU, nccl on GPUs)

Every step draws a fresh batch (:mod:`hmrkit.data.synth_keypoints`) from the training motion
(``--motion``, default CMU ``train`` + HDM05 ``train`` + the iClone takes unlike CMU's held-out
activities: :mod:`hmrkit.data.training_motion`); the validation set is a fixed draw from the
held-out CMU ``test`` split. Losses (HKMR eq. 3), summed
over the outer iterations: L1 on the pelvis-centred 3D core joints and MediaPipe33 keypoints
(cm), L1 on the keypoints' weak-perspective projections (box-normalized units), squared error
on the rotation matrices and phenotypes, and the pose prior: the KL of the VAE encoder
(:mod:`hmrkit.models.pose_prior`), or a least-squares GAN discriminator for that ablation.
The run folder holds ``checkpoint.safetensors`` + ``state.json`` (resumable), ``curves.png``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist

from hmrkit.train.options import config_parser
from hmrkit.train.schedule import learning_rate
from hmrkit.body.anny_model import AnnyModel, load_anny_body
from hmrkit.body.anny_rig import NUM_BODY_CORE
from hmrkit.data.retarget import mirror_core_rotations
from hmrkit.data.training_motion import parse_motion_sets, training_poses
from hmrkit.data.synth_keypoints import V1_NOISE, SynthBatch, SynthConfig, SynthKeypoints, batch_to, crop_box_of, render_person_crops
from hmrkit.estimators import RegressorSpec, build_regressor, save_regressor
from hmrkit.eval.metrics import mpjpe, pa_mpjpe
from hmrkit.models.discriminator import PoseDiscriminator, discriminator_loss, generator_loss
from hmrkit.geometry.crops import CropBox
from hmrkit.models.encoders import ImageEncoder, ImageEncoderConfig, normalize_to_box, person_box
from hmrkit.models.hkmr import BodyRegressor, HkmrConfig, HkmrHead, RegressorOutput
from hmrkit.models.hmr_flat import FlatConfig
from hmrkit.models.pose_prior import PosePrior, load_pose_prior
from hmrkit.paths import cache_dir, weights_dir

Variant = Literal["hkmr", "flat", "no_hierarchy", "forward_only", "discriminator"]
VARIANTS: tuple[str, ...] = ("hkmr", "flat", "no_hierarchy", "forward_only", "discriminator")


@dataclass
class TrainConfig:
    model: Variant = "hkmr"
    inner: int = 4  # HKMR inner iterations (passes per chain)
    outer: int = 3  # HKMR outer iterations / flat IEF iterations
    steps: int = 5000
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    seed: int = 0
    threads: int = 1
    stride: int = 2  # motion frames kept (every n-th of 120 Hz)
    motion: str = "cmu,hdm05,iclone"  # training motion sets, comma-separated: cmu, hdm05, iclone (hmrkit.data.training_motion)
    val_size: int = 1024
    val_every: int = 250
    checkpoint_every: int = 250
    w_joints3d: float = 1.0  # per cm of mean absolute error
    w_joints2d: float = 10.0  # per box-normalized unit (1 = half the person box)
    w_params: float = 1.0
    w_prior: float = 0.001  # KL in nats, or the LSGAN generator loss for "discriminator"
    run_dir: str = ""  # default: <cache>/train/hkmr_<model>
    out: str = ""  # weights file written at the end; default: hmrkit/weights/hkmr.safetensors for hkmr
    resume: bool = False
    ddp: bool = False
    device: str = "cpu"
    encoder: Literal["keypoints", "image"] = "keypoints"  # image: rendered crops through a CNN (HKMR head)
    backbone: str = "efficientnet_lite0"  # image encoder: efficientnet_lite0 (ImageNet weights) or resnet50 (random init)
    crop_size: int = 128
    v1_noise: bool = False  # train on the first landmark noise model (V1_NOISE: the shipped v1 weights, the ablation table)
    synth: SynthConfig = field(default_factory=SynthConfig)

    def synth_config(self) -> SynthConfig:
        return V1_NOISE if self.v1_noise else self.synth

    def build(self) -> BodyRegressor:
        if self.encoder == "keypoints":
            return build_regressor(self.spec())
        if self.model == "flat":
            raise ValueError("the image path trains HKMR heads only")
        features = ImageEncoderConfig().feature_dim
        encoder = ImageEncoder(ImageEncoderConfig(self.backbone, self.backbone == "efficientnet_lite0", features, self.crop_size))
        return BodyRegressor(encoder, HkmrHead(self.spec().hkmr))

    def spec(self) -> RegressorSpec:
        if self.model == "flat":
            return RegressorSpec("flat", flat=FlatConfig(iterations=self.outer))
        hkmr = HkmrConfig(inner_iterations=self.inner, outer_iterations=self.outer,
                          backward_pass=self.model != "forward_only", joint_hierarchy=self.model != "no_hierarchy")
        return RegressorSpec("hkmr", hkmr=hkmr)

    def paths(self) -> tuple[Path, Path]:
        run = Path(self.run_dir) if self.run_dir else cache_dir() / "train" / f"hkmr_{self.model}"
        default_out = {"hkmr": "hkmr.safetensors", "flat": "hmr_flat.safetensors"}.get(self.model, f"hkmr_{self.model}.safetensors")
        shipped = self.model in ("hkmr", "flat") and self.encoder == "keypoints"
        out = Path(self.out) if self.out else (weights_dir() / default_out if shipped else run / default_out)
        return run, out


# -- losses ------------------------------------------------------------------------------------


class Supervision:
    """The body model and priors the losses need, built once."""

    def __init__(self, body: AnnyModel, keypoint_map, prior: PosePrior | None, discriminator: PoseDiscriminator | None):
        self.body = body
        self.keypoint_map = keypoint_map
        self.prior = prior
        self.discriminator = discriminator


def full_rotations(core: torch.Tensor, joints: int) -> torch.Tensor:
    """(B, 22, 3, 3) -> (B, joints, 3, 3) with the fingers at rest (differentiable)."""
    rest = torch.eye(3, dtype=core.dtype, device=core.device).expand(core.shape[0], joints - NUM_BODY_CORE, 3, 3)
    return torch.cat([core, rest], dim=1)


def pose_points(sup: Supervision, rotations: torch.Tensor, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pelvis-centred core joints (B, 22, 3) and MediaPipe33 keypoints (B, 33, 3) of a pose."""
    out = sup.body(full_rotations(rotations, sup.body.num_joints), shape, with_vertices=False, keypoints=sup.keypoint_map)
    pelvis = out.joints[:, :1]
    return out.joints[:, :NUM_BODY_CORE] - pelvis, out.keypoints - pelvis


def losses(out: RegressorOutput, batch: SynthBatch, sup: Supervision, cfg: TrainConfig, box: CropBox | None = None) -> dict[str, torch.Tensor]:
    """HKMR eq. 3: each term summed over the outer iterations. ``box``: the frame of the weak
    camera (default: the keypoint encoder's box around the seen landmarks; a crop's box for images)."""
    t = len(out.rotations)
    rotations, shape, camera = torch.cat(out.rotations), torch.cat(out.shape), torch.cat(out.camera)
    # The 3D/2D terms reach the phenotypes through the last iteration only: the gradient of
    # Anny's phenotype blending costs more than the rest of the step (earlier iterations' shapes
    # still learn from the parameter term).
    b = batch.batch
    joints, keypoints = pose_points(sup, rotations[-b:], shape[-b:])
    if t > 1:
        early_joints, early_keypoints = pose_points(sup, rotations[:-b], shape[:-b].detach())
        joints, keypoints = torch.cat([early_joints, joints]), torch.cat([early_keypoints, keypoints])
    pelvis = batch.joints[:, :1]
    gt3d = torch.cat([batch.joints - pelvis, batch.keypoints - pelvis], dim=1).repeat(t, 1, 1)
    l3d = (torch.cat([joints, keypoints], dim=1) - gt3d).abs().mean() * 100.0 * t
    gt2d = normalize_to_box(batch.keypoints2d, box or person_box(batch.observed)).repeat(t, 1, 1)
    projected = camera[:, None, :1] * (keypoints[..., :2] + camera[:, None, 1:])
    l2d = (projected - gt2d).abs().mean() * t
    lpose = (rotations - batch.rotations.repeat(t, 1, 1, 1)).square().sum((-2, -1)).mean() * t
    lshape = (shape - batch.shape.repeat(t, 1)).square().sum(-1).mean() * t
    body_pose = rotations[:, 1:NUM_BODY_CORE]
    if sup.discriminator is not None:
        prior = generator_loss(sup.discriminator(body_pose)) * t
    else:
        prior = sup.prior.kl(body_pose).mean() * t
    total = cfg.w_joints3d * l3d + cfg.w_joints2d * l2d + cfg.w_params * (lpose + lshape) + cfg.w_prior * prior
    return {"total": total, "joints3d_cm": l3d / t, "joints2d": l2d / t, "pose": lpose / t, "shape": lshape / t, "prior": prior / t}


@torch.no_grad()
def evaluate(regressor: BodyRegressor, inputs, batch: SynthBatch, sup: Supervision, chunk: int = 512) -> dict[str, float]:
    """MPJPE and PA-MPJPE (mm) of the 22 core joints, pelvis-centred, after the last iteration.
    ``inputs``: the regressor's input for ``batch`` (landmarks or crops)."""
    regressor.eval()
    errors, pa = [], []
    for start in range(0, batch.batch, chunk):
        part = slice(start, start + chunk)
        if isinstance(inputs, torch.Tensor):
            piece = inputs[part]
        else:
            piece = type(inputs)(inputs.xy[part], inputs.visible[part], inputs.world[part])
        out = regressor(piece)
        joints, _ = pose_points(sup, out.rotations[-1], out.shape[-1])
        gt = batch.joints[part] - batch.joints[part, :1]
        errors.append(mpjpe(joints, gt))
        pa.append(pa_mpjpe(joints, gt))
    return {"mpjpe_mm": float(torch.cat(errors).mean()) * 1000, "pa_mpjpe_mm": float(torch.cat(pa).mean()) * 1000}


def model_inputs(cfg: TrainConfig, batch: SynthBatch, body: AnnyModel, generator: torch.Generator) -> tuple[object, CropBox]:
    """The regressor's input for a batch and the box its weak camera lives in."""
    if cfg.encoder == "image":
        crops = render_person_crops(batch_to(batch, "cpu"), body.cpu() if body.faces.device.type != "cpu" else body,
                                    cfg.crop_size, generator)
        return crops.to(batch.rotations.device), crop_box_of(batch)
    return batch.observed, person_box(batch.observed)


# -- checkpoints -------------------------------------------------------------------------------


def _flatten_optimizer(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    tensors = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"{prefix}.{index}.{key}"] = torch.as_tensor(value).detach().cpu().clone(memory_format=torch.contiguous_format)
    return tensors, optimizer.state_dict()["param_groups"]


def _restore_optimizer(prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(run: Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer], meta: dict) -> None:
    from safetensors.torch import save_file

    run.mkdir(parents=True, exist_ok=True)
    tensors, groups = {}, {}
    for name, module in modules.items():
        tensors.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
    for name, optimizer in optimizers.items():
        flat, groups[name] = _flatten_optimizer(f"optim_{name}", optimizer)
        tensors.update(flat)
    save_file(tensors, str(run / "checkpoint.tmp.safetensors"))
    os.replace(run / "checkpoint.tmp.safetensors", run / "checkpoint.safetensors")
    (run / "state.json").write_text(json.dumps({**meta, "param_groups": groups}, indent=1))


def load_checkpoint(run: Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer]) -> dict:
    from safetensors.torch import load_file

    tensors = load_file(str(run / "checkpoint.safetensors"))
    meta = json.loads((run / "state.json").read_text())
    for name, module in modules.items():
        prefix = name + "."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)
    for name, optimizer in optimizers.items():
        _restore_optimizer(f"optim_{name}", optimizer, tensors, meta["param_groups"][name])
    return meta


def plot_curves(history: list[dict], path: Path, title: str, held_out: str = "synthetic landmarks") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [h for h in history if "total" in h]
    val = [h for h in history if "val_mpjpe_mm" in h]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("total", "joints3d_cm", "joints2d", "pose", "prior"):
        axes[0].plot([h["step"] for h in train], [h[key] for h in train], label=key)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_title("training losses (mean over logging window)")
    axes[0].legend(fontsize=8)
    axes[1].plot([h["step"] for h in val], [h["val_mpjpe_mm"] for h in val], "o-", label="MPJPE")
    axes[1].plot([h["step"] for h in val], [h["val_pa_mpjpe_mm"] for h in val], "o-", label="PA-MPJPE")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("mm")
    axes[1].set_title(f"held-out CMU test ({held_out})")
    axes[1].legend()
    axes[1].grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# -- the loop ----------------------------------------------------------------------------------


def real_poses(poses: torch.Tensor) -> torch.Tensor:
    """(N, 21, 3, 3) the training motion's body poses and their mirrors: the discriminator's real samples."""
    return torch.cat([poses, mirror_core_rotations(poses)])[:, 1:NUM_BODY_CORE].float()


def train(cfg: TrainConfig, log=print) -> dict:
    rank, world = 0, 1
    if cfg.ddp:
        backend = "nccl" if cfg.device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
        rank, world = dist.get_rank(), dist.get_world_size()
        if cfg.device.startswith("cuda"):
            cfg.device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
            torch.cuda.set_device(cfg.device)
    device = torch.device(cfg.device)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    run, out_path = cfg.paths()
    spec = cfg.spec()

    body = load_anny_body().to(device)
    motion = training_poses(parse_motion_sets(cfg.motion), cfg.stride)  # (N, 22, 3, 3), read once
    train_data = SynthKeypoints(body, config=cfg.synth_config(), poses=motion)
    val_data = SynthKeypoints(body, "test", 1, cfg.synth_config())
    val_batch = batch_to(val_data.sample(cfg.val_size, torch.Generator().manual_seed(12345)), device)
    val_inputs, _ = model_inputs(cfg, val_batch, body, torch.Generator().manual_seed(12346))
    discriminator = PoseDiscriminator().to(device) if cfg.model == "discriminator" else None
    prior = None if discriminator is not None else load_pose_prior().to(device).requires_grad_(False)
    sup = Supervision(body, train_data.keypoint_map.to(device), prior, discriminator)
    regressor = cfg.build().to(device)
    model = torch.nn.parallel.DistributedDataParallel(regressor) if cfg.ddp else regressor
    optimizer = torch.optim.AdamW(regressor.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    modules: dict[str, torch.nn.Module] = {"model": regressor}
    optimizers: dict[str, torch.optim.Optimizer] = {"model": optimizer}
    if discriminator is not None:
        disc_model = torch.nn.parallel.DistributedDataParallel(discriminator) if cfg.ddp else discriminator
        disc_optimizer = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr)
        modules["disc"], optimizers["disc"] = discriminator, disc_optimizer
        reals = real_poses(motion)

    step, elapsed, history = 0, 0.0, []
    if cfg.resume and (run / "checkpoint.safetensors").exists():
        meta = load_checkpoint(run, modules, optimizers)
        step, elapsed, history = meta["step"], meta["seconds"], meta["history"]
        log(f"resumed {run} at step {step}")
    if rank == 0:
        log(f"{cfg.model}: {sum(p.numel() for p in regressor.parameters()) / 1e6:.2f} M parameters; run folder {run}")

    start = time.perf_counter() - elapsed
    window: dict[str, float] = {}
    window_steps = 0
    while step < cfg.steps:
        model.train()
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * world + rank)
        batch = batch_to(train_data.sample(cfg.batch_size, generator), device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        inputs, box = model_inputs(cfg, batch, body, generator)
        output = model(inputs)
        terms = losses(output, batch, sup, cfg, box)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        if discriminator is not None:
            real = reals[torch.randint(len(reals), (cfg.batch_size,), generator=generator)].to(device)
            fake = torch.cat(output.rotations).detach()[:, 1:NUM_BODY_CORE]
            d_loss = discriminator_loss(disc_model(real), disc_model(fake))
            disc_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            disc_optimizer.step()
            terms["discriminator"] = d_loss.detach()
        step += 1
        for k, v in terms.items():
            window[k] = window.get(k, 0.0) + float(v.detach())
        window_steps += 1
        last = step == cfg.steps
        if rank == 0 and (step % cfg.val_every == 0 or last):
            row = {"step": step, "seconds": round(time.perf_counter() - start, 1), "lr": learning_rate(cfg, step - 1),
                   **{k: round(v / window_steps, 5) for k, v in window.items()}}
            val = evaluate(regressor, val_inputs, val_batch, sup)
            row.update({f"val_{k}": round(v, 2) for k, v in val.items()})
            history.append(row)
            window, window_steps = {}, 0
            log(json.dumps(row))
        if rank == 0 and (step % cfg.checkpoint_every == 0 or last):
            meta = {"step": step, "seconds": time.perf_counter() - start, "history": history, "config": asdict(cfg)}
            save_checkpoint(run, modules, optimizers, meta)
            plot_curves(history, run / "curves.png", f"{cfg.model} (inner {cfg.inner}, outer {cfg.outer}), batch {cfg.batch_size}",
                        "synthetic landmarks" if cfg.encoder == "keypoints" else f"rendered crops, {cfg.backbone}")
    summary: dict = {}
    if rank == 0:
        seconds = time.perf_counter() - start
        val = evaluate(regressor, val_inputs, val_batch, sup)
        summary = {"model": cfg.model, "spec": json.loads(spec.to_json()), "steps": step, "batch_size": cfg.batch_size,
                   "world_size": world, "seconds": round(seconds, 1), "val_size": cfg.val_size, "val": val,
                   "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, {cfg.device}, {cfg.threads} thread(s)"}
        notes = {"steps": str(step), "seconds": f"{seconds:.0f}", "model": cfg.model, "val_mpjpe_mm": f"{val['mpjpe_mm']:.1f}"}
        if cfg.encoder == "keypoints":
            save_regressor(regressor, spec, out_path, notes)
        else:  # the image path is a training path only: its weights are not an estimator file
            from safetensors.torch import save_file

            out_path.parent.mkdir(parents=True, exist_ok=True)
            save_file({k: v.detach().cpu().contiguous() for k, v in regressor.state_dict().items()}, str(out_path),
                      metadata={"format": "hmrkit-image-regressor-experimental", "config": json.dumps(asdict(cfg)), **notes})
        (run / "summary.json").write_text(json.dumps(summary, indent=1))
        log(f"wrote {out_path} ({seconds:.0f} s); held-out val {val}")
    if cfg.ddp:
        dist.barrier()
        dist.destroy_process_group()
    return summary


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    def choices(*allowed: str):
        return lambda parser, flag, value: parser.add_argument(flag, choices=allowed, default=value)

    special = {"synth": lambda parser, flag, value: None, "model": choices(*VARIANTS), "encoder": choices("keypoints", "image")}
    parser = config_parser(TrainConfig, "python -m hmrkit.train.hkmr", __doc__.splitlines()[0], special)
    return TrainConfig(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
