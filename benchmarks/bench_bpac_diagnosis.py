"""Why BPAC-Net finds few absent limbs: separability, what drives its heads, and the decision rule.

    .venv/bin/python benchmarks/bench_bpac_diagnosis.py [--weights PATH] [--name bpac_diagnosis]
        [--a3d-test /work/a3d/test,/work/a3d/test_v2] [--a3d-train /work/a3d/train,/work/a3d/train_v2]
        [--train-run RUN_FOLDER]   # the trainer's prepared samples stand in for training sets that are gone

On held-out A3D sets (never trained on):
1. per head, the AUC of P(present) between absent and intact limbs (how well the head ranks them,
   whatever the threshold);
2. the same with one input of the net shuffled across people (permutation importance): the
   landmark list (the MLP's input), the image with its heatmaps, or the RGB alone -- an input the
   heads rely on drops the AUC towards 0.5 when shuffled;
3. MediaPipe's own evidence: the AUC of the distal landmark's visibility (wrist / ankle) alone and
   the median visibility of elbow / knee and wrist / ankle per class (are the landmarks MediaPipe
   invents on a missing limb as confident as on an intact one?).
Then the decision rule, calibrated as the trainer does on training slices only (held-out real
intact people: even ``lspet_dev`` photos numbered a multiple of 6; held-out synthetic intact
people: index % 10 == 9 of the training sets): one threshold for all limbs against one per limb
(``calibrate_per_limb``), each measured by absent recall on the held-out sets and by the false
amputations on the real intact people never trained or calibrated on (odd ``lspet_dev`` +
``coco_mini_dev``, ``BpacClassifier.probabilities`` on each photo).
Writes ``benchmarks/results/<name>.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bpac import people_of, real_sets  # noqa: E402
from bench_common import DATA, machine, write  # noqa: E402

from hmrkit.body.conventions import MEDIAPIPE33  # noqa: E402
from hmrkit.body.limbs import LIMBS  # noqa: E402
from hmrkit.models.bpac_net import BpacClassifier, BpacInput, decide, net_input  # noqa: E402
from hmrkit.paths import cache_dir  # noqa: E402
from hmrkit.train.bpac import (  # noqa: E402
    BpacTrainConfig,
    Samples,
    calibrate,
    calibrate_per_limb,
    detect_people,
    demo_photos,
    is_calibration_photo,
    load_data,
    lspet_photos,
    predict,
    prepare_a3d,
    prepare_real,
)

DISTAL = {"left_arm": ("left_elbow", "left_wrist"), "right_arm": ("right_elbow", "right_wrist"),
          "left_leg": ("left_knee", "left_ankle"), "right_leg": ("right_knee", "right_ankle")}


def auc(low: np.ndarray, high: np.ndarray) -> float:
    """P(a score of ``low`` < a score of ``high``) (ties count half): the Mann-Whitney AUC."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([low, high]))  # ties get their mean rank
    n = len(low)
    return float(1 - (ranks[:n].sum() - n * (n + 1) / 2) / (n * len(high)))


def head_aucs(p_present: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {limb: auc(p_present[labels[:, k] > 0, k], p_present[labels[:, k] == 0, k]) for k, limb in enumerate(LIMBS)}


@torch.no_grad()
def permuted(classifier: BpacClassifier, samples: Samples, what: str, seed: int = 0) -> np.ndarray:
    """(N, 4) P(present) (no mirror average) with ``what`` shuffled across people."""
    net = classifier.net.eval()
    p, s = samples.crops.shape[1], net.config.crop_size
    lo = (p - s) // 2
    crops = torch.from_numpy(np.ascontiguousarray(samples.crops[:, lo:lo + s, lo:lo + s])).permute(0, 3, 1, 2).float() / 255
    x = net_input(crops, torch.from_numpy(samples.xy - lo), torch.from_numpy(samples.visibility), net.config)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(samples)))
    image, keypoints = x.image.clone(), x.keypoints.clone()
    if what == "landmark list":
        keypoints = keypoints[perm]
    elif what == "image + heatmaps":
        image = image[perm]
    elif what == "RGB":
        image[:, :3] = image[perm, :3]
    out = [torch.softmax(net(BpacInput(image[i:i + 128], keypoints[i:i + 128])).logits, -1)[..., 0] for i in range(0, len(samples), 128)]
    return torch.cat(out).double().numpy()


def held_out_set(classifier: BpacClassifier, root: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    samples, _ = prepare_a3d(root, classifier.net.config)
    probs = predict(classifier.net, samples, flip_average=classifier.flip_average)
    labels = samples.labels
    out: dict = {"set": str(root), "people": len(samples), "auc": head_aucs(probs[..., 0], labels), "shuffled": {}}
    for what in ("none", "landmark list", "image + heatmaps", "RGB"):
        out["shuffled"][what] = head_aucs(permuted(classifier, samples, what), labels)
    visibility = {}
    for k, limb in enumerate(LIMBS):
        idx = MEDIAPIPE33.indices(list(DISTAL[limb]))
        distal = samples.visibility[:, idx[1]]
        visibility[limb] = {"auc_distal": auc(distal[labels[:, k] > 0], distal[labels[:, k] == 0]),
                            "median": [[float(np.median(samples.visibility[labels[:, k] == c][:, j])) if (labels[:, k] == c).any() else None
                                        for j in idx] for c in range(4)],
                            "count": [int((labels[:, k] == c).sum()) for c in range(4)]}
    out["visibility"] = visibility
    return out, probs, labels


def training_slices(classifier: BpacClassifier, roots: list[Path], run: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(present) of the trainer's held-out slices: real intact (N, 4), synthetic intact (M, 4),
    synthetic with NaN where present (K, 4). ``run``: read them from that trainer's run folder, as
    the trainer did (its prepared samples stand in for set folders that are gone)."""
    if run is not None:
        slices = load_data(BpacTrainConfig(a3d=",".join(map(str, roots)), data=str(DATA)), classifier.net.config, run)
        synth, real = slices["val_synth"], slices["val_real"]
    else:
        parts = []
        for root in roots:
            samples, index = prepare_a3d(root, classifier.net.config)
            parts.append(samples.take(index % 10 == 9))
        synth = Samples.concat(parts)
        trainer_cache = cache_dir() / "train" / "bpac" / "detections_real.npz"  # the trainer's own detections, when there
        people = detect_people(lspet_photos(DATA, "even") + demo_photos(DATA),
                               trainer_cache if trainer_cache.exists() else cache_dir() / "bench" / "bpac" / "detections_real_train.npz")
        real = prepare_real(people, classifier.net.config).take(np.array([is_calibration_photo(p) for p in people.photo], bool))
    ps = predict(classifier.net, synth, flip_average=classifier.flip_average)[..., 0]
    pr = predict(classifier.net, real, flip_average=classifier.flip_average)[..., 0]
    absent = synth.labels > 0
    return pr, ps[~absent.any(1)], np.where(absent, ps, np.nan)


def rules(classifier: BpacClassifier, train_roots: list[Path], tests: list[tuple[np.ndarray, np.ndarray]], names: list[str],
          run: Path | None = None) -> dict:
    pr, ps_intact, ps_absent = training_slices(classifier, train_roots, run)
    one = calibrate(pr, ps_intact, 0.005, 0.02)
    per = calibrate_per_limb(pr, ps_intact, ps_absent, 0.005, 0.02)
    real = {}
    for name, dets in real_sets().items():
        from hmrkit.io.images import load_image

        real[name] = np.concatenate([classifier.probabilities(load_image(photo).rgb, people_of(dets, photo))
                                     for photo in dict.fromkeys(dets.photo.tolist())])
    out = {"calibration_people": {"real": len(pr), "synthetic_intact": len(ps_intact), "synthetic_absent_limbs": int(np.isfinite(ps_absent).sum())}}
    for rule, thresholds in (("one threshold", np.full(len(LIMBS), one)), ("per limb", per)):
        row: dict = {"thresholds": thresholds.tolist()}
        for name, (probs, labels) in zip(names, tests):
            pred, absent = decide(probs, thresholds), labels > 0
            row[name] = {"absent_recall": float((pred[absent] > 0).mean()),
                         "absent_recall_per_limb": [float((pred[absent[:, k], k] > 0).mean()) for k in range(len(LIMBS))],
                         "intact_people_with_a_limb_called_absent": float((pred[~absent.any(1)] > 0).any(1).mean())}
        flagged = {name: int((decide(p, thresholds) > 0).any(1).sum()) for name, p in real.items()}
        people = {name: len(p) for name, p in real.items()}
        row["real"] = {"flagged": flagged, "people": people,
                       "false_amputation_rate": sum(flagged.values()) / sum(people.values())}
        out[rule] = row
    return out


def table(payload: dict) -> str:
    lines = [f"# BPAC-Net diagnosis: `{payload['weights']}`", "", f"Machine: {payload['machine']}.",
             f"Command: `{payload['command']}`.", "",
             "## Per-head AUC of P(present), absent vs intact limbs, held-out A3D (1 = perfectly ranked, 0.5 = chance)", "",
             "| set | people | input shuffled across people | " + " | ".join(LIMBS) + " |", "|---|---|---|" + "---|" * len(LIMBS)]
    for s in payload["sets"]:
        for what, aucs in s["shuffled"].items():
            lines.append(f"| {Path(s['set']).name} | {s['people']} | {what} | " + " | ".join(f"{aucs[limb]:.3f}" for limb in LIMBS) + " |")
        lines.append(f"| {Path(s['set']).name} | {s['people']} | MediaPipe's wrist / ankle visibility alone | "
                     + " | ".join(f"{s['visibility'][limb]['auc_distal']:.3f}" for limb in LIMBS) + " |")
    lines += ["", "(\"none\" shuffled: the net as it is, without the mirror average.)", "",
              "## MediaPipe's visibility on held-out A3D: median of elbow / knee and wrist / ankle per true class", "",
              "| set | limb | present | level 1 (hand / foot) | level 2 (forearm / lower leg) | level 3 (arm / leg) |", "|---|---|---|---|---|---|"]
    for s in payload["sets"]:
        for limb in LIMBS:
            v = s["visibility"][limb]
            cells = [f"{m[0]:.2f} / {m[1]:.2f} ({n})" if m[0] is not None else "-" for m, n in zip(v["median"], v["count"])]
            lines.append(f"| {Path(s['set']).name} | {limb} | " + " | ".join(cells) + " |")
    r = payload["rules"]
    c = r["calibration_people"]
    lines += ["", f"## Decision rule: one threshold or one per limb (calibrated on training slices: {c['real']} real intact people, "
              f"{c['synthetic_intact']} synthetic intact people, {c['synthetic_absent_limbs']} synthetic absent limbs)", "",
              "| rule | thresholds (" + ", ".join(LIMBS) + ") | " + " | ".join(f"{Path(s['set']).name} absent recall (per limb)" for s in payload["sets"])
              + " | real intact people with a limb called absent (odd lspet_dev + coco_mini_dev) |", "|---|---|" + "---|" * len(payload["sets"]) + "---|"]
    for rule in ("one threshold", "per limb"):
        row = r[rule]
        cells = []
        for s in payload["sets"]:
            v = row[Path(s["set"]).name]
            cells.append(f"{v['absent_recall']:.3f} ({', '.join(f'{x:.2f}' for x in v['absent_recall_per_limb'])})")
        real = row["real"]
        lines.append(f"| {rule} | {', '.join(f'{t:.4f}' for t in row['thresholds'])} | " + " | ".join(cells)
                     + f" | {sum(real['flagged'].values())} of {sum(real['people'].values())} ({100 * real['false_amputation_rate']:.2f} %) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="default: the shipped hmrkit/weights/bpac.safetensors")
    parser.add_argument("--name", default="bpac_diagnosis")
    parser.add_argument("--a3d-test", default="/work/a3d/test,/work/a3d/test_v2")
    parser.add_argument("--a3d-train", default="/work/a3d/train,/work/a3d/train_v2",
                        help="training sets whose held-out slice (index % 10 == 9) calibrates the rules")
    parser.add_argument("--train-run", default=None,
                        help="the trainer's run folder: read the training sets' held-out slices from its prepared samples")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    classifier = BpacClassifier.load(args.weights)
    tests = [Path(r) for r in args.a3d_test.split(",") if r]
    train_roots = [Path(r) for r in args.a3d_train.split(",") if r]
    for root in tests + (train_roots if args.train_run is None else []):
        if not (root / "manifest.json").exists():
            raise SystemExit(f"error: {root} is not a synthetic set (hmrkit synth a3d)")
    sets, probs = [], []
    for root in tests:
        out, p, labels = held_out_set(classifier, root)
        sets.append(out)
        probs.append((p, labels))
    payload = {"weights": args.weights or "hmrkit/weights/bpac.safetensors",
               "command": "python benchmarks/bench_bpac_diagnosis.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "sets": sets, "rules": rules(classifier, train_roots, probs, [r.name for r in tests],
                                                       Path(args.train_run) if args.train_run else None)}
    payload["machine"] = machine(with_load=True)
    write(args.name, payload, table(payload))


if __name__ == "__main__":
    main()
