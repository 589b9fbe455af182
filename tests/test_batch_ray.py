"""``hmrkit run --ray``: the same files and skip rules as the serial run, one failing input fails
alone (an input error, or a worker process dying on it), and a clear line without Ray."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from hmrkit.batch_ray import Job, RayUnavailable, _import_ray, _Worker, looks_like_address, run_on_ray
from hmrkit.cli import _ray_without_address, main

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "assets" / "samples" / "astronaut.png"
ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install ray==2.60.0)")


def test_ray_argument_takes_an_address_only_when_it_looks_like_one(tmp_path):
    assert _ray_without_address(["run", "--ray", "a.jpg", "--out", "o"]) == ["run", "--ray=local", "a.jpg", "--out", "o"]
    assert _ray_without_address(["run", "a.jpg", "--ray"]) == ["run", "a.jpg", "--ray=local"]
    assert _ray_without_address(["run", "--ray", "--out", "o", "a.jpg"]) == ["run", "--ray=local", "--out", "o", "a.jpg"]
    for address in ("auto", "10.0.0.7:6379", "head-node:6379", "ray://head:10001"):
        assert _ray_without_address(["run", "--ray", address, "a.jpg"]) == ["run", "--ray", address, "a.jpg"]
    assert _ray_without_address(["run", "a.jpg"]) == ["run", "a.jpg"]
    odd = tmp_path / "clip:1"  # a file whose name looks like host:port is an input
    odd.write_bytes(b"")
    assert not looks_like_address(str(odd))


def test_without_ray_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    with pytest.raises(RayUnavailable, match="pip install"):
        _import_ray()
    assert main(["run", "--ray", str(PHOTO), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['hmrkit: error: --ray needs Ray: pip install "ray==2.60.0"']
    assert not list(tmp_path.iterdir())


def _inputs(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    shutil.copy(PHOTO, folder / "a.png")
    shutil.copy(PHOTO, folder / "sub" / "b.png")
    (folder / "broken.jpg").write_bytes(PHOTO.read_bytes()[:2000])
    return folder


def _files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_ray_run_writes_what_the_serial_run_writes(tmp_path, capsys):
    inputs = _inputs(tmp_path / "in")
    serial, spread = tmp_path / "serial", tmp_path / "ray"
    assert main(["run", str(inputs), "--out", str(serial)]) == 1  # broken.jpg fails, the others are written
    capsys.readouterr()
    assert main(["run", "--ray", "--ray-workers", "2", str(inputs), "--out", str(spread)]) == 1
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "error" in line] == [
        line for line in err.splitlines() if line.startswith("hmrkit: error: ") and "broken.jpg" in line]
    assert len([line for line in err.splitlines() if "broken.jpg" in line]) == 1
    assert _files(spread) == _files(serial) == {f"{s}{e}" for s in ("a", "sub/b") for e in (".json", ".npz", ".glb", "_overlay.png")}
    for name in ("a.json", "sub/b.json"):
        ours, theirs = (json.loads((folder / name).read_text()) for folder in (spread, serial))
        assert len(ours["people"]) == len(theirs["people"]) == 1
        a, b = ours["people"][0], theirs["people"][0]
        assert np.allclose(a["pose"]["axis_angle"], b["pose"]["axis_angle"], atol=1e-3)
        assert a["shape"] == pytest.approx(b["shape"], abs=1e-3)
        assert a["translation"] == pytest.approx(b["translation"], abs=1e-3)
    # the skip rule: a rerun leaves what is done and fails the broken file again
    stamps = {p: p.stat().st_mtime_ns for p in spread.rglob("*") if p.is_file()}
    assert main(["run", "--ray", str(inputs), "--out", str(spread)]) == 1
    err = capsys.readouterr().err
    assert "skipping 2 image(s) already done" in err
    assert {p: p.stat().st_mtime_ns for p in spread.rglob("*") if p.is_file()} == stamps


class _DiesOnOne(_Worker):
    """A worker process that ends itself on the input named die.png (as a crash in native code would)."""

    def run(self, job: Job):
        if job.path.name == "die.png":
            os._exit(3)
        return super().run(job)


@pytest.mark.slow
def test_a_worker_dying_on_one_input_fails_that_input_only(tmp_path):
    from hmrkit.pipeline import PipelineConfig
    from hmrkit.writers import OutputOptions

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    folder = tmp_path / "in"
    folder.mkdir()
    jobs = []
    for name in ("one.png", "die.png", "two.png", "three.png"):
        shutil.copy(PHOTO, folder / name)
        jobs.append(Job(folder / name, Path(Path(name).stem)))
    lines = []
    options = OutputOptions(npz=False, mesh_format=None, overlay=False)
    outcomes = run_on_ray(jobs, PipelineConfig(), options, tmp_path / "out", workers=2, report=lines.append,
                          progress=False, worker_class=_DiesOnOne)
    by_name = {o.job.path.name: o for o in outcomes}
    assert set(by_name) == {"one.png", "die.png", "two.png", "three.png"}
    assert "died" in by_name["die.png"].error
    assert [n for n, o in by_name.items() if o.error is None] and all(
        by_name[n].error is None for n in ("one.png", "two.png", "three.png"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one.json", "three.json", "two.json"]
    assert lines == [f"hmrkit: error: {by_name['die.png'].error}"]


def test_an_address_nobody_answers_at_fails_at_once(tmp_path, capsys):
    from conftest import free_port  # a port nothing listens on

    address = f"127.0.0.1:{free_port()}"
    assert main(["run", "--ray", address, str(PHOTO), "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"hmrkit: error: --ray {address}: cannot reach the cluster: nothing answers at {address} (Connection refused)"]


@pytest.mark.slow
def test_ray_run_on_an_existing_cluster_by_address(tmp_path):
    import re
    import subprocess

    from conftest import free_port

    ray_command = str(Path(sys.executable).with_name("ray"))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    started = subprocess.run([ray_command, "start", "--head", f"--port={free_port()}", "--num-cpus=2",
                              "--include-dashboard=false", "--disable-usage-stats"],
                             capture_output=True, text=True, env=env, timeout=180)
    try:
        assert started.returncode == 0, started.stderr[-500:]
        address = re.search(r"ray start --address='([^']+)'", started.stdout + started.stderr)[1]
        inputs, out = _inputs(tmp_path / "in"), tmp_path / "out"
        # `ray start` turns token authentication on: a client without RAY_AUTH_MODE=token is refused, told how
        refused = subprocess.run([sys.executable, "-m", "hmrkit.cli", "run", "--ray", address, str(PHOTO), "--out", str(out)],
                                 cwd=ROOT, capture_output=True, text=True, env={**env, "RAY_AUTH_MODE": "disabled"}, timeout=600)
        assert refused.returncode == 1 and not _files(out)
        assert refused.stderr.strip().splitlines()[-1].startswith(f"hmrkit: error: --ray {address}: cannot start or reach")
        assert "RAY_AUTH_MODE=token" in refused.stderr
        env["RAY_AUTH_MODE"] = "token"  # the token: ~/.ray/auth_token, which `ray start` wrote
        run = subprocess.run([sys.executable, "-m", "hmrkit.cli", "run", "--ray", address, str(inputs), "--out", str(out),
                              "--mesh-format", "none", "--report", str(tmp_path / "report.json")],
                             cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 1, run.stderr[-500:]  # broken.jpg fails, alone
        assert [line for line in run.stderr.splitlines() if line.startswith("hmrkit: error: ")] == [
            line for line in run.stderr.splitlines() if "broken.jpg" in line and line.startswith("hmrkit: error: ")]
        assert _files(out) == {f"{s}{e}" for s in ("a", "sub/b") for e in (".json", ".npz", "_overlay.png")}
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["counts"] == {"done": 2, "skipped": 0, "failed": 1, "not_run": 0}
        assert all(len(json.loads((out / n).read_text())["people"]) == 1 for n in ("a.json", "sub/b.json"))
    finally:
        subprocess.run([ray_command, "stop", "--force"], capture_output=True, env=env, timeout=120)
