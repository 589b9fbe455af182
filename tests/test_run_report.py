"""``hmrkit run --report``: every input's exact status, and a run stopped with Ctrl-C that a rerun
finishes without redoing or losing anything."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hmrkit.cli import main
from hmrkit.run_report import RunReport

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "assets" / "samples" / "astronaut.png"
QUICK = ["--no-overlay", "--mesh-format", "none"]  # JSON and NPZ: enough to tell done from not done


def test_report_round_trip_and_atomic_write(tmp_path):
    report = RunReport(problems=["x: no such file or folder"])
    report.expect([Path("a.png"), Path("b.png"), Path("c.png"), Path("d.png")])
    report.done(Path("a.png"), [Path("out/a.json")])
    report.failed(Path("b.png"), "b.png: image file is truncated")
    report.skipped(Path("c.png"))
    report.write(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["counts"] == {"done": 1, "skipped": 1, "failed": 1, "not_run": 1}
    assert data["inputs"][0] == {"path": "a.png", "status": "done", "outputs": ["out/a.json"]}
    assert data["inputs"][1]["error"] == "b.png: image file is truncated"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left


@pytest.mark.slow
def test_report_gives_each_file_its_status(tmp_path, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(PHOTO, folder / "a.png")
    shutil.copy(PHOTO, folder / "sub" / "b.png")
    (folder / "broken.jpg").write_bytes(PHOTO.read_bytes()[:3000])
    (folder / "text.jpg").write_text("not a picture")
    assert main(["run", str(folder), "--out", str(out), "--report", str(tmp_path / "report.json"), *QUICK]) == 1
    errors = [line.removeprefix("hmrkit: error: ") for line in capsys.readouterr().err.splitlines() if line.startswith("hmrkit: error: ")]
    report = json.loads((tmp_path / "report.json").read_text())
    status = {Path(e["path"]).name: e for e in report["inputs"]}
    assert report["counts"] == {"done": 2, "skipped": 0, "failed": 2, "not_run": 0} and not report["interrupted"]
    assert {n: e["status"] for n, e in status.items()} == {"a.png": "done", "b.png": "done", "broken.jpg": "failed", "text.jpg": "failed"}
    assert sorted(e["error"] for e in status.values() if "error" in e) == sorted(errors) and len(errors) == 2
    assert all(Path(p).exists() for n in ("a.png", "b.png") for p in status[n]["outputs"])
    # a rerun: what is done is skipped, the broken files fail again
    assert main(["run", str(folder), "--out", str(out), "--report", str(tmp_path / "again.json"), *QUICK]) == 1
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["counts"] == {"done": 0, "skipped": 2, "failed": 2, "not_run": 0}


def interrupt_when(command: list[str], written: Path) -> None:
    """Run ``command`` and press Ctrl-C once ``written`` exists; it must stop with status 130, saying so."""
    # Ctrl-C's default action restored in the child: a shell without job control (CI scripts) starts
    # background jobs with SIGINT ignored, which children inherit and Python then leaves ignored
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not written.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.poll() is None, "the run ended before it could be interrupted"
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130 and "hmrkit: error: interrupted" in err


def _outputs(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.glob("*") if p.suffix in (".json", ".npz")}


@pytest.mark.slow
def test_ctrl_c_then_rerun_finishes_the_rest(tmp_path):
    folder, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    folder.mkdir()
    names = ["p1", "p2", "p3", "p4", "p5"]
    for name in names:
        shutil.copy(PHOTO, folder / f"{name}.png")
    command = [sys.executable, "-m", "hmrkit.cli", "run", str(folder), "--out", str(out), "--report", str(report), *QUICK]
    interrupt_when(command, out / "p1.npz")
    first = json.loads(report.read_text())
    assert first["interrupted"]
    done = {Path(e["path"]).stem for e in first["inputs"] if e["status"] == "done"}
    assert "p1" in done and first["counts"]["done"] + first["counts"]["not_run"] == len(names)
    assert all((out / f"{n}.json").exists() and (out / f"{n}.npz").exists() for n in done)
    before = _outputs(out)
    # the rerun skips what is done (its files untouched) and finishes every other photo
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-500:]
    second = json.loads(report.read_text())
    assert {Path(e["path"]).stem: e["status"] for e in second["inputs"]} == {n: "skipped" if n in done else "done" for n in names}
    after = _outputs(out)
    assert set(after) == {f"{n}{s}" for n in names for s in (".json", ".npz")}
    assert all(after[f"{n}{s}"] == before[f"{n}{s}"] for n in done for s in (".json", ".npz"))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no marker or temporary file left
    for name in names:
        assert json.loads((out / f"{name}.json").read_text())["people"]


def _frame_times(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("frame_*")}


@pytest.mark.slow
def test_video_ctrl_c_then_rerun_resumes_after_the_last_finished_frame(tmp_path):
    import cv2
    from conftest import shared_data

    video, out, report = shared_data("demo_images", "sample_video.mp4"), tmp_path / "out", tmp_path / "report.json"
    frames = 10
    command = [sys.executable, "-m", "hmrkit.cli", "run", str(video), "--out", str(out), "--report", str(report),
               "--max-frames", str(frames), "--mesh-format", "none"]
    interrupt_when(command, out / "sample_video" / "frame_000003.npz")
    first = json.loads(report.read_text())
    assert first["interrupted"] and first["counts"]["not_run"] == 1
    assert not (out / "sample_video_overlay.mp4").exists()
    from hmrkit.video import frames_already_done

    kept = frames_already_done(video, out, "sample_video")
    assert 3 <= kept < frames
    before = _frame_times(out / "sample_video")
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-500:]
    assert f"resuming after frame {kept - 1}" in rerun.stderr
    assert json.loads(report.read_text())["counts"]["done"] == 1
    after = _frame_times(out / "sample_video")
    assert set(after) == {f"frame_{i:06d}{s}" for i in range(frames) for s in (".json", ".npz")}
    # the finished frames were not fitted again: their files are the first run's
    assert all(after[n] == before[n] for n in before if int(n[6:12]) < kept)
    assert all(json.loads((out / "sample_video" / f"frame_{i:06d}.json").read_text())["frame_index"] == i for i in range(frames))
    capture = cv2.VideoCapture(str(out / "sample_video_overlay.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
    assert not [p for p in out.rglob(".*")]  # no partial overlay or temporary file left
    # a third run: the video is done, nothing is redone
    third = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0 and json.loads(report.read_text())["counts"]["skipped"] == 1
    assert _frame_times(out / "sample_video") == after
