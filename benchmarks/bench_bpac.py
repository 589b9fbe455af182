"""BPAC-Net, AJAHR's limb classifier: held-out A3D accuracy, false amputations on real intact people, time.

    .venv/bin/python benchmarks/bench_bpac.py [--a3d-test /work/a3d/test,/work/a3d/test_v2] [--weights PATH] [--name bpac]

1. Held-out synthetic people (A3D sets never trained on, ``hmrkit synth a3d``: by default
   ``/work/a3d/test``, generator v1, and ``/work/a3d/test_v2``, the current generator): per head, the
   accuracy and the confusion matrix (rows: true class, columns: predicted) and per-class recall,
   with the shipped decision rule (absent only when P(present) < the calibrated threshold) and,
   for reference, the plain argmax.
2. Real intact people never trained or calibrated on: everyone hmrkit's perception finds in the
   ODD-numbered ``lspet_dev`` photos and in ``coco_mini_dev``; the false amputation rate is the
   share of these people with any limb called absent (target: at most 1 %).
3. Time: ms per person of ``BpacClassifier.classify`` (crop, heatmaps, net; one batch per photo,
   one torch thread), over the real photos.

Detections are cached in ``<cache>/bench/bpac`` (MediaPipe, the pipeline's photo settings).
Writes ``benchmarks/results/<name>.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DATA, machine, write  # noqa: E402

from hmrkit.body.limbs import LIMBS, class_names  # noqa: E402
from hmrkit.models.bpac_net import BpacClassifier  # noqa: E402
from hmrkit.paths import cache_dir  # noqa: E402
from hmrkit.perception.types import BodyLandmarks, PersonDetection  # noqa: E402
from hmrkit.train.bpac import Detections, decide, detect_people, lspet_photos, predict, prepare_a3d  # noqa: E402

CACHE = cache_dir() / "bench" / "bpac"


def real_sets() -> dict[str, Detections]:
    """Everyone perception finds in the odd lspet_dev photos and in coco_mini_dev (cached)."""
    coco = sorted((DATA / "coco_mini_dev" / "images").glob("*.jpg"))
    if not coco or not (DATA / "lspet_dev").is_dir():
        raise SystemExit(f"development data not found under {DATA} (see ../shared/data/README.md)")
    return {"lspet_dev odd": detect_people(lspet_photos(DATA, "odd"), CACHE / "detections_lspet_odd.npz"),
            "coco_mini_dev": detect_people(coco, CACHE / "detections_coco.npz")}


def confusion(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(4, 4) counts: rows true class, columns predicted."""
    m = np.zeros((4, 4), np.int64)
    np.add.at(m, (truth, pred), 1)
    return m


def synthetic(classifier: BpacClassifier, root: Path, start: int) -> dict:
    samples, index = prepare_a3d(root, classifier.net.config, start=start)
    probs = predict(classifier.net, samples, flip_average=classifier.flip_average)
    out: dict = {"set": str(root), "from_index": start, "indices": [int(index.min()), int(index.max())], "people": len(samples),
                 "threshold": classifier.thresholds.tolist()}
    for rule, thresholds in (("calibrated", classifier.thresholds), ("argmax", None)):
        pred = probs.argmax(-1) if thresholds is None else decide(probs, thresholds)
        heads = {}
        for k, limb in enumerate(LIMBS):
            m = confusion(samples.labels[:, k], pred[:, k])
            recall = {name: (float(m[c, c] / m[c].sum()) if m[c].sum() else None) for c, name in enumerate(class_names(limb))}
            heads[limb] = {"accuracy": float(np.trace(m) / m.sum()), "confusion": m.tolist(), "recall": recall}
        absent = samples.labels > 0
        intact_people = ~absent.any(1)
        out[rule] = {
            "heads": heads,
            "mean_accuracy": float(np.mean([h["accuracy"] for h in heads.values()])),
            "absent_limbs": int(absent.sum()),
            "absent_recall": float((pred[absent] > 0).mean()),
            "absent_level_accuracy": float((pred[absent] == samples.labels[absent]).mean()),
            "intact_limbs_called_absent": float((pred[~absent] > 0).mean()),
            "intact_people": int(intact_people.sum()),
            "intact_people_with_a_limb_called_absent": float((pred[intact_people] > 0).any(1).mean()) if intact_people.any() else None,
        }
    return out


def people_of(dets: Detections, photo: str) -> list[PersonDetection]:
    rows = np.flatnonzero(dets.photo == photo)
    return [PersonDetection(tuple(dets.box[i]), 1.0, BodyLandmarks(dets.xy[i], dets.visibility[i], np.zeros((33, 3))))
            for i in rows]


def real(classifier: BpacClassifier, sets: dict[str, Detections]) -> tuple[dict, list[float]]:
    """False amputations with the pipeline's own call (``classify`` on the photo), and its time."""
    from hmrkit.io.images import load_image

    out, ms_per_person = {}, []
    for name, dets in sets.items():
        flagged, lowest = [], []
        for photo in dict.fromkeys(dets.photo.tolist()):
            rgb = load_image(photo).rgb
            people = people_of(dets, photo)
            start = time.perf_counter()
            statuses = classifier.classify(rgb, people)
            ms_per_person.append((time.perf_counter() - start) * 1000 / len(people))
            for status in statuses:
                present = [s.probabilities["present"] for s in status.states]
                lowest.append(min(present))
                if status.any_absent:
                    flagged.append({"photo": Path(photo).name, "absent": {s.limb: s.level for s in status.states if not s.present},
                                    "p_present": [round(p, 4) for p in present]})
        n = len(lowest)
        out[name] = {"photos": dets.photos, "people": n, "people_with_a_limb_called_absent": len(flagged),
                     "false_amputation_rate": len(flagged) / n if n else None,
                     "lowest_p_present_quantiles": {str(q): float(np.quantile(lowest, q)) for q in (0.01, 0.05, 0.5)} if n else None,
                     "flagged": flagged}
    total = sum(v["people"] for v in out.values())
    wrong = sum(v["people_with_a_limb_called_absent"] for v in out.values())
    out["all"] = {"people": total, "people_with_a_limb_called_absent": wrong, "false_amputation_rate": wrong / total}
    return out, ms_per_person


def table(payload: dict) -> str:
    lines = [f"# BPAC-Net (AJAHR's limb classifier): `{payload['weights']}`", "",
             f"Machine: {payload['machine']}.", f"Command: `{payload['command']}`.", "",
             "## Real intact people never trained or calibrated on (the false amputation rate; target at most 1 %)", "",
             "| set | photos | people | people with any limb called absent | rate |", "|---|---|---|---|---|"]
    for name, v in payload["real"].items():
        photos = v.get("photos", "")
        lines.append(f"| {name} | {photos} | {v['people']} | {v['people_with_a_limb_called_absent']} | "
                     f"{100 * v['false_amputation_rate']:.2f} % |")
    lines += ["", f"Time of `BpacClassifier.classify` per person (crop, heatmaps, net; one batch per photo, 1 torch thread): "
              f"mean {payload['ms_per_person']['mean']:.1f} ms, median {payload['ms_per_person']['median']:.1f} ms "
              f"over {payload['ms_per_person']['photos']} photos.", ""]
    syn = payload.get("synthetic")
    if payload.get("synthetic_missing"):
        lines += ["## Held-out A3D", "", f"not measured: {payload['synthetic_missing']}", ""]
    if syn is None:
        return "\n".join(lines)
    for syn in [syn] + payload.get("synthetic_more", []):
        lines += synthetic_table(syn)
    return "\n".join(lines)


def synthetic_table(syn: dict) -> list[str]:
    thresholds = ", ".join(f"{limb} {t:.4f}" for limb, t in zip(LIMBS, syn["threshold"]))
    lines = [f"## Held-out A3D: {syn['people']} people of `{syn['set']}`, samples {syn['indices'][0]}-{syn['indices'][1]} "
              "(never trained on; people MediaPipe found nothing on are left out)", "",
              f"Decision thresholds on P(present): {thresholds} (calibrated on training data).", "",
              "| rule | mean head accuracy | absent limbs | absent recall | absent level accuracy | intact limbs called absent | intact people with a limb called absent |",
              "|---|---|---|---|---|---|---|"]
    for rule in ("calibrated", "argmax"):
        r = syn[rule]
        intact = r["intact_people_with_a_limb_called_absent"]
        lines.append(f"| {rule} | {r['mean_accuracy']:.3f} | {r['absent_limbs']} | {r['absent_recall']:.3f} | "
                     f"{r['absent_level_accuracy']:.3f} | {100 * r['intact_limbs_called_absent']:.2f} % | "
                     f"{'-' if intact is None else f'{100 * intact:.2f} %'} ({r['intact_people']} people) |")
    lines += ["", "Per head, calibrated rule: accuracy, recall per class, confusion matrix (rows: true, columns: predicted).", ""]
    for limb, h in syn["calibrated"]["heads"].items():
        names = class_names(limb)
        recall = ", ".join(f"{n} {'-' if r is None else f'{r:.3f}'}" for n, r in h["recall"].items())
        lines += [f"**{limb}**: accuracy {h['accuracy']:.3f}; recall: {recall}", "",
                  "| true \\ predicted | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        lines += [f"| {n} | " + " | ".join(str(c) for c in row) + " |" for n, row in zip(names, h["confusion"])]
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a3d-test", default="/work/a3d/test,/work/a3d/test_v2",
                        help="held-out A3D sets, comma-separated (the first is the 'synthetic' entry, the rest 'synthetic_more')")
    parser.add_argument("--a3d-from", type=int, default=0,
                        help="use the set's samples from this index on (a training set's tail the trainer never read: "
                             "train with --max-a3d N, test with --a3d-from N)")
    parser.add_argument("--weights", default=None, help="default: the shipped hmrkit/weights/bpac.safetensors")
    parser.add_argument("--name", default="bpac")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    classifier = BpacClassifier.load(args.weights)
    sets = real_sets()
    real_out, times = real(classifier, sets)
    payload = {
        "weights": args.weights or "hmrkit/weights/bpac.safetensors",
        "command": "python benchmarks/bench_bpac.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "weights_notes": {k: v for k, v in classifier.metadata.items() if k not in ("config",)},
        "real": real_out,
        "ms_per_person": {"mean": float(np.mean(times)), "median": float(np.median(times)), "photos": len(times)},
    }
    roots = [Path(r) for r in args.a3d_test.split(",") if r.strip()]
    found = [r for r in roots if (r / "manifest.json").exists()]
    if found:
        payload["synthetic"] = synthetic(classifier, found[0], args.a3d_from)
        payload["synthetic_more"] = [synthetic(classifier, r, args.a3d_from) for r in found[1:]]
    missing = [str(r) for r in roots if r not in found]
    if missing:
        payload["synthetic_missing"] = f"no synthetic set in {', '.join(missing)}"
    payload["machine"] = machine(with_load=True)
    write(args.name, payload, table(payload))


if __name__ == "__main__":
    main()
