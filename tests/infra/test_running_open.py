"""Production refuses to start open (demo secret, demo accounts, the demo mailbox), each with a
message naming what to set; development starts open and says so, one warning line per thing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi import FastAPI
from pydantic import ValidationError

from services.intake.app import create_app as create_intake
from services.intake.settings import Settings as IntakeSettings
from services.notify.app import create_app as create_notify
from services.notify.settings import Settings as NotifySettings
from services.routing.app import create_app as create_routing
from services.routing.settings import Settings as RoutingSettings
from tests.support import service_nats

ROOT = Path(__file__).parents[2]
STRONG = "s" * 40


def run_service(service: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m services.<service>` with only these PETITIONS_ variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PETITIONS_")}
    return subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


def test_production_refuses_the_demo_mailbox_at_start() -> None:
    result = run_service("notify", PETITIONS_ENV="production", PETITIONS_SECRET_KEY=STRONG)
    assert result.returncode == 2, result.stderr
    assert "PETITIONS_SMTP_HOST" in result.stderr
    assert "the demo mailbox is refused" in result.stderr


@pytest.mark.parametrize("settings", [IntakeSettings, RoutingSettings, NotifySettings])
def test_production_refuses_the_demo_secret(settings: Any) -> None:
    with pytest.raises(ValidationError, match="PETITIONS_SECRET_KEY"):
        settings(env="production", smtp_host="smtp.example.vn")


def test_production_refuses_the_demo_organisation() -> None:
    with pytest.raises(ValidationError, match="PETITIONS_ROUTING_SEED_DEMO"):
        RoutingSettings(env="production", secret_key=STRONG, seed_demo=True)
    # Left to the environment, production never seeds it.
    assert not RoutingSettings(env="production", secret_key=STRONG).should_seed_demo


def test_production_with_smtp_and_a_real_secret_is_accepted() -> None:
    settings = NotifySettings(env="production", secret_key=STRONG, smtp_host="smtp.example.vn")
    assert not settings.embedded_mailbox
    assert settings.running_open() == []


async def _open_reasons(app: FastAPI) -> list[str]:
    with structlog.testing.capture_logs() as logs:
        async with app.router.lifespan_context(app):
            pass
    return [
        str(line["reason"])
        for line in logs
        if line["event"] == "running_open_for_development" and line["log_level"] == "warning"
    ]


async def test_development_says_loudly_it_runs_open(nats_url: str, tmp_path: Path) -> None:
    common: dict[str, Any] = {"var_dir": tmp_path}
    intake = await _open_reasons(
        create_intake(
            IntakeSettings(
                database_url=f"sqlite:///{tmp_path / 'intake.db'}",
                **service_nats(nats_url, "intake"),
                **common,
            )
        )
    )
    routing = await _open_reasons(
        create_routing(
            RoutingSettings(
                database_url=f"sqlite:///{tmp_path / 'routing.db'}",
                **service_nats(nats_url, "routing"),
                **common,
            )
        )
    )
    notify = await _open_reasons(
        create_notify(
            NotifySettings(
                database_url=f"sqlite:///{tmp_path / 'notify.db'}",
                **service_nats(nats_url, "notify"),
                **common,
            )
        )
    )

    assert [r.split(":")[0] for r in intake] == ["PETITIONS_SECRET_KEY"]
    assert len(routing) == 2
    assert "demo organisation" in routing[1]
    assert len(notify) == 2
    assert "/mail" in notify[1]

    # A configured development process says nothing.
    quiet = await _open_reasons(
        create_notify(
            NotifySettings(
                database_url=f"sqlite:///{tmp_path / 'notify.db'}",
                secret_key=STRONG,
                smtp_host="127.0.0.1",
                **service_nats(nats_url, "notify"),
                **common,
            )
        )
    )
    assert quiet == []
