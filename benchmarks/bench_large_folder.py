"""A 1000-photo folder with 10 % damaged files, stopped with Ctrl-C part-way and run again.

    python benchmarks/bench_large_folder.py [--good 900] [--bad 100] [--stop-after 300]

The folder (a temporary one, never the repository) holds ``--good`` real photos (the
``lspet_dev`` sports photos, in name order) and ``--bad`` damaged files in five kinds, a fifth
each: a JPEG cut short, an empty file, text named .jpg, random bytes named .png, and a PNG whose
header declares 60000 x 60000 pixels. ``hmrkit run FOLDER --report`` (JSON and NPZ only:
``--mesh-format none --no-overlay``) runs in a fresh process and gets SIGINT (Ctrl-C) once
``--stop-after`` photos have their files; then the same command runs to the end. Checked, not
just counted: every file of the folder is in each report exactly once; every damaged file fails
with a read error, and a photo fails only when perception finds no one in it ("no person found",
which hmrkit reports as an input error), each with its one-line error on stderr and no
traceback; the photos done before the stop are skipped by the rerun with their files untouched;
every other photo is done by the rerun, and every photo done has its files at the end. Results: benchmarks/results/large_folder.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from bench_common import DATA, ROOT, machine, write  # the script's own folder

KINDS = ("truncated_jpeg", "empty", "text", "random_bytes", "huge_png_header")


def damaged(kind: str, index: int, sample: bytes, folder: Path) -> Path:
    rng = np.random.default_rng(index)
    if kind == "truncated_jpeg":
        path, data = folder / f"bad_{index:03d}_cut.jpg", sample[: len(sample) * 2 // 5]
    elif kind == "empty":
        path, data = folder / f"bad_{index:03d}_empty.jpg", b""
    elif kind == "text":
        path, data = folder / f"bad_{index:03d}_text.jpg", b"this is not a picture\n" * 20
    elif kind == "random_bytes":
        path, data = folder / f"bad_{index:03d}_noise.png", rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    else:  # a valid PNG header and one tiny compressed row: 60000 x 60000 declared
        header = (60000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
        chunk = lambda tag, body: len(body).to_bytes(4, "big") + tag + body + zlib.crc32(tag + body).to_bytes(4, "big")
        path = folder / f"bad_{index:03d}_huge.png"
        data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def outputs(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.suffix in (".json", ".npz")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--good", type=int, default=900)
    parser.add_argument("--bad", type=int, default=100)
    parser.add_argument("--stop-after", type=int, default=300)
    args = parser.parse_args(argv)
    photos = sorted((DATA / "lspet_dev" / "images").glob("*.jpg"))[: args.good]
    if len(photos) < args.good:
        sys.exit(f"need {args.good} photos in {DATA / 'lspet_dev' / 'images'}, found {len(photos)}")
    work = Path(tempfile.mkdtemp(prefix="hmrkit-large-folder-"))
    folder, out, report = work / "photos", work / "out", work / "report.json"
    folder.mkdir()
    try:
        for photo in photos:
            shutil.copy(photo, folder / photo.name)
        sample = photos[0].read_bytes()
        bad = {damaged(KINDS[i % len(KINDS)], i, sample, folder).name: KINDS[i % len(KINDS)] for i in range(args.bad)}
        command = [sys.executable, "-m", "hmrkit.cli", "run", str(folder), "--out", str(out), "--report", str(report),
                   "--mesh-format", "none", "--no-overlay"]
        # Ctrl-C's default action in the child (a background shell starts it ignored)
        began = time.perf_counter()
        # its stderr (a progress bar over 1000 files) to a file: a pipe nobody reads fills and blocks the run
        with open(work / "first_stderr.txt", "w") as stderr:
            first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            while first.poll() is None and (not out.is_dir() or sum(p.suffix == ".npz" for p in out.iterdir()) < args.stop_after):
                time.sleep(0.5)
            first.send_signal(signal.SIGINT)
            first.wait(timeout=600)
        first_err = (work / "first_stderr.txt").read_text()
        first_s = time.perf_counter() - began
        first_report = json.loads(report.read_text())
        before = outputs(out)
        began = time.perf_counter()
        second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=24 * 3600)
        second_s = time.perf_counter() - began
        second_report = json.loads(report.read_text())
        after = outputs(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    names = {p.name for p in photos} | set(bad)
    status1 = {Path(e["path"]).name: e for e in first_report["inputs"]}
    status2 = {Path(e["path"]).name: e for e in second_report["inputs"]}
    done1 = {n for n, e in status1.items() if e["status"] == "done"}
    done2 = {n for n, e in status2.items() if e["status"] == "done"}
    failed2 = {n for n, e in status2.items() if e["status"] == "failed"}
    nobody = {p.name for p in photos} & failed2  # photos in which perception finds no one: an input error too
    errors = [line.removeprefix("hmrkit: error: ") for line in second.stderr.splitlines() if line.startswith("hmrkit: error: ")]
    stems = lambda names_: {f"{Path(n).stem}{s}" for n in names_ for s in (".json", ".npz")}
    checks = {
        "first run stopped by Ctrl-C (exit 130, report marked interrupted)": first.returncode == 130 and first_report["interrupted"],
        "each report lists every file of the folder exactly once":
            sorted(status1) == sorted(names) == sorted(status2) and len(first_report["inputs"]) == len(second_report["inputs"]) == len(names),
        "first run: photos done have their files, the rest are failed or not_run":
            all(e["status"] in ("done", "failed", "not_run") for e in status1.values()) and stems(done1) <= set(before),
        "rerun: the photos done before are skipped, their files untouched":
            {n for n, e in status2.items() if e["status"] == "skipped"} == done1 and all(after[k] == before[k] for k in stems(done1)),
        "rerun: every other photo is done, or failed because nobody was found in it":
            done2 | nobody == {p.name for p in photos} - done1 and not done2 & nobody,
        "every damaged file fails with a read error": set(bad) <= failed2 and all(
            "no person found" not in status2[n]["error"] for n in bad),
        "a photo fails only with 'no person found'": all(status2[n]["error"].endswith(": no person found") for n in nobody),
        "one error line per failed file on stderr, the same as in the report":
            sorted(errors) == sorted(status2[n]["error"] for n in failed2),
        "no traceback on stderr": "Traceback" not in first_err + second.stderr,
        "every photo done has its files at the end, and nothing else is there": set(after) == stems(done1 | done2),
        "rerun exit status 1 (some inputs failed)": second.returncode == 1,
    }
    by_kind = {kind: sorted({status2[n]["error"].replace(status2[n]["path"], "FILE") for n, k in bad.items() if k == kind})
               for kind in KINDS}
    payload = {"machine": machine(with_load=True), "command": "python benchmarks/bench_large_folder.py " + " ".join(argv or sys.argv[1:]),
               "good": len(photos), "bad": len(bad), "first_run": {"seconds": round(first_s, 1), "counts": first_report["counts"]},
               "rerun": {"seconds": round(second_s, 1), "counts": second_report["counts"]},
               "seconds_per_photo_rerun": round(second_s / max(len(done2), 1), 3),
               "photos_with_nobody_found": sorted(nobody), "checks": checks, "errors_by_kind": by_kind}
    rows = "\n".join(f"| {name} | {'yes' if ok else '**no**'} |" for name, ok in checks.items())
    kinds = "\n".join(f"| {kind} | {len([n for n, k in bad.items() if k == kind])} | {'; '.join(msgs)} |" for kind, msgs in by_kind.items())
    table = (f"# A {len(names)}-file folder, {len(bad)} of them damaged, stopped with Ctrl-C and run again\n\n"
             f"Machine: {payload['machine']}. Command: `{payload['command'].strip()}`. Photos: the first {len(photos)} "
             f"`lspet_dev` photos; `hmrkit run FOLDER --report FILE --mesh-format none --no-overlay` in a fresh process, "
             f"SIGINT once {args.stop_after} photos had their files, then the same command again.\n\n"
             f"| run | seconds | done | skipped | failed | not run |\n|---|---|---|---|---|---|\n"
             + "\n".join(f"| {label} | {payload[key]['seconds']} | " + " | ".join(str(payload[key]['counts'][s]) for s in ("done", "skipped", "failed", "not_run")) + " |"
                         for label, key in (("first (stopped)", "first_run"), ("rerun", "rerun")))
             + f"\n\nRerun: {payload['seconds_per_photo_rerun']} s per photo done (start-up included). "
             f"Photos in which perception found no one (failed with 'no person found', as hmrkit reports them): {len(nobody)} "
             f"of {len(photos)}.\n\n"
             f"| check | holds |\n|---|---|\n{rows}\n\n"
             f"The errors the report gives, per kind of damage (FILE: the file's path):\n\n"
             f"| damage | files | error |\n|---|---|---|\n{kinds}\n")
    write("large_folder", payload, table)
    if not all(checks.values()):
        sys.exit("some checks failed: see benchmarks/results/large_folder.md")


if __name__ == "__main__":
    main()
