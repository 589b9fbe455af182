"""What the benchmark scripts share: where things are, the machine line, writing results."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
# the demo photos (not the hand close-ups in demo_images/hands), in name order
DEMO_PHOTOS = sorted(p for p in (DATA / "demo_images").glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def machine(with_load: bool = False) -> str:
    """The machine line of a result file (cores, CPU only, torch; optionally the load now)."""
    line = f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), CPU only, torch {torch.__version__}"
    if with_load:
        line += f", 1-minute load average {os.getloadavg()[0]:.1f} at the end of the run (other jobs shared the cores when above ~1)"
    return line


def write(name: str, payload: dict, table: str) -> None:
    """``results/<name>.json`` and ``results/<name>.md``; the table is printed too."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=1))
    (RESULTS / f"{name}.md").write_text(table)
    print(table)
