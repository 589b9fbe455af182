"""Train Lite I2L MeshNet on synthetic hand images (``hmrkit synth hands``).

    python -m hmrkit.train.lite_i2l --data /work/hands_synth/train      # = hmrkit train lite-i2l --data DIR
    python -m hmrkit.train.lite_i2l --data DIR --resume                 # continue from the run's checkpoint

Data: the synthetic set only (:mod:`hmrkit.synth.hand_dataset`); the folder may still be growing:
every ``grow_every`` steps the samples finished since are added. Every 20th sample
(``index % 20 == 19``) is held out for the synthetic validation curve. The real
``hands_ge2019_dev`` crops are used ONLY for the validation curve (PA-MPJPE of the PoseNet joints),
never for training, never to choose a checkpoint: the run ships its last step.

One network serves both sides: right hands are flipped left-right (image and labels) so the net
always sees a left hand, as the IK net does (:func:`flip_sample`).

Losses (Fan & Wang 2023 eq. 4, I2L MeshNet's terms), all in lixels:
``L1(PoseNet joints) + L1(regressed mesh joints) + L1(vertices) + L_edge + 0.1 L_normal``;
coordinates outside the lixel range are masked, as I2L does for truncated points.

Adam at a constant rate after a warm-up, then a cosine decay (``hmrkit.train.schedule``): the
paper's 30 epochs at 1e-4 with batch 32 on 130k images are far beyond a 2-core CPU.
The run folder holds ``checkpoint.safetensors`` + ``state.json`` (resumable) and ``curves.png``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hmrkit.models.lite_i2l import LiteI2L, LiteI2LConfig, LixelOutput, crop_to_lixels, save_lite_i2l
from hmrkit.paths import cache_dir, package_dir, weights_dir
from hmrkit.train.options import config_parser
from hmrkit.train.schedule import learning_rate

DATA = package_dir().parent.parent / "shared" / "data"


@dataclass
class LiteI2LTrainConfig:
    data: str = ""  # the synthetic hand set (hmrkit synth hands)
    steps: int = 3000
    batch_size: int = 16
    lr: float = 5e-4
    warmup: int = 100
    input_size: int = 128
    # the paper's DwSE decoders by default (the shipped network); --skips / --mixing add skip
    # connections / pointwise convolutions (tried in docs/lite_i2l.md: no faster per CPU minute)
    skips: bool = False
    mixing: bool = False
    depth_range: float = 1.0  # LiteI2LConfig.depth_range (2.0 masks fewer depths; not what the shipped network used)
    seed: int = 0
    threads: int = 1  # on a shared 2-core machine a second thread mostly waits on the other jobs
    val_every: int = 200
    checkpoint_every: int = 50
    max_minutes: float = 0.0  # stop (and write the weights) after this much training time (0: no limit)
    grow_every: int = 100  # re-read the set's finished samples every N steps (0: never)
    max_samples: int = 0  # use only samples 0 .. N-1 of the set (0: all); same-size ablation arms
    real_data: str = str(DATA / "hands_ge2019_dev")  # validation only
    run_dir: str = ""  # default: <cache>/train/lite_i2l
    out: str = str(weights_dir() / "lite_i2l.safetensors")
    record: str = str(package_dir().parent / "benchmarks" / "results" / "lite_i2l_train")  # .json + .md ("" for none)
    resume: bool = False

    def run(self) -> Path:
        return Path(self.run_dir) if self.run_dir else cache_dir() / "train" / "lite_i2l"


# ------------------------------------------------------------------------------------- samples
@dataclass
class Batch:
    images: torch.Tensor  # (B, 3, S, S) in [0, 1], every hand a left hand
    joints: torch.Tensor  # (B, 21, 3) lixel targets
    vertices: torch.Tensor  # (B, V, 3)


def crop_targets(points3d: np.ndarray, camera: np.ndarray, wrist: np.ndarray, scale: float) -> np.ndarray:
    """(N, 3) camera-frame points -> (N, 3) crop pixels x, y (perspective) and wrist-relative depth
    in the same pixel units (``(Z - Z_wrist) * f / Z_wrist``), for an image resized by ``scale``."""
    fx, fy, cx, cy = camera
    z = points3d[:, 2]
    x = fx * points3d[:, 0] / z + cx
    y = fy * points3d[:, 1] / z + cy
    depth = (z - wrist[2]) * fx / wrist[2]
    return np.stack([x, y, depth], 1) * scale


def flip_sample(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A right hand as a left one: the image mirrored left-right, x -> W - 1 - x, depth unchanged."""
    flipped = points.copy()
    flipped[..., 0] = image.shape[1] - 1 - flipped[..., 0]
    return np.ascontiguousarray(image[:, ::-1]), flipped


def load_training_sample(root: Path, index: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image (size, size, 3) uint8 of a LEFT hand and its joints / vertices in crop pixels (+ depth)."""
    import cv2

    from hmrkit.synth.hand_dataset import load_sample

    image, label = load_sample(root, index)
    scale = size / image.shape[1]
    if image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    wrist = label.joints3d[0]
    # pixel centres at integers: resizing by s maps x to (x + 0.5) s - 0.5
    joints = crop_targets(label.joints3d, label.camera, wrist, 1.0)
    vertices = crop_targets(label.vertices, label.camera, wrist, 1.0)
    for p in (joints, vertices):
        p[:, :2] = (p[:, :2] + 0.5) * scale - 0.5
        p[:, 2] *= scale
    if label.side == "right":
        image, both = flip_sample(image, np.concatenate([joints, vertices]))
        joints, vertices = both[:21], both[21:]
    return image, joints.astype(np.float32), vertices.astype(np.float32)


def make_batch(root: Path, indices: list[int], config: LiteI2LConfig, rng: np.random.Generator | None) -> Batch:
    """Samples as network input and lixel targets; ``rng``: brightness / contrast / colour jitter."""
    images, joints, vertices = [], [], []
    for i in indices:
        image, j, v = load_training_sample(root, i, config.input_size)
        image = image.astype(np.float32) / 255.0
        if rng is not None:
            gain = rng.uniform(0.7, 1.3) * rng.uniform(0.9, 1.1, size=3)
            image = np.clip((image - image.mean()) * rng.uniform(0.7, 1.3) + image.mean() * gain, 0.0, 1.0).astype(np.float32)
        images.append(image)
        joints.append(j)
        vertices.append(v)
    to = lambda a: torch.from_numpy(np.stack(a))  # noqa: E731
    return Batch(to(images).permute(0, 3, 1, 2).contiguous(), crop_to_lixels(to(joints), config), crop_to_lixels(to(vertices), config))


# --------------------------------------------------------------------------------------- losses
def in_range(target: torch.Tensor, lixels: int) -> torch.Tensor:
    """(B, N, 3) mask of coordinates a soft-argmax over ``lixels`` can reach."""
    return ((target >= 0) & (target <= lixels - 1)).float()


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return ((pred - target).abs() * mask).sum() / mask.sum().clamp_min(1.0)


def edge_loss(pred: torch.Tensor, target: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """I2L's edge length loss: | |e_pred| - |e_gt| | over the three edges of every face."""
    loss = 0.0
    for a, b in ((0, 1), (1, 2), (2, 0)):
        lp = (pred[:, faces[:, a]] - pred[:, faces[:, b]]).norm(dim=-1)
        lt = (target[:, faces[:, a]] - target[:, faces[:, b]]).norm(dim=-1)
        loss = loss + (lp - lt).abs().mean()
    return loss / 3


def normal_loss(pred: torch.Tensor, target: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """I2L's normal loss: | e_pred . n_gt | for the edges of every face (unit vectors)."""
    t0, t1, t2 = (target[:, faces[:, k]] for k in range(3))
    normal = F.normalize(torch.linalg.cross(t1 - t0, t2 - t0), dim=-1)
    loss = 0.0
    for a, b in ((0, 1), (1, 2), (2, 0)):
        edge = F.normalize(pred[:, faces[:, a]] - pred[:, faces[:, b]], dim=-1)
        loss = loss + (edge * normal).sum(-1).abs().mean()
    return loss / 3


def losses(out: LixelOutput, batch: Batch, faces: torch.Tensor, lixels: int) -> dict[str, torch.Tensor]:
    jm, vm = in_range(batch.joints, lixels), in_range(batch.vertices, lixels)
    terms = {
        "joints": masked_l1(out.joints, batch.joints, jm),
        "mesh_joints": masked_l1(out.mesh_joints, batch.joints, jm),
        "vertices": masked_l1(out.vertices, batch.vertices, vm),
        "edge": edge_loss(out.vertices, batch.vertices, faces),
        "normal": normal_loss(out.vertices, batch.vertices, faces),
    }
    terms["total"] = terms["joints"] + terms["mesh_joints"] + terms["vertices"] + terms["edge"] + 0.1 * terms["normal"]
    return terms


# ----------------------------------------------------------------------------- joint regressor
def hand_joint_regressor(count: int = 256, neighbours: int = 24, seed: int = 0) -> torch.Tensor:
    """(21, 1596) rows summing to 1: each hand21 point as an affine combination of its
    ``neighbours`` nearest rest vertices, least squares over ``count`` random feasible poses and
    shapes of the Anny left hand (I2L's joint regressor, made for this mesh)."""
    from hmrkit.hands.hand_model import load_biomech_hand
    from hmrkit.hands.synth import SynthConfig, random_angles, random_shapes

    hand = load_biomech_hand("left")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        rest = hand(torch.zeros(1, 23), with_vertices=True)
        angles = random_angles(count, hand.axes, SynthConfig(), g)
        out = hand(angles, random_shapes(count, SynthConfig(), g), with_vertices=True)
    verts, joints = out.vertices.double(), out.joints.double()
    regressor = torch.zeros(21, verts.shape[1], dtype=torch.float64)
    for j in range(21):
        near = (rest.vertices[0] - rest.joints[0, j]).norm(dim=-1).topk(neighbours, largest=False).indices
        # affine: w = w0 + N c with sum(w) = 1, solved in the null space of the all-ones row
        a = verts[:, near].permute(0, 2, 1).reshape(-1, neighbours)  # (count * 3, k)
        b = joints[:, j].reshape(-1)
        w0 = torch.full((neighbours,), 1.0 / neighbours, dtype=torch.float64)
        basis = torch.linalg.svd(torch.ones(1, neighbours, dtype=torch.float64)).Vh[1:].T  # (k, k - 1)
        ridge = 1e-6 * torch.eye(neighbours - 1, dtype=torch.float64)
        m = a @ basis
        c = torch.linalg.solve(m.T @ m + ridge, m.T @ (b - a @ w0))
        regressor[j, near] = w0 + basis @ c
    return regressor.float()


# ---------------------------------------------------------------------------------- validation
def real_validation(net: LiteI2L, crops: tuple[torch.Tensor, torch.Tensor] | None) -> float | None:
    """PA-MPJPE (mm) of the PoseNet joints on the real crops (validation only; None without them)."""
    if crops is None:
        return None
    from hmrkit.eval.metrics import pa_mpjpe
    from hmrkit.hands.lite_i2l_estimator import lixels_to_side

    images, gt = crops
    net.eval()
    out = predict_lixels(net, images)
    net.train()
    pred = lixels_to_side(out.joints, net.config, ["left"] * len(gt))
    return float(pa_mpjpe(pred, gt).mean()) * 1000.0


def load_real_crops(root: Path, size: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The real crops as LEFT-hand network input and their joints (metres); None when absent.
    Every crop of this set is a left hand by its ground truth's chirality (``bench_lite_i2l.py``
    checks it), so none is flipped."""
    import cv2

    ann_path = root / "annotations.npz"
    if not ann_path.is_file():
        return None
    ann = np.load(ann_path, allow_pickle=False)
    images = []
    for name in ann["image_names"]:
        bgr = cv2.imread(str(root / "images" / str(name)), cv2.IMREAD_COLOR)
        images.append(cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (size, size), interpolation=cv2.INTER_AREA))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    return x.contiguous(), torch.tensor(ann["joints_cam_mm"], dtype=torch.float32) / 1000.0


@torch.no_grad()
def predict_lixels(net: LiteI2L, images: torch.Tensor, batch: int = 16) -> LixelOutput:
    parts = [net(images[i:i + batch]) for i in range(0, len(images), batch)]
    return LixelOutput(*(torch.cat([getattr(p, k) for p in parts]) for k in ("joints", "vertices", "mesh_joints")))


def synthetic_validation(net: LiteI2L, root: Path, indices: list[int], config: LiteI2LConfig) -> dict[str, float]:
    """Mean joint / vertex error in crop pixels on held-out samples, and PA-MPJPE in pixel units."""
    from hmrkit.eval.metrics import pa_mpjpe

    from hmrkit.models.lite_i2l import lixels_to_crop

    batch = make_batch(root, indices, config, None)
    net.eval()
    out = predict_lixels(net, batch.images)
    net.train()
    pj, tj = lixels_to_crop(out.joints, config), lixels_to_crop(batch.joints, config)
    pv, tv = lixels_to_crop(out.vertices, config), lixels_to_crop(batch.vertices, config)
    return {
        "val_joint_px": float((pj - tj).norm(dim=-1).mean()),
        "val_vertex_px": float((pv - tv).norm(dim=-1).mean()),
        "val_joint_2d_px": float((pj[..., :2] - tj[..., :2]).norm(dim=-1).mean()),
        "val_pa_joint_px": float(pa_mpjpe(pj, tj).mean()),
    }


# ------------------------------------------------------------------------------------- the run
def split(indices: list[int]) -> tuple[list[int], list[int]]:
    """Training and held-out samples (every 20th)."""
    return [i for i in indices if i % 20 != 19], [i for i in indices if i % 20 == 19]


def finished(root: Path, max_samples: int = 0) -> list[int]:
    """Finished samples, without the newest (its files may still be being written); with
    ``max_samples``, only indices below it (a fixed-seed set's first N: the same N samples a
    ``--count N`` run with that seed makes)."""
    from hmrkit.synth.hand_dataset import completed

    done = sorted(completed(root))[:-1]
    return [i for i in done if i < max_samples] if max_samples > 0 else done


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [h for h in history if "total" in h]
    val = [h for h in history if "val_joint_px" in h]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("total", "joints", "mesh_joints", "vertices", "edge", "normal"):
        axes[0].plot([h["step"] for h in train], [h[key] for h in train], label=key, lw=1)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_title("training losses (lixels)")
    axes[0].legend(fontsize=8)
    ax = axes[1]
    ax.plot([h["step"] for h in val], [h["val_joint_px"] for h in val], "o-", label="held-out synthetic: joint error (crop px)")
    ax.plot([h["step"] for h in val], [h["val_vertex_px"] for h in val], "o-", label="held-out synthetic: vertex error (crop px)")
    ax.set_xlabel("step")
    ax.legend(fontsize=8, loc="upper left")
    real = [h for h in val if h.get("val_real_pa_mpjpe_mm") is not None]
    if real:
        twin = ax.twinx()
        twin.plot([h["step"] for h in real], [h["val_real_pa_mpjpe_mm"] for h in real], "s--", color="black",
                  label="real hands_ge2019_dev: PA-MPJPE (mm)")
        twin.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def train(cfg: LiteI2LTrainConfig, log=print) -> dict:
    from hmrkit.hands.hand_model import load_biomech_hand
    from hmrkit.synth.hand_dataset import read_hand_manifest
    from hmrkit.train.hkmr import load_checkpoint, save_checkpoint

    if not cfg.data:
        raise ValueError("give the synthetic hand set: --data DIR (made by hmrkit synth hands)")
    root = Path(cfg.data)
    read_hand_manifest(root)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    run = cfg.run()
    run.mkdir(parents=True, exist_ok=True)
    config = LiteI2LConfig(input_size=cfg.input_size, skips=cfg.skips, mixing=cfg.mixing, depth_range=cfg.depth_range)
    faces = load_biomech_hand("left").faces
    net = LiteI2L(config, hand_joint_regressor()).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.lr)
    step, seconds, history = 0, 0.0, []
    if cfg.resume and (run / "checkpoint.safetensors").exists():
        meta = load_checkpoint(run, {"model": net}, {"model": optimizer})
        step, seconds, history = meta["step"], meta["seconds"], meta["history"]
        log(f"resumed at step {step}")
    else:
        net.load_imagenet()
    train_idx, held_idx = split(finished(root, cfg.max_samples))
    if len(train_idx) < cfg.batch_size:
        raise ValueError(f"{root}: {len(train_idx)} finished training samples, fewer than a batch ({cfg.batch_size})")
    real = load_real_crops(Path(cfg.real_data), config.input_size)
    log(f"{len(train_idx)} training samples, {len(held_idx)} held out; real validation crops: {0 if real is None else len(real[1])}")
    net.train()
    start = time.perf_counter() - seconds
    while step < cfg.steps:
        if cfg.grow_every and step % cfg.grow_every == 0 and step:
            new_train, new_held = split(finished(root, cfg.max_samples))
            if len(new_train) > len(train_idx):
                log(f"step {step}: the set grew to {len(new_train)} training samples")
            train_idx, held_idx = new_train, new_held
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        batch = make_batch(root, list(rng.choice(train_idx, cfg.batch_size, replace=False)), config, rng)
        terms = losses(net(batch.images), batch, faces, config.lixels)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        step += 1
        record = {"step": step, "seconds": round(time.perf_counter() - start, 1), "lr": learning_rate(cfg, step - 1),
                  **{k: round(float(v.detach()), 4) for k, v in terms.items()}}
        history.append(record)
        if step % 10 == 0:
            log(" ".join(f"{k} {v}" for k, v in record.items()))
        out_of_time = cfg.max_minutes > 0 and time.perf_counter() - start > 60 * cfg.max_minutes
        last = step == cfg.steps or out_of_time
        if (step % cfg.val_every == 0 or last) and held_idx:
            val = synthetic_validation(net, root, held_idx[:200], config)
            val["val_real_pa_mpjpe_mm"] = real_validation(net, real)
            history.append({"step": step, **{k: (None if v is None else round(v, 3)) for k, v in val.items()}})
            log(f"validation at step {step}: {history[-1]}")
        if step % cfg.checkpoint_every == 0 or last:
            meta = {"step": step, "seconds": time.perf_counter() - start, "history": history, "config": asdict(cfg)}
            save_checkpoint(run, {"model": net}, {"model": optimizer}, meta)
            plot_curves(history, run / "curves.png")
        if out_of_time:
            log(f"stopped at step {step} of {cfg.steps}: --max-minutes {cfg.max_minutes} reached")
            break
    seconds = time.perf_counter() - start
    vals = [h for h in history if "val_joint_px" in h]
    summary = {
        "steps": step, "batch_size": cfg.batch_size, "seconds": round(seconds, 1), "config": asdict(cfg),
        "net": asdict(config), "parameters": sum(p.numel() for p in net.parameters()),
        "samples": {"train": len(train_idx), "held_out": len(held_idx)},
        "final_validation": vals[-1] if vals else None,
        "machine": f"{os.cpu_count()} CPU cores (shared with other jobs), {platform.machine()}, {cfg.threads} thread(s), "
                   f"load average {os.getloadavg()[0]:.1f} at the end",
    }
    save_lite_i2l(net, cfg.out, {"steps": str(step), "seconds": f"{seconds:.0f}", "data": str(root)})
    (run / "summary.json").write_text(json.dumps(summary, indent=1))
    if cfg.record:
        write_record(Path(cfg.record), summary, history, run / "curves.png")
    log(f"wrote {cfg.out} ({seconds:.0f} s, {step} steps)")
    return summary


def write_record(stem: Path, summary: dict, history: list[dict], curves: Path) -> None:
    """``stem.json`` (summary and curve points), ``stem.md`` (a short table) and ``stem.png`` (the curves)."""
    import shutil

    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps({**summary, "history": history}, indent=1))
    if curves.exists():
        shutil.copyfile(curves, stem.with_suffix(".png"))
    rows = [f"| {h['step']} | {h['val_joint_px']:.2f} | {h['val_joint_2d_px']:.2f} | {h['val_vertex_px']:.2f} | "
            f"{'-' if h.get('val_real_pa_mpjpe_mm') is None else format(h['val_real_pa_mpjpe_mm'], '.1f')} |"
            for h in history if "val_joint_px" in h]
    cfg = summary["config"]
    stem.with_suffix(".md").write_text("\n".join([
        "# Lite I2L MeshNet training run (hmrkit.train.lite_i2l)", "",
        f"Machine: {summary['machine']}. {summary['steps']} steps of batch {summary['batch_size']} at "
        f"{summary['net']['input_size']} px in {summary['seconds']:.0f} s; {summary['parameters']} parameters; "
        f"synthetic set `{cfg['data']}` ({summary['samples']['train']} training samples at the end, "
        f"{summary['samples']['held_out']} held out).", "",
        "Validation: held-out synthetic samples (up to 200; errors in crop pixels of the "
        f"{summary['net']['input_size']} px input, 3D = x, y and wrist-relative depth in pixel units) and the real "
        "`hands_ge2019_dev` crops (PoseNet joints, PA-MPJPE in mm; validation only, never trained on or used to pick a step).", "",
        "| step | synthetic joint error 3D (px) | 2D (px) | vertex error 3D (px) | real PA-MPJPE (mm) |",
        "|---|---|---|---|---|", *rows, ""]))


def parse_args(argv: list[str] | None = None) -> LiteI2LTrainConfig:
    parser = config_parser(LiteI2LTrainConfig, "hmrkit train lite-i2l", __doc__.splitlines()[0])
    return LiteI2LTrainConfig(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        train(cfg)
    except ValueError as error:  # bad data or options: one line
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
