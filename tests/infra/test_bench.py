"""`make bench`'s harness works end to end: three seconds of wrk saturation on SQLite go
through the real stack and come back as a table, targets and a results file. Nothing here
asserts a time; the figures belong to `make bench` on a quiet machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.wrk import WrkMissing, ensure_wrk

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_a_short_saturation_on_sqlite_is_measured_and_reported(tmp_path: Path) -> None:
    try:
        ensure_wrk()
    except WrkMissing as exc:
        pytest.skip(str(exc))
    out = tmp_path / "results.json"
    result = subprocess.run(
        [
            sys.executable, "bench/run.py", "--duration", "3", "--no-postgres",
            "--modes", "saturation", "--settle", "40", "--stall", "20",
            "--raw-seconds", "1", "--out", str(out), "--workdir", str(tmp_path / "run"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(out.read_text())
    (mode,) = data["modes"]
    assert (mode["backend"], mode["mode"]) == ("sqlite", "saturation")
    assert mode["accepted"] > 0
    # Requests still in flight when wrk stopped are stored too.
    assert mode["stored"] >= mode["accepted"]
    assert data["raw_jetstream"]["accepted"] > 0
    assert "| sqlite | saturation | max |" in result.stdout
    assert any("sqlite: stack RSS idle" in line for line in data["targets"])
