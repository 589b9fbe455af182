"""Time the headless overlay renderer on a body-sized mesh (CPU only).

The mesh is a stick figure of 12 capsules, 1.7 m tall, 3 m from the camera, with about
the size of an Anny body (13.7k vertices, 27k triangles); the camera has a 55 deg
horizontal field of view. Times: the JIT compile on a machine with an empty numba cache,
the first call of a new process with a warm cache, and the median of N warm calls.

    python benchmarks/bench_render.py [--runs 20]

Writes benchmarks/results/render.json, render.md and render.jpg (overlay | side view).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import trimesh

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hmrkit.render import export_meshes, render_meshes, render_overlay, render_side_view  # noqa: E402
from hmrkit.render.overlay import blend  # noqa: E402

# (start, end, radius) in metres, y down, centred on the body; 12 parts
BONES = [
    ((0.0, -0.76, 0.0), (0.0, -0.70, 0.0), 0.10),  # head
    ((0.0, -0.62, 0.0), (0.0, -0.55, 0.0), 0.05),  # neck
    ((0.0, -0.50, 0.0), (0.0, -0.15, 0.0), 0.16),  # chest
    ((0.0, -0.12, 0.0), (0.0, 0.02, 0.0), 0.14),  # pelvis
    ((-0.2, -0.48, 0.0), (-0.32, -0.22, 0.05), 0.05),  # upper arms
    ((0.2, -0.48, 0.0), (0.32, -0.22, -0.05), 0.05),
    ((-0.32, -0.22, 0.05), (-0.38, 0.02, -0.1), 0.04),  # forearms
    ((0.32, -0.22, -0.05), (0.40, 0.0, 0.1), 0.04),
    ((-0.09, 0.05, 0.0), (-0.11, 0.42, 0.03), 0.07),  # thighs
    ((0.09, 0.05, 0.0), (0.12, 0.42, -0.03), 0.07),
    ((-0.11, 0.42, 0.03), (-0.12, 0.79, 0.0), 0.05),  # shins
    ((0.12, 0.42, -0.03), (0.13, 0.79, 0.0), 0.05),
]
COUNT = 34  # capsule resolution: 12 * (34^2 + 2) vertices


def body_mesh(offset=(0.0, 0.0, 3.0)) -> tuple[np.ndarray, np.ndarray]:
    parts = []
    for start, end, radius in BONES:
        a, b = np.array(start), np.array(end)
        axis = b - a
        cap = trimesh.creation.capsule(height=np.linalg.norm(axis), radius=radius, count=[COUNT, COUNT])
        cap.apply_transform(trimesh.geometry.align_vectors([0, 0, 1], axis / np.linalg.norm(axis)))
        cap.apply_translation((a + b) / 2 + np.asarray(offset))
        parts.append(cap)
    mesh = trimesh.util.concatenate(parts)
    return np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int64)


def intrinsics(size: int) -> tuple[float, float, float, float]:
    f = (size / 2) / np.tan(np.radians(55 / 2))
    return (f, f, size / 2, size / 2)


def photo(size: int) -> np.ndarray:
    from PIL import Image

    img = Image.open(ROOT / "assets/samples/astronaut.png").convert("RGB").resize((size, size))
    return np.asarray(img)


def median_ms(fn, runs: int) -> float:
    """Median wall-clock milliseconds of ``runs`` calls."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def median_cpu_ms(fn, runs: int) -> float:
    """Median process CPU milliseconds: close to the wall time on an idle machine, and far
    less disturbed than wall time when other jobs share the 2 cores (the work is 1-threaded)."""
    times = []
    for _ in range(runs):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return 1000 * float(np.median(times))


FIRST_CALL = """
import time, json
t0 = time.perf_counter()
import sys; sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
from bench_render import body_mesh, intrinsics, photo
from hmrkit.render import render_overlay
v, f = body_mesh(); img = photo(1024)
t1 = time.perf_counter()
render_overlay(img, [(v, f, None)], intrinsics(1024))
print(json.dumps({{"import_s": t1 - t0, "first_call_s": time.perf_counter() - t1}}))
"""


def first_calls() -> dict:
    """Fresh processes: empty numba cache (compile), then the same cache warm."""
    code = FIRST_CALL.format(root=str(ROOT), bench=str(Path(__file__).parent))
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for key in ("cold_cache", "warm_cache"):
            res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            out[key] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    first = first_calls()
    v, f = body_mesh()
    rows = []
    for size in (512, 1024):
        k, img = intrinsics(size), photo(size)
        meshes = [(v, f, None)]
        render_overlay(img, meshes, k)  # warm-up
        result = render_meshes(meshes, k, (size, size))
        rows.append(
            {
                "size": size,
                "people": 1,
                "overlay_ms": median_ms(lambda: render_overlay(img, meshes, k), args.runs),
                "overlay_cpu_ms": median_cpu_ms(lambda: render_overlay(img, meshes, k), args.runs),
                "render_meshes_ms": median_ms(lambda: render_meshes(meshes, k, (size, size)), args.runs),
                "blend_ms": median_ms(lambda: blend(img, result), args.runs),
                "side_view_ms": median_ms(lambda: render_side_view(meshes, k, (size, size)), args.runs),
                "covered_px": int(result.mask.sum()),
            }
        )
    three = [body_mesh((x, 0.0, z)) + (None,) for x, z in ((-0.9, 3.5), (0.0, 3.0), (0.8, 4.0))]
    k, img = intrinsics(1024), photo(1024)
    rows.append(
        {
            "size": 1024,
            "people": 3,
            "overlay_ms": median_ms(lambda: render_overlay(img, three, k), args.runs),
            "overlay_cpu_ms": median_cpu_ms(lambda: render_overlay(img, three, k), args.runs),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        glb_ms = median_ms(lambda: export_meshes(Path(tmp) / "b.glb", [(v, f, None)], overwrite=True), args.runs)

    k512 = intrinsics(512)
    preview = np.concatenate(
        [render_overlay(photo(512), three, k512), render_side_view(three, k512, (512, 512))], axis=1
    )
    from PIL import Image

    Image.fromarray(preview).save(args.out / "render.jpg", quality=85)

    report = {
        "machine": {
            "cpu_cores": os.cpu_count(),
            "device": "CPU only",
            "python": platform.python_version(),
            "numba": numba.__version__,
            "numpy": np.__version__,
            "load_avg_1min_at_end": round(os.getloadavg()[0], 2),  # the 2 cores are shared
        },
        "mesh": {"vertices": int(len(v)), "triangles": int(len(f)), "height_m": 1.7, "distance_m": 3.0},
        "runs": args.runs,
        "first_call": first,
        "warm": rows,
        "export_glb_ms": glb_ms,
    }
    (args.out / "render.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "render.md").write_text(markdown(report))
    print(markdown(report))


def markdown(r: dict) -> str:
    m, fc = r["mesh"], r["first_call"]
    lines = [
        "# Render benchmark (`benchmarks/bench_render.py`)",
        "",
        f"Machine: {r['machine']['cpu_cores']} CPU cores, CPU only; numba {r['machine']['numba']}, "
        f"numpy {r['machine']['numpy']}; shared machine, 1-min load average {r['machine']['load_avg_1min_at_end']} "
        f"at the end (other jobs running make times noisy). Mesh: {m['vertices']} vertices, {m['triangles']} triangles, "
        f"{m['height_m']} m tall at {m['distance_m']} m, 55 deg FOV. Median of {r['runs']} runs.",
        "",
        "| image | people | overlay ms | overlay CPU ms | render_meshes ms | blend ms | side view ms | covered px |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for w in r["warm"]:
        cells = [f"{w[k]:.1f}" if k in w else "-" for k in (
            "overlay_ms", "overlay_cpu_ms", "render_meshes_ms", "blend_ms", "side_view_ms"
        )]
        lines.append(f"| {w['size']}x{w['size']} | {w['people']} | " + " | ".join(cells) + f" | {w.get('covered_px', '-')} |")
    lines += [
        "",
        "ms: wall-clock medians; CPU ms: process CPU time (the renderer is single-threaded), "
        "the better guide to an idle machine's wall time when the load average is high.",
        "",
        "First call in a fresh process (1024 px overlay; import = numpy/numba/trimesh/hmrkit + mesh build):",
        "",
        "| numba cache | import s | first call s |",
        "|---|---|---|",
        f"| empty (JIT compile, once per machine) | {fc['cold_cache']['import_s']:.2f} | {fc['cold_cache']['first_call_s']:.2f} |",
        f"| warm (every later process) | {fc['warm_cache']['import_s']:.2f} | {fc['warm_cache']['first_call_s']:.2f} |",
        "",
        f"GLB export of the mesh (trimesh, with normals and colours): {r['export_glb_ms']:.1f} ms.",
        "",
        "`render.jpg`: three people over the sample photo (512 px) | the side view.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
