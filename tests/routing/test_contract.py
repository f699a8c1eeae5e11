"""Routing's staff API against its own OpenAPI document, fuzzed by Schemathesis.

Routing runs for real: `python -m services.routing` (uvicorn) on a free port of 127.0.0.1, on
the test session's nats-server, a SQLite file and the demo organisation, with a few petitions
already turned into cases. Schemathesis reads `/openapi.json` from it and runs every phase
(examples, coverage, fuzzing, stateful through the document's links) over every operation,
signed in as the commune's leader (who leads every demo case, so the case operations are
reachable, not just answered 404); case and member ids are drawn from the real ones. Every
check must pass: no 5xx, every status code and content type documented, every body as its
schema says, bad input refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shared.embedded_nats import free_port
from shared.events import PetitionSubmitted
from tests.support import connect_nats, eventually, service_nats_env

HAMLET = "my-hoa-hung-my-khanh-2"
LEADER = "danguy.myhoahung"
CATEGORIES = ("roads_lighting", "environment_sanitation", "security_order", "other")
MEMBERS = ("buihoangluc", "dokimhanh", "bithu.mykhanh2", LEADER, "admin", "nobody")
SECRET = "contract-test-secret-" + "x" * 32
FUZZ_SECONDS = 50


@dataclass
class Running:
    url: str
    log: Path


@pytest.fixture
def routing_process(nats_url: str, tmp_path: Path) -> Iterator[Running]:
    port = free_port()
    env = {
        **os.environ,
        "PETITIONS_ENV": "test",
        **service_nats_env(nats_url, "routing"),
        "PETITIONS_HOST": "127.0.0.1",
        "PETITIONS_ROUTING_PORT": str(port),
        "PETITIONS_ROUTING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}",
        "PETITIONS_ROUTING_SEED_DEMO": "true",
        "PETITIONS_SECRET_KEY": SECRET,
        "PETITIONS_VAR_DIR": str(tmp_path),
        "PETITIONS_LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "routing.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.routing"], env=env, stdout=out, stderr=out
        )
    try:
        yield Running(f"http://127.0.0.1:{port}", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def ready(url: str) -> bool:
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            return (await client.get("/readyz")).status_code == 200
    except httpx.TransportError:
        return False


async def submit_petitions(nats_url: str, count: int) -> None:
    nc = await connect_nats(nats_url)
    try:
        js = nc.jetstream()
        for i in range(count):
            event = PetitionSubmitted.new(
                producer="intake",
                petition_id=uuid.uuid4(),
                reference=f"MHH-2026-{i:04d}",
                unit_id=HAMLET,
                category_id=CATEGORIES[i % len(CATEGORIES)],
                title=f"Phản ánh số {i}",
                description="Đèn đường trước nhà văn hóa ấp tắt ba đêm nay.",
                location="Nhà văn hóa ấp Mỹ Khánh 2",
            )
            await js.publish(
                event.subject, event.to_json(), headers={"Nats-Msg-Id": str(event.event_id)}
            )
    finally:
        await nc.close()


@pytest.fixture
async def with_cases(routing_process: Running, nats_url: str) -> AsyncIterator[list[str]]:
    """Routing up, with cases of the demo hamlet; their ids."""
    await eventually(lambda: ready(routing_process.url), what="routing ready", timeout=60)
    await submit_petitions(nats_url, 12)
    async with httpx.AsyncClient(base_url=routing_process.url) as client:
        token = await sign_in(client)

        async def all_cases() -> list[str]:
            listed = await client.get(
                "/api/v1/cases", params={"scope": "unit"}, headers={"Authorization": token}
            )
            ids = [c["id"] for c in listed.json()]
            return ids if len(ids) == 12 else []

        yield await eventually(all_cases, what="twelve cases open")


async def sign_in(client: httpx.AsyncClient, username: str = LEADER) -> str:
    response = await client.post(
        "/api/v1/auth/token", data={"username": username, "password": "demo"}
    )
    assert response.status_code == 200, response.text
    return f"Bearer {response.json()['access_token']}"


def config(path: Path, case_ids: list[str]) -> Path:
    """Schemathesis configuration: real ids most of the time, made-up ones the rest."""
    quoted = ", ".join(f'"{i}"' for i in case_ids)
    members = ", ".join(f'"{m}"' for m in MEMBERS)
    path.write_text(
        f"""
[dictionaries.cases]
values = [{quoted}]

[dictionaries.members]
values = [{members}]

[parameters]
"path.case_id" = {{ dictionary = "cases", probability = 0.9 }}
"path.member_id" = {{ dictionary = "members", probability = 0.9 }}
"body.member_id" = {{ dictionary = "members", probability = 0.9 }}

# Two rules JSON Schema cannot say, refused as 422 with a sentence saying why: a new holder
# must serve the case's unit; an absence must end after it starts.
[[operations]]
include-path-regex = "/reassign$|/absence$"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", 401, 403, 404, 409, 422, 429
]
"""
    )
    return path


def fuzz(url: str, token: str, config_file: Path, seconds: int, *extra: str) -> None:
    """Run Schemathesis over the running service; every failure fails the test."""
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "--config-file",
        str(config_file),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: {token}",
        "--checks",
        "all",
        "--max-time",
        str(seconds),
        "--workers",
        "2",
        "--max-examples",
        "30",
        "--request-timeout",
        "10",
        *extra,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds * 3, cwd=config_file.parent
    )
    assert result.returncode == 0, f"{result.stdout[-20000:]}\n{result.stderr}"


async def test_the_staff_api_keeps_its_contract(
    with_cases: list[str], routing_process: Running, tmp_path: Path
) -> None:
    """Signed in as the commune's leader: every operation; then as the administrator, the
    administrators' own (the dead-letter list), which a leader is refused."""
    async with httpx.AsyncClient(base_url=routing_process.url) as client:
        leader = await sign_in(client, LEADER)
        admin = await sign_in(client, "admin")
        # Before the fuzzer's wrong passwords make this address wait.
        throwaway = await sign_in(client, LEADER)
    settings = config(tmp_path / "schemathesis.toml", with_cases)
    try:
        # The fuzzer's CLI blocks this test's loop; nothing else runs in it meanwhile.
        # Sign-out would end the fuzzer's own session: it gets a session of its own, last.
        fuzz(
            routing_process.url,
            leader,
            settings,
            FUZZ_SECONDS,
            "--exclude-path",
            "/api/v1/auth/signout",
        )
        fuzz(routing_process.url, admin, settings, 10, "--include-path-regex", "^/api/v1/admin/")
        fuzz(
            routing_process.url,
            throwaway,
            settings,
            10,
            "--include-path",
            "/api/v1/auth/signout",
            "--phases",
            "coverage,fuzzing",
        )
    except AssertionError as failed:
        server_log = routing_process.log.read_text(errors="replace")[-5000:]
        raise AssertionError(f"{failed}\n--- routing's log ---\n{server_log}") from None
