"""Which hands perception finds on whole-body photos, checked against hand labels (issue 16).

    python benchmarks/bench_hand_finding.py --label NAME [--lsp 200]   # -> results/hand_finding_<NAME>.json/.md

Perception alone (``MediaPipeBackend.detect``, the default configuration: what ``hmrkit run`` feeds
the fit), so that a change to hand finding is judged on found AND false hands:
- ehf_dev (20 studio photos, 40 hands, SMPL-X fingertips projected): per pose wrist, a hand found
  counts *right* when its five fingertips lie nearer that side's true fingertips than the other
  side's (mean 2D distance), else *wrong side*; also the mean fingertip error (px) of right hands.
- lspet_dev, first N photos (one labelled person each, crowd-sourced 2D joints): the detected body
  holding most labelled points is the person; a hand found on a side whose wrist is labelled counts
  *on its wrist* when MediaPipe's hand wrist lies within half a labelled forearm (elbow-wrist) of
  the labelled wrist, *on the other wrist* when it lies so near the other labelled wrist instead,
  else *elsewhere* (a false hand, or a label far off). LSP labels are noisy, sides included.
- demo photos (demo_images/*, hand close-ups in hands/ included): hands attached to bodies per
  photo (no labels: the count, to see where a change adds or drops hands).
Machine load is stated; times are perception wall times per photo (the machine is shared: compare
runs by the hand-model calls per photo, counted on the backend, which do not depend on the load).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DATA, DEMO_PHOTOS, machine, write  # noqa: E402

from hmrkit.io.images import load_image  # noqa: E402
from hmrkit.perception import MediaPipeBackend, MediaPipeConfig  # noqa: E402

SIDES = ("left", "right")
TIPS = [4, 8, 12, 16, 20]  # hand21 fingertips
LSP = {"left": (10, 11), "right": (7, 6)}  # (elbow, wrist) in LSP's 14-joint order


class CallCounter:
    """Counts the backend's hand-model calls (wrist crops, second looks, the whole-image search)."""

    def __init__(self, backend: MediaPipeBackend) -> None:
        self.calls, self._lock, inner = 0, threading.Lock(), backend._hands_in

        def counted(*args, **kwargs):
            with self._lock:
                self.calls += 1
            return inner(*args, **kwargs)

        backend._hands_in = counted


def bodies(perception):
    return [p for p in perception.people if p.body is not None]


def bench_ehf(backend: MediaPipeBackend) -> dict:
    gt = np.load(DATA / "ehf_dev" / "annotations.npz")
    right = wrong = 0
    errors, rows, seconds = [], [], []
    for k, name in enumerate(gt["image_names"]):
        image = load_image(DATA / "ehf_dev" / "images" / str(name)).rgb
        start = time.perf_counter()
        people = bodies(backend.detect(image))
        seconds.append(time.perf_counter() - start)
        person = max(people, key=lambda p: (p.box[2] - p.box[0]) * (p.box[3] - p.box[1]), default=None)
        row = {"image": str(name), "hands": {}}
        for side in SIDES if person is not None else ():
            if side not in person.hands:
                continue
            tips = person.hands[side].xy[TIPS]
            other = "right" if side == "left" else "left"
            own = float(np.linalg.norm(tips - gt[f"{side}_tips2d_px"][k], axis=1).mean())
            far = float(np.linalg.norm(tips - gt[f"{other}_tips2d_px"][k], axis=1).mean())
            ok = own < far
            right += ok
            wrong += not ok
            if ok:
                errors.append(own)
            row["hands"][side] = {"tips_px": round(own, 1), "other_side_tips_px": round(far, 1), "right_side": ok}
        rows.append(row)
    return {"photos": len(rows), "hands": 2 * len(rows), "found_right_side": right, "found_wrong_side": wrong,
            "fingertip_px_right_side": round(float(np.mean(errors)), 1) if errors else None,
            "median_detect_s": round(float(np.median(seconds)), 3), "per_image": rows}


def bench_lsp(backend: MediaPipeBackend, limit: int) -> dict:
    labels = np.load(DATA / "lspet_dev" / "joints.npz")
    counts = {"labelled_wrists": 0, "on_its_wrist": 0, "on_other_wrist": 0, "elsewhere": 0, "unjudged": 0,
              "people_found": 0}
    rows, seconds = [], []
    for name, joints in list(zip(labels["image_names"], labels["joints"]))[:limit]:
        image = load_image(DATA / "lspet_dev" / "images" / str(name)).rgb
        start = time.perf_counter()
        people = bodies(backend.detect(image))
        seconds.append(time.perf_counter() - start)
        seen = joints[:, 2] > 0
        counts["labelled_wrists"] += int(sum(seen[LSP[s][1]] for s in SIDES))
        inside = [int(((joints[seen, 0] >= p.box[0]) & (joints[seen, 0] <= p.box[2]) & (joints[seen, 1] >= p.box[1])
                       & (joints[seen, 1] <= p.box[3])).sum()) for p in people]
        if not people or max(inside) == 0:
            rows.append({"image": str(name), "found": False})
            continue
        counts["people_found"] += 1
        person = people[int(np.argmax(inside))]
        forearms = [float(np.linalg.norm(joints[e, :2] - joints[w, :2])) for e, w in LSP.values() if seen[e] and seen[w]]
        verdicts = {}
        for side, hand in person.hands.items():
            other = "right" if side == "left" else "left"
            wrist, other_wrist = LSP[side][1], LSP[other][1]
            if not forearms or not (seen[wrist] or seen[other_wrist]):
                verdict = "unjudged"
            else:
                reach = 0.5 * max(forearms)
                near = lambda j: seen[j] and np.linalg.norm(hand.xy[0] - joints[j, :2]) < reach  # noqa: E731
                verdict = "on_its_wrist" if near(wrist) else "on_other_wrist" if near(other_wrist) else "elsewhere"
            counts[verdict] += 1
            verdicts[side] = verdict
        rows.append({"image": str(name), "found": True, "hands": verdicts})
    return {"photos": len(rows), **counts, "median_detect_s": round(float(np.median(seconds)), 3), "per_image": rows}


def bench_demo(backend: MediaPipeBackend) -> dict:
    folder = DATA / "demo_images"
    photos = DEMO_PHOTOS + sorted(p for p in (folder / "hands").glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    rows = []
    for path in photos:
        people = bodies(backend.detect(load_image(path).rgb))
        rows.append({"image": str(path.relative_to(folder)), "bodies": len(people),
                     "hands_on_bodies": sum(len(p.hands) for p in people)})
    return {"photos": len(rows), "bodies": sum(r["bodies"] for r in rows),
            "hands_on_bodies": sum(r["hands_on_bodies"] for r in rows), "per_image": rows}


def markdown(label: str, payload: dict) -> str:
    lines = [f"# Hand finding on whole-body photos: {label}", "", f"`{payload['command']}`", "",
             f"Code: {payload['code']}. Machine: {payload['machine']}.", ""]
    e = payload.get("ehf")
    if e:
        lines += ["## ehf_dev (20 photos, 40 hands; sides judged by the true fingertips)", "",
                  "| hands found, right side | found, wrong side | fingertip px (right side) | hand-model calls / photo | median detect s |",
                  "|---|---|---|---|---|",
                  f"| {e['found_right_side']} / {e['hands']} | {e['found_wrong_side']} | {e['fingertip_px_right_side']} | "
                  f"{e['hand_model_calls_per_photo']} | {e['median_detect_s']} |", ""]
    s = payload.get("lsp")
    if s:
        lines += [f"## lspet_dev, first {s['photos']} photos (labelled wrists; noisy crowd-sourced labels)", "",
                  "| people found | labelled wrists | hands on their labelled wrist | on the other labelled wrist | "
                  "elsewhere | not judged | hand-model calls / photo | median detect s |", "|---|---|---|---|---|---|---|---|",
                  f"| {s['people_found']} | {s['labelled_wrists']} | {s['on_its_wrist']} | {s['on_other_wrist']} | "
                  f"{s['elsewhere']} | {s['unjudged']} | {s['hand_model_calls_per_photo']} | {s['median_detect_s']} |", ""]
    d = payload.get("demo")
    if d:
        lines += [f"## demo photos ({d['photos']}, no hand labels)", "", "| bodies | hands on bodies | hand-model calls / photo |",
                  "|---|---|---|", f"| {d['bodies']} | {d['hands_on_bodies']} | {d['hand_model_calls_per_photo']} |", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", required=True, help="results file benchmarks/results/hand_finding_<label>.json/.md")
    ap.add_argument("--lsp", type=int, default=200, help="how many lspet_dev photos (from the first)")
    args = ap.parse_args()
    from bench_ehf import code_version

    payload: dict = {"label": args.label, "command": f"python benchmarks/bench_hand_finding.py --label {args.label} --lsp {args.lsp}",
                     "code": code_version(), "config": repr(MediaPipeConfig())}
    with MediaPipeBackend(MediaPipeConfig()) as backend:
        counter = CallCounter(backend)
        for key, folder, run in (("ehf", "ehf_dev", lambda: bench_ehf(backend)), ("lsp", "lspet_dev", lambda: bench_lsp(backend, args.lsp)),
                                 ("demo", "demo_images", lambda: bench_demo(backend))):
            if (DATA / folder).exists():
                before = counter.calls
                payload[key] = run()
                payload[key]["hand_model_calls_per_photo"] = round((counter.calls - before) / payload[key]["photos"], 2)
            else:
                print(f"skipped {key}: {DATA / folder} is absent")
    payload["machine"] = machine(with_load=True)
    write(f"hand_finding_{args.label}", payload, markdown(args.label, payload))


if __name__ == "__main__":
    main()
