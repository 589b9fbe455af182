"""Validation curves of several Lite I2L training runs side by side (issue 17's decoder choices).

    python benchmarks/compare_lite_i2l_runs.py NAME=RUN_DIR_OR_RECORD [...] [--note TEXT]

Each argument names a run folder of ``hmrkit train lite-i2l`` (its ``state.json``: the checkpoint's
history) or a trainer record (``lite_i2l_train.json``). The table gives the held-out synthetic 2D
joint error (PoseNet joints, px of the crop) at every validation step the runs share, with each
run's network options and step schedule. Seconds are not compared: the runs shared the 2 cores
with each other and with other jobs. Writes benchmarks/results/lite_i2l_runs.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import machine, write  # noqa: E402


def gmacs(input_size: int, skips: bool, mixing: bool) -> float:
    """Multiply-accumulates of one crop for that network (torch.utils.flop_counter; a count, not a timing)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from hmrkit.models.lite_i2l import LiteI2L, LiteI2LConfig

    net = LiteI2L(LiteI2LConfig(input_size=input_size, skips=skips, mixing=mixing)).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.rand(1, 3, input_size, input_size))
    return round(counter.get_total_flops() / 2e9, 3)


def read_run(path: Path) -> dict:
    """``{"config", "curve": {step: 2D px}, "steps"}`` of a run folder or a trainer record."""
    data = json.loads((path / "state.json").read_text() if path.is_dir() else path.read_text())
    config = data["config"]
    curve = {h["step"]: h["val_joint_2d_px"] for h in data["history"] if "val_joint_2d_px" in h}
    clock = {h["step"]: h["seconds"] for h in data["history"] if "seconds" in h and h["step"] in curve}
    return {"source": str(path), "steps_done": data.get("step", data.get("steps")), "schedule_steps": config["steps"],
            "lr": config["lr"], "batch_size": config["batch_size"], "input_size": config["input_size"],
            "skips": config.get("skips", False), "mixing": config.get("mixing", False),
            "depth_range": config.get("depth_range", 1.0), "curve": curve, "seconds": clock,
            "gmacs": gmacs(config["input_size"], config.get("skips", False), config.get("mixing", False))}


def table(result: dict) -> str:
    runs = result["runs"]
    steps = sorted(set.union(*(set(r["curve"]) for r in runs.values())))
    lines = ["# Lite I2L MeshNet: training runs compared (issue 17)", "",
             f"`python benchmarks/compare_lite_i2l_runs.py {' '.join(result['argv'])}`. Machine: {result['machine']}. "
             "Held-out synthetic 2D joint error (PoseNet joints, mean over 200 held-out samples of the training set, px of "
             "the crop) at the validation steps; '-' where a run has no point. Seconds are not compared (the runs shared the "
             "cores with each other and with other jobs).", ""]
    if result.get("note"):
        lines += [result["note"], ""]
    lines += ["| run | input px | GMACs per crop | batch | lr | schedule (steps) | steps done | skips | mixing | depth range |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        lines.append(f"| {name} | {r['input_size']} | {r['gmacs']:.3f} | {r['batch_size']} | {r['lr']:g} | {r['schedule_steps']} | {r['steps_done']} | "
                     f"{r['skips']} | {r['mixing']} | {r['depth_range']:g} |")
    lines += ["", "| step | " + " | ".join(runs) + " |", "|---" * (len(runs) + 1) + "|"]
    for step in steps:
        cells = [f"{r['curve'][step]:.2f}" if step in r["curve"] else "-" for r in runs.values()]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    lines += ["", "Training seconds at those steps (wall clock of each run, resumed runs counted on; shared cores, so "
              "only a rough guide):", "", "| step | " + " | ".join(runs) + " |", "|---" * (len(runs) + 1) + "|"]
    for step in steps:
        cells = [f"{r['seconds'][step]:.0f}" if step in r["seconds"] else "-" for r in runs.values()]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=PATH")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    runs = {}
    for spec in args.runs:
        name, _, path = spec.partition("=")
        if not path or not Path(path).exists():
            raise SystemExit(f"error: {spec}: give NAME=PATH of an existing run folder or trainer record")
        runs[name] = read_run(Path(path))
    result = {"argv": sys.argv[1:], "note": args.note, "runs": runs, "machine": machine(with_load=False)}
    write("lite_i2l_runs", result, table(result))


if __name__ == "__main__":
    main()
