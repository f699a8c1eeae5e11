"""Checks on the repository as a whole: the compose file, service boundaries, the two commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_compose_file_validates_against_the_compose_spec() -> None:
    # The schema ships inside check-jsonschema: no network needed.
    result = run(
        str(BIN / "check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        "docker-compose.yml",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_migrations_before_every_service_on_a_replicated_cluster() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"nats-1", "nats-2", "nats-3", "postgres", "migrate"} <= services.keys()
    for name in ("intake", "routing", "notify"):
        svc = services[name]
        assert svc["command"] == ["python", "-m", f"services.{name}"]
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        env = svc["environment"]
        assert env["PETITIONS_STREAM_REPLICAS"] == "3"
        assert env["PETITIONS_NATS_URL"].count("nats://") == 3
        assert env[f"PETITIONS_{name.upper()}_DATABASE_URL"].endswith(f"@postgres:5432/{name}")
        assert "/readyz" in " ".join(svc["healthcheck"]["test"])
    init = (ROOT / "deploy/postgres/init.sql").read_text()
    for name in ("intake", "routing", "notify"):
        assert f"CREATE DATABASE {name};" in init


def test_import_contracts_hold() -> None:
    """Services never import each other; shared never imports a service."""
    result = run(str(BIN / "lint-imports"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("command", ["make up", "make test"])
def test_readme_shows_the_two_commands(command: str) -> None:
    assert command in (ROOT / "README.md").read_text()
    target = command.split()[1]
    assert f"\n{target}:" in (ROOT / "Makefile").read_text()


def test_makefile_targets_parse() -> None:
    for target in ("up", "test", "lint", "bench", "faults", "clean"):
        result = run("make", "-n", target)
        assert result.returncode == 0, f"make -n {target}: {result.stderr}"


def test_compose_runs_the_bus_authenticated_with_one_seed_per_service() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "petitions nats credentials" in " ".join(services["nats-credentials"]["command"])
    for node in ("nats-1", "nats-2", "nats-3"):
        command = services[node]["command"]
        assert command[:2] == ["-c", "/etc/nats-auth/nats-server.conf"]
        # The --cluster flag would clear the route authorization the config sets.
        assert not any(arg.startswith("--cluster") or arg == "--routes" for arg in command)
        deps = services[node]["depends_on"]
        assert deps["nats-credentials"]["condition"] == "service_completed_successfully"
    for name in ("intake", "routing", "notify"):
        svc = services[name]
        assert svc["environment"]["PETITIONS_NATS_NKEY_SEED"] == "/run/petitions-nats/seed.nk"
        [mount] = [v for v in svc["volumes"] if v["source"] == "nats-auth"]
        assert mount["volume"]["subpath"] == name
        assert mount["read_only"] is True
