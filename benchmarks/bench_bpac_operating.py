"""BPAC-Net's operating points: what each threshold on P(present) finds, and whom it wrongly flags.

    .venv/bin/python benchmarks/bench_bpac_operating.py [--weights PATH] [--name bpac_operating]
        [--a3d-test /work/a3d/test,/work/a3d/test_v2] [--thresholds 0.1,0.15,...]

A limb is called absent when its P(present) (mirror-averaged, as the pipeline decides) is below
the threshold (``hmrkit run --limb-threshold P``; the default is the threshold calibrated when the
net was trained). For the shipped threshold and each of ``--thresholds``:
- real intact people never trained or calibrated on: everyone today's perception finds in the odd
  ``lspet_dev`` photos and in ``coco_mini_dev``, as ``hmrkit run`` finds them (``MediaPipeBackend``
  with the pipeline's settings, hands off as in ``bench_ajahr.py real``; not bench_bpac.py's cached
  people, found by an earlier perception): how many get any limb called absent (the issue's
  target: at most 1 %), per set and in all;
- held-out A3D sets (never trained on): the share of absent limbs called absent, and at the right
  level; the share of synthetic people with every limb present who get one called absent;
- held-out real photos with a limb erased (the rows of ``benchmarks/results/bpac_erased.json``,
  written by bench_bpac_erased.py with the same weights: the erased limb's P(present) there): the
  share of erased limbs called absent.
With ``--train-run RUN_FOLDER`` (the trainer's run folder), also where the shipped threshold came
from: the trainer's calibration (``hmrkit.train.bpac.calibrate``) takes the largest threshold at
which at most 0.5 % of its 194 held-out real intact people and at most 2 % of its held-out
synthetic intact people get a limb called absent; the bench gives both limits.
So a user who knows that limb differences are common among the people they film (a clinic) can
pick a higher threshold knowing what it costs. Writes ``benchmarks/results/<name>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ajahr import real_photos  # noqa: E402
from bench_bpac_diagnosis import training_slices  # noqa: E402
from bench_common import RESULTS, machine, write  # noqa: E402

from hmrkit.io.images import load_image  # noqa: E402
from hmrkit.models.bpac_net import BpacClassifier, decide  # noqa: E402
from hmrkit.perception import MediaPipeBackend, MediaPipeConfig  # noqa: E402
from hmrkit.train.bpac import BpacTrainConfig, predict, prepare_a3d, rate_limit  # noqa: E402

DEFAULT_THRESHOLDS = "0.1,0.15,0.2,0.25,0.3,0.4,0.5"


def real_present(classifier: BpacClassifier) -> dict[str, np.ndarray]:
    """Per set, (N, 4) P(present) of every real intact person never trained or calibrated on, found
    as ``hmrkit run`` finds them."""
    out = {}
    with MediaPipeBackend(MediaPipeConfig(hands=False)) as backend:
        for name, photos in real_photos().items():
            parts = [np.zeros((0, 4))]
            for photo in photos:
                rgb = load_image(photo).rgb
                people = [p for p in backend.detect(rgb).people if p.body is not None]
                parts.append(classifier.probabilities(rgb, people)[..., 0])
            out[name] = np.concatenate(parts)
    return out


def erased_present(weights: str) -> np.ndarray:
    """P(present) of each erased limb in bench_bpac_erased.py's committed rows (same weights)."""
    path = RESULTS / "bpac_erased.json"
    payload = json.loads(path.read_text())
    if payload["weights"] != weights:
        raise SystemExit(f"error: {path} was written for weights {payload['weights']}, not {weights}: run bench_bpac_erased.py first")
    return np.array([row["erased"]["p_present"] for row in payload["rows"]])


def operating_point(threshold: float, real: dict[str, np.ndarray], a3d: dict[str, tuple[np.ndarray, np.ndarray]],
                    erased: np.ndarray) -> dict:
    per_set = {name: int((p.min(1) < threshold).sum()) for name, p in real.items()}
    people = sum(len(p) for p in real.values())
    row: dict = {"threshold": round(threshold, 4), "real_people": people, "real_people_flagged": sum(per_set.values()),
                 "real_false_amputation_rate": sum(per_set.values()) / people,
                 "real_by_set": {name: {"people": len(real[name]), "flagged": n} for name, n in per_set.items()}, "a3d": {},
                 "erased_limbs": len(erased), "erased_called_absent": float((erased < threshold).mean())}
    for name, (probs, labels) in a3d.items():
        pred, absent = decide(probs, np.full(labels.shape[1], threshold)), labels > 0
        intact = ~absent.any(1)
        row["a3d"][name] = {"absent_limbs": int(absent.sum()), "absent_recall": float((pred[absent] > 0).mean()),
                            "absent_level_accuracy": float((pred[absent] == labels[absent]).mean()),
                            "intact_people": int(intact.sum()),
                            "intact_people_flagged": float((pred[intact] > 0).any(1).mean())}
    return row


def calibration_limits(classifier: BpacClassifier, run: Path, train_roots: list[Path]) -> dict:
    """The two limits of the trainer's calibration, from its held-out slices (``training_slices``)."""
    cfg = BpacTrainConfig()
    real, synth_intact, _ = training_slices(classifier, train_roots, run)
    return {"real_people": len(real), "real_lowest": [round(float(v), 4) for v in np.sort(real.min(1))[:3]],
            "real_limit": round(rate_limit(real, cfg.false_rate), 4),
            "synthetic_intact_people": len(synth_intact),
            "synthetic_limit": round(rate_limit(synth_intact, cfg.synth_false_rate), 4)}


def table(payload: dict) -> str:
    sets = list(payload["points"][0]["a3d"])
    lines = ["# BPAC-Net's operating points: the threshold on P(present) against what it finds and whom it flags", "",
             f"Machine: {payload['machine']}. Command: `{payload['command']}`. Weights: {payload['weights']}.", "",
             "A limb is called absent when its P(present) is below the threshold (`hmrkit run --limb-threshold P`). "
             "Real intact people: everyone today's perception finds (as `hmrkit run` does) in the odd `lspet_dev` photos "
             "and in `coco_mini_dev`, never trained or calibrated on. A3D: held-out synthetic sets. Erased: held-out real people with one limb erased "
             "(`bpac_erased.json`'s rows).", "",
             "| threshold | real intact people flagged (" + ", ".join(payload["points"][0]["real_by_set"]) + ") | " + " | ".join(f"{s}: absent limbs found / at the right level / intact people flagged"
                                                            for s in sets) + " | erased real limbs called absent |",
             "|---|---|" + "---|" * len(sets) + "---|"]
    for p in payload["points"]:
        label = f"{p['threshold']} (shipped)" if p["shipped"] else f"{p['threshold']}"
        cells = [f"{p['a3d'][s]['absent_recall']:.1%} / {p['a3d'][s]['absent_level_accuracy']:.1%} / "
                 f"{p['a3d'][s]['intact_people_flagged']:.1%}" for s in sets]
        by_set = ", ".join(f"{v['flagged']} of {v['people']}" for v in p["real_by_set"].values())
        lines.append(f"| {label} | {p['real_people_flagged']} of {p['real_people']} ({p['real_false_amputation_rate']:.2%}; {by_set}) | "
                     + " | ".join(cells) + f" | {p['erased_called_absent']:.1%} of {p['erased_limbs']} |")
    c = payload.get("calibration")
    if c:
        lines += ["", f"Where the shipped threshold came from (the trainer's held-out slices, `--train-run`): the real limit "
                  f"(at most 0.5 % of {c['real_people']} real intact people) is {c['real_limit']}; their lowest P(present) are "
                  f"{', '.join(map(str, c['real_lowest']))}. The synthetic limit (at most 2 % of {c['synthetic_intact_people']} "
                  f"synthetic intact people) is {c['synthetic_limit']}. The calibration takes the smaller."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="BPAC-Net weights (default: the shipped ones)")
    ap.add_argument("--name", default="bpac_operating")
    ap.add_argument("--a3d-test", default="/work/a3d/test,/work/a3d/test_v2")
    ap.add_argument("--thresholds", default=DEFAULT_THRESHOLDS)
    ap.add_argument("--train-run", default=None, help="the trainer's run folder: also give its calibration's two limits")
    ap.add_argument("--a3d-train", default="/work/a3d/train,/work/a3d/train_v2",
                    help="with --train-run: the training sets the run was trained on (their prepared samples in the run stand in)")
    args = ap.parse_args(argv)
    classifier = BpacClassifier.load(args.weights)
    roots = [Path(r) for r in args.a3d_test.split(",") if r]
    for root in roots:
        if not (root / "manifest.json").exists():
            raise SystemExit(f"error: {root} is not a synthetic set (hmrkit synth a3d)")
    a3d = {}
    for root in roots:
        samples, _ = prepare_a3d(root, classifier.net.config)
        a3d[root.name] = (predict(classifier.net, samples, flip_average=classifier.flip_average), samples.labels)
    real = real_present(classifier)
    erased = erased_present(args.weights or "shipped")
    shipped = float(classifier.thresholds[0])
    if not np.allclose(classifier.thresholds, shipped):
        raise SystemExit("error: the weights decide with one threshold per limb; this bench sweeps one threshold for all")
    thresholds = sorted({shipped, *(float(t) for t in args.thresholds.split(","))})
    points = [{**operating_point(t, real, a3d, erased), "shipped": t == shipped} for t in thresholds]
    payload = {"weights": args.weights or "shipped",
               "command": "python benchmarks/bench_bpac_operating.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "points": points, "machine": machine(with_load=True)}
    if args.train_run:
        payload["calibration"] = calibration_limits(classifier, Path(args.train_run), [Path(r) for r in args.a3d_train.split(",") if r])
    write(args.name, payload, table(payload))


if __name__ == "__main__":
    main()
