"""BPAC-Net on real photos with a limb erased: does it see a missing limb in real pixels?

    .venv/bin/python benchmarks/bench_bpac_erased.py [--people N] [--weights PATH] [--name bpac_erased]

The classifier of stop 18 was trained on rendered A3D people (every absent limb rendered) and
real intact people (every limb present): it may have learnt "real-looking -> present". This
probes a classifier with real pixels. People that hmrkit's perception finds in the ODD-numbered
``lspet_dev`` photos (never trained or calibrated on), with a limb in view (``limb_in_view``:
landmarks inside the photo, the limb's visibility at least 0.8, torso at least 40 px), each get
one of the 12 absence types (the one tried least so far among those in view), erased by
:func:`hmrkit.synth.erase.edit_person`: Telea inpainting over the limb's part below the cut,
then what ``hmrkit run`` does, perception on the edited photo and the person found again by
their shoulders' and hips' centre (within half a torso); then ``BpacClassifier.classify``.

Reported: the share of erased limbs called absent, and at the right level; the share of these
people with another limb called absent; the same people unedited (the classifier on the
original photo and detection); decoys (the same fill painted beside the person, every limb
kept) with any limb called absent. People perception loses after the edit are counted apart.

The fill is blurry and copies nearby background: a probe of the shortcut, not a stand-in for
photos of amputees. Writes ``benchmarks/results/<name>.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bpac import people_of, real_sets  # noqa: E402
from bench_common import machine, write  # noqa: E402

from hmrkit.body.limbs import ABSENCE_TYPES, LIMBS  # noqa: E402
from hmrkit.io.images import load_image  # noqa: E402
from hmrkit.models.bpac_net import BpacClassifier  # noqa: E402
from hmrkit.perception import MediaPipeBackend, MediaPipeConfig  # noqa: E402
from hmrkit.perception.geometry import points_box  # noqa: E402
from hmrkit.perception.types import BodyLandmarks, PersonDetection  # noqa: E402
from hmrkit.synth.erase import EditedPerson, edit_person, limb_in_view  # noqa: E402

def outcome(classifier: BpacClassifier, edit: EditedPerson, limb: str, level: str) -> dict:
    status = classifier.classify(edit.rgb, [PersonDetection(points_box(edit.body.xy), 1.0, edit.body)])[0]
    k = LIMBS.index(limb)
    state = status.states[k]
    return {"p_present": round(state.probabilities["present"], 4), "called_absent": not state.present,
            "level_right": state.level == level, "any_absent": status.any_absent,
            "other_limb_called_absent": any(not s.present for j, s in enumerate(status.states) if j != k)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=0, help="at most this many people (0: everyone with a limb in view)")
    ap.add_argument("--weights", default=None, help="BPAC-Net weights (default: the shipped ones)")
    ap.add_argument("--name", default="bpac_erased")
    args = ap.parse_args(argv)
    classifier = BpacClassifier.load(args.weights)
    dets = real_sets()["lspet_dev odd"]
    rows, lost = [], 0
    tried = dict.fromkeys(ABSENCE_TYPES, 0)
    with MediaPipeBackend(MediaPipeConfig()) as backend:
        def detect(rgb: np.ndarray) -> list[BodyLandmarks]:
            return [p.body for p in backend.detect(rgb).people if p.body is not None]

        for photo in dict.fromkeys(dets.photo.tolist()):
            rgb = load_image(photo).rgb
            for person in people_of(dets, photo):
                if args.people and len(rows) + lost >= args.people:
                    break
                usable = [t for t in ABSENCE_TYPES if limb_in_view(person.body, t[0], rgb.shape[:2])]
                if not usable:
                    continue
                limb, level = min(usable, key=lambda t: tried[t])  # the types as even as the people allow
                tried[limb, level] += 1
                erased = edit_person(rgb, person.body, limb, level, detect)
                if erased is None:
                    lost += 1
                    continue
                decoy = edit_person(rgb, person.body, limb, level, detect, decoy=True)
                before = classifier.classify(rgb, [person])[0]
                rows.append({"photo": Path(photo).name, "limb": limb, "level": level, "erased": outcome(classifier, erased, limb, level),
                             "decoy": None if decoy is None else outcome(classifier, decoy, limb, level),
                             "unedited_p_present": round(before.states[LIMBS.index(limb)].probabilities["present"], 4),
                             "unedited_any_absent": before.any_absent})
                print(rows[-1], flush=True)
    payload = {"weights": args.weights or "shipped", "thresholds": classifier.thresholds.tolist(),
               "command": "python benchmarks/bench_bpac_erased.py" + (f" --people {args.people}" if args.people else "")
               + (f" --weights {args.weights}" if args.weights else "") + (f" --name {args.name}" if args.name != "bpac_erased" else ""),
               "people_edited": len(rows) + lost, "people_lost_after_edit": lost, "rows": rows, "machine": machine(with_load=True)}
    for key, group in [("all", rows)] + [(f"{limb} {level}", [r for r in rows if (r["limb"], r["level"]) == (limb, level)])
                                         for limb, level in ABSENCE_TYPES]:
        decoys = [r["decoy"] for r in group if r["decoy"] is not None]
        mean = lambda values: round(float(np.mean(values)), 3) if values else None  # noqa: E731
        payload.setdefault("summary", {})[key] = {
            "people": len(group),
            "erased_limb_called_absent": mean([r["erased"]["called_absent"] for r in group]),
            "at_the_right_level": mean([r["erased"]["level_right"] for r in group]),
            "another_limb_called_absent": mean([r["erased"]["other_limb_called_absent"] for r in group]),
            "median_p_present": round(float(np.median([r["erased"]["p_present"] for r in group])), 3) if group else None,
            "unedited_median_p_present": round(float(np.median([r["unedited_p_present"] for r in group])), 3) if group else None,
            "unedited_any_absent": int(sum(r["unedited_any_absent"] for r in group)),
            "decoys": len(decoys), "decoys_any_absent": int(sum(d["any_absent"] for d in decoys)),
        }
    write(args.name, payload, table(payload))


def table(payload: dict) -> str:
    s = payload["summary"]
    lines = [f"# BPAC-Net on real photos with a limb erased (`{payload['weights']}` weights)", "",
             f"Machine: {payload['machine']}.", f"Command: `{payload['command']}`.", "",
             f"{payload['people_edited']} people of the odd `lspet_dev` photos (never trained or calibrated on), one absence type "
             f"each (the one tried least so far among those whose limb is in view), the limb erased by Telea inpainting; {payload['people_lost_after_edit']} were not found again "
             f"after the edit. Decision thresholds on P(present): {', '.join(f'{t:.4f}' for t in payload['thresholds'])}.", "",
             "| erased | people | erased limb called absent | at the right level | another limb called absent "
             "| median P(present), edited / unedited | unedited people with a limb called absent "
             "| decoys (same fill beside the person) with a limb called absent |",
             "|---|---|---|---|---|---|---|---|"]
    for key, v in s.items():
        if v["people"]:
            lines.append(f"| {key} | {v['people']} | {v['erased_limb_called_absent']} | {v['at_the_right_level']} | "
                         f"{v['another_limb_called_absent']} | {v['median_p_present']} / {v['unedited_median_p_present']} | "
                         f"{v['unedited_any_absent']} | {v['decoys_any_absent']} of {v['decoys']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
