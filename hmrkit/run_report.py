"""``hmrkit run --report FILE``: what happened to every input of a run, machine-readable.

Each input found is listed once with its status: ``done`` (its files written, listed), ``skipped``
(already done by an earlier run; ``--overwrite`` redoes it), ``failed`` (the one-line error said on
stderr) or ``not_run`` (the run stopped before it: Ctrl-C; a rerun does it, and skips what is done).
Paths given that are neither files nor folders with inputs are listed under ``problems``. The
file is written at the end of the run, also when it is interrupted, through a temporary file and
a rename, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = "hmrkit.run_report"
STATUSES = ("done", "skipped", "failed", "not_run")


@dataclass
class RunReport:
    inputs: dict[str, dict] = field(default_factory=dict)  # input path -> {"status", "error"?, "outputs"?}
    problems: list[str] = field(default_factory=list)
    interrupted: bool = False

    def expect(self, paths: list[Path]) -> None:
        for path in paths:
            self.inputs.setdefault(str(path), {"status": "not_run"})

    def skipped(self, path: Path) -> None:
        self.inputs[str(path)] = {"status": "skipped"}

    def done(self, path: Path, outputs: list[Path] | None = None) -> None:
        self.inputs[str(path)] = {"status": "done", **({"outputs": [str(p) for p in outputs]} if outputs else {})}

    def failed(self, path: Path, error: str) -> None:
        self.inputs[str(path)] = {"status": "failed", "error": error}

    def counts(self) -> dict[str, int]:
        return {s: sum(entry["status"] == s for entry in self.inputs.values()) for s in STATUSES}

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "schema_version": "1.0", "interrupted": self.interrupted, "counts": self.counts(),
                "problems": list(self.problems), "inputs": [{"path": p, **entry} for p, entry in self.inputs.items()]}

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.tmp")
        partial.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        os.replace(partial, path)
