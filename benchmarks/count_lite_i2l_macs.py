"""Multiply-accumulates of Lite I2L MeshNet per crop, by module (the paper's Tab. 1 / 2 split).

    python benchmarks/count_lite_i2l_macs.py

Counted with torch.utils.flop_counter (FLOPs of convolutions and matrix products / 2 = MACs; batch
norm, activations and the soft-argmax are not counted) at the paper's
256 x 256 input, at 128 x 128 (the synthetic set's size) and at 96 x 96 (the shipped weights'). The paper's limit:
3.75 GMACs at 256 x 256. The shipped weights take 96 x 96 crops. Writes benchmarks/results/lite_i2l_macs.json and .md.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from hmrkit.models.lite_i2l import LiteI2L, LiteI2LConfig

RESULTS = Path(__file__).resolve().parent / "results"
LIMIT_GMACS = 3.75
MODULES = {"pose backbone": "pose_backbone", "pose decoder + lixel heads": "pose_head",
           "heatmap aggregation": "aggregation", "mesh backbone": "mesh_backbone", "mesh decoder + lixel heads": "mesh_head"}


def count(size: int) -> dict:
    """GMACs of one crop of ``size`` px: total and per module."""
    net = LiteI2L(LiteI2LConfig(input_size=size)).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.rand(1, 3, size, size))
    per_module = counter.get_flop_counts()
    total = counter.get_total_flops() / 2e9
    modules = {}
    for label, name in MODULES.items():
        key = next(k for k in per_module if k.split(".")[-1] == name)
        modules[label] = round(sum(per_module[key].values()) / 2e9, 4)
    return {"input": size, "gmacs": round(total, 4), "modules": modules,
            "parameters_millions": round(sum(p.numel() for p in net.parameters()) / 1e6, 3)}


def main() -> None:
    rows = [count(256), count(128), count(96)]
    out = {"limit_gmacs_at_256": LIMIT_GMACS, "under_limit": rows[0]["gmacs"] <= LIMIT_GMACS, "counts": rows,
           "counter": f"torch.utils.flop_counter (torch {torch.__version__})", "machine": platform.machine()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lite_i2l_macs.json").write_text(json.dumps(out, indent=1))
    head = "| input | total GMACs | " + " | ".join(MODULES) + " | parameters (M) |"
    lines = ["# Lite I2L MeshNet: multiply-accumulates per crop", "",
             f"`python benchmarks/count_lite_i2l_macs.py` ({out['counter']}; a count, not a timing: the machine does not matter). "
             f"The paper's limit: {LIMIT_GMACS} GMACs at 256 x 256 (its Tab. 2).", "",
             head, "|" + "---|" * (len(MODULES) + 3)]
    for r in rows:
        lines.append(f"| {r['input']} x {r['input']} | {r['gmacs']:.3f} | " + " | ".join(f"{r['modules'][k]:.3f}" for k in MODULES)
                     + f" | {r['parameters_millions']:.2f} |")
    (RESULTS / "lite_i2l_macs.md").write_text("\n".join(lines + [""]))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
