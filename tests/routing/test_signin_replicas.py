"""The sign-in throttle holds across replicas and cannot be dodged with a forged address: two
routing processes on one database, tries alternating between them, each try claiming another
`X-Forwarded-For`. The forwarded address counts only when the peer is a configured proxy."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from services.routing.app import MIGRATIONS_DIR
from services.routing.org import DEMO_ORG_FILE, import_org
from shared.db import create_engine
from shared.embedded_nats import free_port
from shared.migrate import upgrade_async
from tests.routing.test_flow import ROADS_MEMBER
from tests.routing.test_replicas import ROOT, Replica
from tests.support import eventually, service_nats_env

TOKEN = "/api/v1/auth/token"


async def prepared_database(url: str) -> None:
    """Migrated, with the demo organisation, before either replica starts (two processes
    migrating one SQLite file at once would race)."""
    await upgrade_async(MIGRATIONS_DIR, url)
    engine = create_engine(url)
    try:
        await import_org(engine, DEMO_ORG_FILE, env="test")
    finally:
        await engine.dispose()


async def ready(base: str) -> bool:
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        try:
            return (await client.get("/readyz")).status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture
async def start_replicas(tmp_path: Path, nats_url: str) -> AsyncIterator[Callable[..., object]]:
    """Starts two routing processes on one database (`url`) with `extra` settings; answers
    their base URLs."""
    started: list[Replica] = []

    async def start(url: str, **extra: str) -> list[str]:
        await prepared_database(url)
        bases = []
        for name in ("a", "b"):
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("PETITIONS_")}
            env.update(
                {
                    "PYTHONPATH": str(ROOT),
                    "PETITIONS_ENV": "test",
                    "PETITIONS_ROUTING_DATABASE_URL": url,
                    **service_nats_env(nats_url, "routing"),
                    "PETITIONS_ROUTING_PORT": str(port),
                    "PETITIONS_VAR_DIR": str(tmp_path / name),
                    "PETITIONS_ROUTING_SEED_DEMO": "false",
                    "PETITIONS_LOG_FORMAT": "json",
                    **extra,
                }
            )
            replica = Replica(name, env, tmp_path / f"routing-{name}.log")
            replica.start()
            started.append(replica)
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            await eventually(lambda b=base: ready(b), timeout=60, what=f"{base} ready")
        return bases

    yield start
    for replica in started:
        replica.stop()


async def try_sign_in(
    client: httpx.AsyncClient, base: str, username: str, password: str, forwarded: str
) -> httpx.Response:
    return await client.post(
        f"{base}{TOKEN}",
        data={"username": username, "password": password},
        headers={"X-Forwarded-For": forwarded},
    )


async def test_a_username_is_throttled_whichever_replica_answers_and_whatever_address_it_claims(
    start_replicas: Callable[..., object], database_url: str
) -> None:
    """On SQLite (one file) and on PostgreSQL."""
    a, b = await start_replicas(database_url)  # type: ignore[misc]
    async with httpx.AsyncClient(timeout=30) as client:
        statuses = []
        for i in range(7):
            base = (a, b)[i % 2]
            answer = await try_sign_in(client, base, "dokimhanh", "wrong", f"198.51.100.{i + 1}")
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["type"] == "urn:petitions:problem:too-many-attempts"
                assert "Too many failed sign-ins" in answer.json()["detail"]
                assert "Đăng nhập sai quá nhiều lần" in answer.json()["detail"]
                retry_after = int(answer.headers["retry-after"])
                assert 0 < retry_after <= 15 * 60
                assert answer.json()["retry_after"] == retry_after
        assert statuses == [401, 401, 401, 401, 401, 429, 429]
        # Even the right password waits now, on either replica, from any address.
        for base in (a, b):
            right = await try_sign_in(client, base, "dokimhanh", "demo", "192.0.2.77")
            assert right.status_code == 429
        # Another person from the same (real) address is not held up by it.
        other = await try_sign_in(client, b, ROADS_MEMBER, "demo", "198.51.100.1")
        assert other.status_code == 200, other.text


@pytest.mark.parametrize("trusted", [False, True], ids=["no-proxy-configured", "proxy-trusted"])
async def test_the_forwarded_address_counts_only_from_a_configured_proxy(
    start_replicas: Callable[..., object], trusted: bool, sqlite_url: str
) -> None:
    extra = {"PETITIONS_ROUTING_SIGNIN_MAX_FAILURES_PER_ADDRESS": "3"}
    if trusted:
        extra["PETITIONS_TRUSTED_PROXIES"] = "127.0.0.1"
    a, b = await start_replicas(sqlite_url, **extra)  # type: ignore[misc]
    async with httpx.AsyncClient(timeout=30) as client:
        # Three failures, three usernames (below their own limit), one claimed address.
        for i, username in enumerate(("nobody1", "nobody2", "nobody3")):
            answer = await try_sign_in(client, (a, b)[i % 2], username, "x", "203.0.113.7")
            assert answer.status_code == 401
        same = await try_sign_in(client, a, "nobody4", "x", "203.0.113.7")
        assert same.status_code == 429
        # Another claimed address: a different client only if a trusted proxy said so.
        elsewhere = await try_sign_in(client, b, ROADS_MEMBER, "demo", "203.0.113.8")
        assert elsewhere.status_code == (200 if trusted else 429), elsewhere.text
