"""What checking the content digests costs at start-up (hmrkit/io/integrity.py).

    python benchmarks/bench_integrity.py            # writes benchmarks/results/integrity.{json,md}

For the Anny snapshot (~/.cache/hmrkit, ~26 MB) and each shipped weights file: the time to hash
the bytes with several hash functions (the file already in memory), and the time of the whole
checked read (:func:`hmrkit.io.integrity.load_verified`: read + SHA-256 + tensors) against
safetensors' unchecked ``load_file``. Best of ``--repeats`` runs (the machine is shared: the best
run is the least disturbed one); the machine load is recorded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HASHES = {
    "sha256": lambda b: hashlib.sha256(b).digest(),
    "blake2b": lambda b: hashlib.blake2b(b, digest_size=32).digest(),
    "md5": lambda b: hashlib.md5(b).digest(),
    "sha1": lambda b: hashlib.sha1(b).digest(),
    "crc32 (not a content hash; a floor)": lambda b: zlib.crc32(b),
}


def best_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "integrity")
    args = parser.parse_args()

    import torch
    from safetensors.torch import load_file

    from hmrkit.body.anny_snapshot import snapshot_path
    from hmrkit.io.integrity import load_verified
    from hmrkit.paths import weights_dir

    try:
        import xxhash  # optional: only measured when installed

        HASHES["xxh3_64"] = lambda b: xxhash.xxh3_64_digest(b)
    except ImportError:
        pass
    torch.set_num_threads(1)
    files = [snapshot_path()] + sorted(weights_dir().glob("*.safetensors"))
    files = [f for f in files if f.is_file()]
    load_before = os.getloadavg()
    rows = []
    for path in files:
        raw = path.read_bytes()
        row = {"file": path.name, "megabytes": round(len(raw) / 1e6, 2)}
        row["hash_ms"] = {name: round(best_ms(lambda: fn(raw), args.repeats), 2) for name, fn in HASHES.items()}
        row["checked_read_ms"] = round(best_ms(lambda: load_verified(path, require=False), args.repeats), 2)
        row["unchecked_load_file_ms"] = round(best_ms(lambda: load_file(str(path)), args.repeats), 2)
        rows.append(row)
    from hmrkit.body.anny_snapshot import read_snapshot

    snapshot_read_ms = round(best_ms(lambda: read_snapshot(snapshot_path()), args.repeats), 2) if snapshot_path().is_file() else None
    load_after = os.getloadavg()
    machine = f"{os.cpu_count()} CPU cores, {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}"
    result = {"command": "python benchmarks/bench_integrity.py", "machine": machine, "repeats": args.repeats,
              "statistic": "best of repeats, ms", "load_average_1min_before_after": [load_before[0], load_after[0]], "files": rows,
              "read_snapshot_ms": snapshot_read_ms}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    names = list(HASHES)
    lines = [
        "# Content digests: hashing cost at start-up",
        "",
        f"`{result['command']}` on {machine}; best of {args.repeats} runs, ms; 1-minute load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (a shared machine: absolute times are inflated).",
        "",
        "| file | MB | " + " | ".join(names) + " | checked read (SHA-256 + tensors) | unchecked load_file |",
        "|---|---|" + "---|" * len(names) + "---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['file']} | {row['megabytes']} | " + " | ".join(f"{row['hash_ms'][n]}" for n in names)
                     + f" | {row['checked_read_ms']} | {row['unchecked_load_file_ms']} |")
    lines += ["", f"`read_snapshot` (the whole start-up read of the Anny snapshot: digest, tensors, shape checks; "
              f"values are checked once, when it is written): {snapshot_read_ms} ms."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
