"""``hmrkit doctor`` run for real on this installation (once as the command, in a fresh process;
then in this process, as ``hmrkit.cli.main``) and on damaged caches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hmrkit.body.anny_snapshot import SNAPSHOT_NAME
from hmrkit.paths import CACHE_ENV, cache_dir, weights_dir

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ("python packages", "MediaPipe models", "cache folder", "Anny body model", "shipped weights", "renderer")


def parse(stdout: str) -> dict[str, tuple[str, str]]:
    """{check: (ok|FAIL, its message)} from doctor's lines."""
    lines = {}
    for line in stdout.splitlines():
        status, rest = line.split(maxsplit=1)
        name, message = rest.split(": ", 1)
        lines[name] = (status, message)
    return lines


def doctor_command(cache: Path) -> tuple[int, dict[str, tuple[str, str]], str]:
    """Exit status, parsed lines and stderr of ``python -m hmrkit.cli doctor`` with ``cache`` as the cache folder."""
    env = {**os.environ, CACHE_ENV: str(cache)}
    done = subprocess.run([sys.executable, "-m", "hmrkit.cli", "doctor"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return done.returncode, parse(done.stdout), done.stderr


@pytest.fixture
def doctor(monkeypatch, capsys):
    """``hmrkit doctor`` in this process (the CLI's main): the same checks without a fresh interpreter's imports."""
    from hmrkit.cli import main

    def run(cache: Path) -> tuple[int, dict[str, tuple[str, str]], str]:
        monkeypatch.setenv(CACHE_ENV, str(cache))
        capsys.readouterr()
        code = main(["doctor"])
        out = capsys.readouterr()
        return code, parse(out.out), out.err

    return run


@pytest.mark.slow
def test_doctor_command_passes_here_with_an_empty_cache(tmp_path):
    code, lines, stderr = doctor_command(tmp_path / "cache")
    assert code == 0 and stderr.strip().splitlines()[-1] == "all checks passed"
    assert tuple(lines) == CHECKS and all(status == "ok" for status, _ in lines.values())
    assert f"torch {torch.__version__}" in lines["python packages"][1]
    assert lines["shipped weights"][1] == ", ".join(sorted(p.name for p in weights_dir().glob("*.safetensors")))
    assert str(tmp_path / "cache") in lines["cache folder"][1] and (tmp_path / "cache").is_dir()  # made, and left empty
    assert list((tmp_path / "cache").iterdir()) == []
    assert lines["Anny body model"][1].startswith("not built yet") and SNAPSHOT_NAME in lines["Anny body model"][1]


def test_doctor_reads_a_built_snapshot(doctor):
    snapshot = cache_dir() / SNAPSHOT_NAME
    if not snapshot.is_file():
        pytest.skip(f"no Anny snapshot built at {snapshot} yet")
    code, lines, _ = doctor(cache_dir())
    assert code == 0 and lines["Anny body model"][0] == "ok"
    assert lines["Anny body model"][1].startswith("snapshot OK (13718 vertices")  # Anny's mesh (benchmarks/results/body.md)


def test_doctor_reports_a_cache_path_that_is_a_file(doctor, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    code, lines, stderr = doctor(blocker)
    assert code == 1 and stderr.strip().splitlines()[-1] == "1 check(s) failed" and "Traceback" not in stderr
    assert tuple(lines) == CHECKS  # every check still ran
    assert lines["cache folder"][0] == "FAIL" and [n for n, (s, _) in lines.items() if s == "FAIL"] == ["cache folder"]


def test_doctor_reports_a_damaged_snapshot(doctor, tmp_path):
    (tmp_path / SNAPSHOT_NAME).write_bytes(b"\x00" * 64)  # a truncated file where the snapshot belongs
    code, lines, stderr = doctor(tmp_path)
    assert code == 1 and "Traceback" not in stderr
    status, message = lines["Anny body model"]
    assert status == "FAIL" and "unreadable" in message and SNAPSHOT_NAME in message
    assert [n for n, (s, _) in lines.items() if s == "FAIL"] == ["Anny body model"]
