"""`petitions` commands: refusing bad configuration, migrating, importing, running the stack."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from services.cli import main
from shared.embedded_nats import EmbeddedNats, free_port, wait_for_port
from shared.nats_auth import BusCredentials
from tests.support import eventually_sync

SERVICES = ("intake", "routing", "notify")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETITIONS_")}
    return {**env, **extra}


def petitions(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "petitions"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("PETITIONS_INTAKE_PORT", "eighty", "PETITIONS_INTAKE_PORT"),
        ("PETITIONS_NATS_URL", "http://127.0.0.1:4222", "PETITIONS_NATS_URL"),
    ],
)
def test_up_refuses_bad_configuration_with_exit_code_2(
    variable: str, value: str, named: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, ["up", "--var", str(tmp_path)], env={variable: value})
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "không hợp lệ / invalid configuration" in result.output


def test_migrate_refuses_bad_configuration_with_exit_code_2(tmp_path: Path) -> None:
    result = petitions(
        "migrate", "--service", "intake", env=clean_env(PETITIONS_NATS_URL="http://nope")
    )
    assert result.returncode == 2, result.stderr
    assert "PETITIONS_NATS_URL" in result.stderr


def test_migrate_creates_every_schema_on_a_fresh_var_dir_and_is_idempotent(tmp_path: Path) -> None:
    env = clean_env(
        **{
            f"PETITIONS_{svc.upper()}_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / f'{svc}.db'}"
            for svc in SERVICES
        }
    )
    for _ in range(2):
        result = petitions("migrate", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
    for svc in SERVICES:
        with sqlite3.connect(tmp_path / "var" / f"{svc}.db") as db:
            (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert revision
        assert {"outbox", "inbox"} <= tables, f"{svc}: {sorted(tables)}"


def test_org_import_reports_a_bad_file_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "org.yaml"
    bad.write_text("units:\n  - id: [unclosed\n", encoding="utf-8")
    env = clean_env(PETITIONS_ROUTING_DATABASE_URL=f"sqlite:///{tmp_path / 'routing.db'}")
    result = petitions("org", "import", str(bad), env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "org.yaml" in result.stderr


@pytest.mark.e2e
def test_up_runs_the_stack_and_stops_it_cleanly_on_sigint(
    tmp_path: Path, nats_server: EmbeddedNats, nats_credentials: BusCredentials
) -> None:
    ports = {svc: free_port() for svc in SERVICES}
    env = clean_env(
        PETITIONS_NATS_URL=nats_server.url,
        **{f"PETITIONS_{svc.upper()}_PORT": str(port) for svc, port in ports.items()},
    )
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "petitions"),
            "up",
            "--var",
            str(tmp_path / "var"),
            "--nats-credentials",
            str(nats_credentials.directory),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        eventually_sync(
            lambda: any("is ready" in line for line in lines) or proc.poll() is not None,
            timeout=120,
            what="petitions up reports ready",
        )
        assert proc.poll() is None, "".join(lines)
        output = "".join(lines)
        assert f"http://127.0.0.1:{ports['intake']}/" in output
        assert "[routing]" in output
        for port in ports.values():
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
    for port in ports.values():
        assert not wait_for_port("127.0.0.1", port, timeout=0.2), f"port {port} still open"
    assert (tmp_path / "var" / "routing.db").exists()
