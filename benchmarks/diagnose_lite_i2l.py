"""Why did Lite I2L MeshNet not learn (issue 17)? The checks behind docs/lite_i2l.md's diagnosis.

    python benchmarks/diagnose_lite_i2l.py [--weights A.safetensors B.safetensors ...] [--figure F.jpg]
    python benchmarks/diagnose_lite_i2l.py --overfit-steps 250          (only (c))

(a) Labels: on 200 training samples as the trainer reads them (96 px): the share of lixel
    coordinates outside the soft-argmax range per axis (masked by the loss) for the depth ranges
    1 and 2, and the chirality of every hand after the right hands' flip (all must be left hands).
(b) Each weights file on 96 training and 96 held-out samples of ``/work/hands_synth/train``:
    the PoseNet's mean 2D joint error (crop px) in eval and in training mode (batch statistics),
    split into the error of the joints' centroid and of the joints around it, and the spread of
    the predicted joints around their centroid against the labels' (a net that hedges shrinks it).
(c) Overfit: 32 fixed training samples, no augmentation, batch 16, Adam 5e-4 (20 warm-up steps),
    from ImageNet, the current model code at 96 px (skips and depth range as the trainer's
    defaults): the 2D error on those samples, PoseNet and MeshNet joints, eval and training mode.
(d) ``--figure``: each weights file's joints (red; one row per file, in order) and the labels
    (green) on the same 8 held-out samples.

Writes benchmarks/results/lite_i2l_diagnosis.json and .md ((a), (b)) or, with --overfit-steps,
lite_i2l_overfit.json and .md ((c) alone). One torch thread.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import machine, write  # noqa: E402

from hmrkit.models.lite_i2l import LiteI2L, LiteI2LConfig, lixels_to_crop, load_lite_i2l  # noqa: E402
from hmrkit.train.lite_i2l import Batch, LiteI2LTrainConfig, finished, hand_joint_regressor, losses, make_batch, split  # noqa: E402

TRAIN = Path("/work/hands_synth/train")
SIZE = 96
BONES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11), (11, 12),
         (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20)]


def label_checks(indices: list[int]) -> dict:
    out = {"samples": len(indices), "outside_lixel_range": {}}
    for depth_range in (1.0, 2.0):
        config = LiteI2LConfig(input_size=SIZE, depth_range=depth_range)
        batch = make_batch(TRAIN, indices, config, None)
        row = {}
        for name, t in (("joints", batch.joints), ("vertices", batch.vertices)):
            outside = (t < 0) | (t > config.lixels - 1)
            row[name] = {axis: round(float(outside[..., k].float().mean()), 4) for k, axis in enumerate("xyz")}
        out["outside_lixel_range"][f"depth_range_{depth_range:g}"] = row
    # chirality of the flipped targets: det(index MCP, little MCP, thumb MCP) around the wrist, in
    # crop pixels (x right, y down, depth forward); Anny's left hand's sign for every sample
    j = batch.joints
    det = torch.linalg.det(torch.stack([j[:, 5] - j[:, 0], j[:, 17] - j[:, 0], j[:, 2] - j[:, 0]], 1))
    out["chirality_left_share"] = round(float((det < 0).float().mean()), 3)
    return out


@torch.no_grad()
def joint_errors(net: LiteI2L, images: torch.Tensor, target: torch.Tensor, train_mode: bool) -> dict:
    net.train(train_mode)
    pred = torch.cat([lixels_to_crop(net(images[i:i + 32]).joints, net.config) for i in range(0, len(images), 32)])
    net.eval()
    p, t = pred[..., :2], target[..., :2]
    pc, tc = p.mean(1, keepdim=True), t.mean(1, keepdim=True)
    return {"joint_2d_px": round(float((p - t).norm(dim=-1).mean()), 2),
            "centroid_px": round(float((pc - tc).norm(dim=-1).mean()), 2),
            "around_centroid_px": round(float(((p - pc) - (t - tc)).norm(dim=-1).mean()), 2),
            "predicted_spread_px": round(float((p - pc).norm(dim=-1).mean()), 2),
            "label_spread_px": round(float((t - tc).norm(dim=-1).mean()), 2)}


def weights_checks(path: str, train_idx: list[int], held_idx: list[int]) -> tuple[dict, LiteI2L]:
    net, meta = load_lite_i2l(path)
    out = {"steps": meta.get("steps"), "config": meta.get("config")}
    for name, idx in (("training_samples", train_idx), ("held_out_samples", held_idx)):
        batch = make_batch(TRAIN, idx, net.config, None)
        target = lixels_to_crop(batch.joints, net.config)
        out[name] = {"eval_mode": joint_errors(net, batch.images, target, False),
                     "training_mode": joint_errors(net, batch.images, target, True)}
    return out, net


def overfit_config() -> LiteI2LConfig:
    defaults = LiteI2LTrainConfig()
    return LiteI2LConfig(input_size=SIZE, skips=defaults.skips, mixing=defaults.mixing, depth_range=defaults.depth_range)


def overfit(steps: int) -> list[dict]:
    from hmrkit.hands.hand_model import load_biomech_hand

    config = overfit_config()
    torch.manual_seed(0)
    net = LiteI2L(config, hand_joint_regressor()).to(memory_format=torch.channels_last)
    net.load_imagenet()
    faces = load_biomech_hand("left").faces
    full = make_batch(TRAIN, list(range(32)), config, None)
    target = lixels_to_crop(full.joints, config)[..., :2]
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-4)
    rng = np.random.default_rng(0)
    curve, start = [], time.perf_counter()
    for step in range(1, steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = 5e-4 * min(1.0, step / 20)
        pick = torch.from_numpy(rng.choice(32, 16, replace=False))
        net.train()
        terms = losses(net(full.images[pick]), Batch(full.images[pick], full.joints[pick], full.vertices[pick]), faces, config.lixels)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        if step % 50 == 0 or step == steps:
            row = {"step": step, "seconds": round(time.perf_counter() - start)}
            for mode in (False, True):
                net.train(mode)
                with torch.no_grad():
                    out = net(full.images)
                key = "training_mode" if mode else "eval_mode"
                row[key] = {name: round(float((lixels_to_crop(t, config)[..., :2] - target).norm(dim=-1).mean()), 2)
                            for name, t in (("posenet_2d_px", out.joints), ("meshnet_joints_2d_px", out.mesh_joints))}
            curve.append(row)
            print(row, flush=True)
    return curve


def figure(nets: list[LiteI2L], indices: list[int], path: Path) -> None:
    import cv2

    rows, zoom = [], 2
    for net in nets:
        batch = make_batch(TRAIN, indices, net.config, None)
        with torch.no_grad():
            pred = lixels_to_crop(net(batch.images).joints, net.config)
        target = lixels_to_crop(batch.joints, net.config)
        tiles = []
        for k in range(len(indices)):
            image = np.ascontiguousarray((batch.images[k].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
            image = cv2.resize(image, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
            for points, colour in ((target[k], (0, 220, 0)), (pred[k], (230, 0, 0))):
                px = ((points[:, :2].numpy() + 0.5) * zoom - 0.5).round().astype(int)
                for a, b in BONES:
                    cv2.line(image, tuple(map(int, px[a])), tuple(map(int, px[b])), colour, 2, cv2.LINE_AA)
            tiles.append(image)
        rows.append(np.concatenate(tiles, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 75])


def table(result: dict) -> str:
    lines = ["# Lite I2L MeshNet: diagnosis (issue 17)", "", f"Machine: {result['machine']}. "
             "`python benchmarks/diagnose_lite_i2l.py` (" + " ".join(result["argv"]) + "); samples of "
             f"`{TRAIN}` read as the trainer reads them ({SIZE} px, right hands flipped).", ""]
    lab = result["labels"]
    lines += [f"**Labels** ({lab['samples']} training samples): hands that are left hands after the flip: "
              f"{lab['chirality_left_share']:.3f}. Coordinates outside the soft-argmax range (masked by the loss):", "",
              "| depth range | joints x / y / z | vertices x / y / z |", "|---|---|---|"]
    for name, row in lab["outside_lixel_range"].items():
        lines.append(f"| {name.split('_')[-1]} | " + " | ".join(" / ".join(f"{row[p][a]:.4f}" for a in "xyz") for p in ("joints", "vertices")) + " |")
    lines += ["", "**Weights** (PoseNet joints, 2D, crop px of the 96 px input; 96 samples each):", "",
              "| weights | samples | mode | joint error | centroid error | error around the centroid | predicted spread | label spread |",
              "|---|---|---|---|---|---|---|---|"]
    for path, w in result["weights"].items():
        for samples in ("training_samples", "held_out_samples"):
            for mode in ("eval_mode", "training_mode"):
                r = w[samples][mode]
                lines.append(f"| `{Path(path).name}` ({w['steps']} steps) | {samples.split('_')[0]} | {mode.split('_')[0]} | "
                             f"{r['joint_2d_px']:.2f} | {r['centroid_px']:.2f} | {r['around_centroid_px']:.2f} | "
                             f"{r['predicted_spread_px']:.2f} | {r['label_spread_px']:.2f} |")
    return "\n".join(lines) + "\n"


def overfit_table(result: dict) -> str:
    lines = ["# Lite I2L MeshNet: overfit test (issue 17)", "", f"Machine: {result['machine']}. "
             f"`python benchmarks/diagnose_lite_i2l.py --overfit-steps {result['steps']}`: 32 fixed samples of `{TRAIN}` "
             f"(0-31, {SIZE} px, right hands flipped), no augmentation, batch 16, Adam 5e-4 (20 warm-up steps), ImageNet "
             f"initialisation, the trainer's default network ({result['net']}). Mean 2D joint error on those 32 samples "
             "(crop px), PoseNet joints / MeshNet joints (regressor @ vertices):", "",
             "| step | seconds | eval mode | training mode (batch statistics) |", "|---|---|---|---|"]
    for r in result["curve"]:
        lines.append(f"| {r['step']} | {r['seconds']} | {r['eval_mode']['posenet_2d_px']:.2f} / {r['eval_mode']['meshnet_joints_2d_px']:.2f} | "
                     f"{r['training_mode']['posenet_2d_px']:.2f} / {r['training_mode']['meshnet_joints_2d_px']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="*", default=["hmrkit/weights/lite_i2l.safetensors"])
    parser.add_argument("--overfit-steps", type=int, default=0)
    parser.add_argument("--figure", default="")
    args = parser.parse_args()
    if not TRAIN.is_dir():
        raise SystemExit(f"{TRAIN} not found: make it with hmrkit synth hands (docs/lite_i2l.md)")
    torch.set_num_threads(1)
    if args.overfit_steps:
        curve = overfit(args.overfit_steps)
        config = overfit_config()
        result = {"steps": args.overfit_steps, "net": f"skips {config.skips}, mixing {config.mixing}, depth range {config.depth_range:g}",
                  "curve": curve, "machine": machine(with_load=True)}
        write("lite_i2l_overfit", result, overfit_table(result))
        return
    train_idx, held_idx = split(finished(TRAIN))
    result = {"argv": sys.argv[1:], "labels": label_checks(train_idx[:200]), "weights": {}}
    nets = []
    for path in args.weights:
        result["weights"][path], net = weights_checks(path, train_idx[:96], held_idx[:96])
        nets.append(net)
    if args.figure and nets:
        figure(nets, held_idx[:8], Path(args.figure))
    result["machine"] = machine(with_load=True)
    write("lite_i2l_diagnosis", result, table(result))


if __name__ == "__main__":
    main()
