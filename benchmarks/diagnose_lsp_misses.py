"""Why lspet_dev people go unfound: perception alone, each labelled person sorted by what happened.

    python benchmarks/diagnose_lsp_misses.py [--limit 1000]

``MediaPipeBackend.detect`` (the pipeline's perception, default settings) on the first ``--limit``
lspet_dev photos. A labelled person (torso labelled) is *found* when a reported body's landmarks lie
within one torso length of the labels on average (bench_pipeline's matching). The others fall into:
- nobody reported: no body at all in the photo;
- found with the sides swapped: a body matches once the labels' left and right are exchanged
  (LSPET's crowd-sourced labels mix up sides on people seen from behind or upside down, and
  MediaPipe swaps sides too: from the photo alone it is often not clear which is wrong);
- near but off: the nearest body lies within two torso lengths (on the person, landmarks wrong);
- someone else only: every body reported lies further away (bystanders found, the athlete not).
Results: benchmarks/results/lsp_misses.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bench_common import ROOT, machine, write  # the script's own folder
from bench_pipeline import load_lsp, torso

sys.path.insert(0, str(ROOT))

from hmrkit.body.conventions import MEDIAPIPE33, sides_swapped  # noqa: E402
from hmrkit.io.images import load_image  # noqa: E402
from hmrkit.perception import MediaPipeBackend, MediaPipeConfig  # noqa: E402

KINDS = ("found", "nobody reported", "found with the sides swapped", "near but off", "someone else only")


def mean_distance(xy: np.ndarray, gt: np.ndarray, ok: np.ndarray, size: float) -> float:
    return float(np.mean(np.linalg.norm(xy[ok] - gt[ok], axis=1)) / size)


def classify(bodies: list[np.ndarray], gt: np.ndarray, labelled: np.ndarray, size: float, swap: np.ndarray) -> str:
    """``bodies``: each reported body's landmarks in the label's joint order (nan where MediaPipe has none)."""
    if not bodies:
        return KINDS[1]
    ok = labelled & ~np.isnan(bodies[0][:, 0])
    plain = min(mean_distance(b, gt, ok, size) for b in bodies)
    if plain < 1.0:
        return KINDS[0]
    if min(mean_distance(b, gt[swap], ok[swap], size) for b in bodies) < 1.0:
        return KINDS[2]
    return KINDS[3] if plain < 2.0 else KINDS[4]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=1000)
    args = ap.parse_args()
    conv, items = load_lsp(args.limit)
    index = np.array([MEDIAPIPE33.index(n) if n in MEDIAPIPE33.names else -1 for n in conv.names])
    swap = np.array(sides_swapped(conv.names))
    kinds: dict[str, list[str]] = {k: [] for k in KINDS}
    start = time.time()
    with MediaPipeBackend(MediaPipeConfig()) as backend:
        for path, labels in items:
            gt, labelled = labels[0]
            size = torso(gt, labelled, conv)
            if size <= 0:
                continue
            loaded = load_image(path)
            bodies = []
            for person in backend.detect(loaded.rgb).people:
                if person.body is not None:
                    xy = (person.body.xy + 0.5) / loaded.scale - 0.5
                    bodies.append(np.where((index >= 0)[:, None], xy[np.maximum(index, 0)], np.nan))
            kinds[classify(bodies, gt, labelled, size, swap)].append(path.name)
    people = sum(len(v) for v in kinds.values())
    payload = {"machine": machine(with_load=True), "command": f"python benchmarks/diagnose_lsp_misses.py --limit {args.limit}",
               "photos": len(items), "labelled_people": people, "seconds": round(time.time() - start),
               "counts": {k: len(v) for k, v in kinds.items()}, "photos_by_kind": {k: v for k, v in kinds.items() if k != "found"}}
    lines = ["# Why lspet_dev people go unfound (perception alone)", "",
             f"Machine: {payload['machine']}. Command: `{payload['command']}`. {people} labelled people in "
             f"{len(items)} photos; MediaPipeBackend.detect with the default settings. The kinds are explained in "
             "the script's docstring; the photos of each kind are in the JSON.", "",
             "| kind | people | share |", "|---|---|---|"]
    lines += [f"| {k} | {n} | {n / max(people, 1):.3f} |" for k, n in payload["counts"].items()]
    write("lsp_misses", payload, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
