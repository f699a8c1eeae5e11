"""Routing refuses to start with configuration that is wrong or unsafe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.routing.app import create_app
from services.routing.org import DEMO_ORG_FILE, OrgFileError
from services.routing.settings import Settings
from tests.support import service_nats

ROOT = Path(__file__).parents[2]


def test_bad_configuration_exits_2_with_a_clear_message() -> None:
    env = {**os.environ, "PETITIONS_ROUTING_PORT": "not-a-port", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "services.routing"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr
    assert "PETITIONS_ROUTING_PORT" in result.stderr


async def test_production_refuses_the_demo_password(sqlite_url: str, nats_url: str) -> None:
    settings = Settings(
        **service_nats(nats_url, "routing"),
        env="production",
        secret_key="x" * 40,
        database_url=sqlite_url,
        org_file=DEMO_ORG_FILE,
    )
    app = create_app(settings)
    with pytest.raises(OrgFileError, match="demo password"):
        async with app.router.lifespan_context(app):
            pass


def test_production_refuses_the_test_clock() -> None:
    with pytest.raises(ValueError, match="PETITIONS_CLOCK_FILE"):
        Settings(env="production", secret_key="x" * 40, clock_file="/tmp/clock")
