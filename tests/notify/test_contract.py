"""notify against its own contract. The service runs as in production (`python -m
services.notify`: uvicorn on 127.0.0.1, the session's real nats-server, SQLite), takes in a few
petitions from real events, and Schemathesis drives every operation of the OpenAPI document
it serves, as an administrator and as a unit leader: no 5xx, and every answer with a documented
status, content type and schema. The petitions it knows are then asked for by their real ids,
so the documented shapes of full answers are checked too, not only those of refusals."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import schemathesis

from services.notify.app import ERRORS
from services.notify.errors import NotifyError
from shared.embedded_nats import EmbeddedNats, free_port
from shared.events import CaseAccepted, CaseAssigned, CaseResolved, Event, PetitionSubmitted
from tests.conftest import reset_stream
from tests.support import connect_nats, eventually, service_nats_env

from .conftest import SECRET, WEBHOOK_SECRET, fake_intake, fake_routing, staff_token

WARD, UNIT, GROUP, MEMBER = "phuong-my-thoi", "khom-thoi-an-a", "to-2", "m-lan"
PETITION = uuid.UUID("5f1c0d2e-8a4b-4c6d-9e0f-1a2b3c4d5e6f")
# Each Schemathesis run stops generating after this long, so the module stays under 2 minutes.
RUN_SECONDS = 25
CONFIG = Path(__file__).with_name("schemathesis.toml")


@dataclass
class Notify:
    url: str
    log: Path


def petition_events(now: datetime) -> list[Event]:
    case_id = uuid.uuid4()
    return [
        PetitionSubmitted.new(
            producer="intake",
            petition_id=PETITION,
            occurred_at=now - timedelta(hours=3),
            reference="PA-CONTRACT",
            unit_id=UNIT,
            category_id="roads",
            title="Đèn đường hỏng / Broken street light",
            description="Đèn không sáng",
        ),
        CaseAssigned.new(
            producer="routing",
            petition_id=PETITION,
            occurred_at=now - timedelta(hours=2),
            case_id=case_id,
            rung=0,
            unit_id=UNIT,
            member_id=MEMBER,
            member_username="lan",
            member_name="Nguyễn Thị Lan",
            member_email="lan@example.org",
            due_at=now + timedelta(days=3),
        ),
        CaseAccepted.new(
            producer="routing",
            petition_id=PETITION,
            occurred_at=now - timedelta(hours=1),
            case_id=case_id,
            member_id=MEMBER,
        ),
        CaseResolved.new(
            producer="routing",
            petition_id=PETITION,
            occurred_at=now - timedelta(minutes=30),
            case_id=case_id,
            member_id=MEMBER,
            explanation="Đã thay bóng đèn / The bulb was replaced",
        ),
    ]


# The khóm meets weekly and its digest goes out up to a week before: one is due at any time.
CHANNELS = f"""
batching: {{window_minutes: 0}}
meetings:
  {UNIT}: {{name: Chi bộ khóm Thới An A, weekday: 0, at: "19:00", digest_hours_before: 168}}
"""


def notify_env(nats_url: str, var_dir: Path, port: int) -> dict[str, str]:
    channels = var_dir / "channels.yaml"
    channels.write_text(CHANNELS, encoding="utf-8")
    return {
        **os.environ,
        "PETITIONS_ENV": "test",
        **service_nats_env(nats_url, "notify"),
        "PETITIONS_SECRET_KEY": SECRET,
        "PETITIONS_HOST": "127.0.0.1",
        "PETITIONS_NOTIFY_PORT": str(port),
        "PETITIONS_VAR_DIR": str(var_dir),
        "PETITIONS_MAIL_DIR": str(var_dir / "mail"),
        "PETITIONS_NOTIFY_DATABASE_URL": f"sqlite+aiosqlite:///{var_dir / 'notify.db'}",
        "PETITIONS_NOTIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PETITIONS_NOTIFY_CHANNELS_FILE": str(channels),
        "PETITIONS_NOTIFY_SCHEDULE_POLL_S": "0.5",
        "PETITIONS_NOTIFY_CONTACT_LOOKUP_TIMEOUT_S": "2",
        "PETITIONS_LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="module")
def started(
    nats_server: EmbeddedNats, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Notify]:
    var_dir = tmp_path_factory.mktemp("notify-contract")
    port = free_port()
    log = var_dir / "notify.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.notify"],
            env=notify_env(nats_server.url, var_dir, port),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Notify(url=f"http://127.0.0.1:{port}", log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
async def notify(started: Notify, nats_server: EmbeddedNats) -> AsyncIterator[Notify]:
    """notify ready, with one petition taken in (submitted, assigned, accepted, resolved) and
    the khóm's meeting digest made, and routing's and intake's look-ups answered over NATS as
    those services answer them."""
    nc = await connect_nats(nats_server.url)
    try:
        async with (
            fake_routing(nats_server.url) as routing,
            fake_intake(nats_server.url) as intake,
            httpx.AsyncClient(base_url=started.url, timeout=5) as http,
        ):
            routing.add_unit(WARD, "Phường Mỹ Thới")
            routing.add_unit(UNIT, "Khóm Thới An A", WARD)
            routing.add_unit(GROUP, "Tổ 2", UNIT)
            routing.add(MEMBER, "Nguyễn Thị Lan", UNIT, email="lan@example.org")
            routing.add("m-tai", "Trần Văn Tài", GROUP)
            intake.contacts[str(PETITION)] = {
                "found": True,
                "name": "Bà Hoa",
                "email": "hoa@example.org",
                "wants_updates": True,
            }

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            try:
                await eventually(ready, timeout=60, what="notify ready")
            except AssertionError:
                pytest.fail(f"notify did not start:\n{started.log.read_text(errors='replace')}")
            js = nc.jetstream()
            for event in petition_events(datetime.now(UTC).replace(microsecond=0)):
                await js.publish(
                    event.subject, event.to_json(), headers={"Nats-Msg-Id": str(event.event_id)}
                )
            admin = {"Authorization": f"Bearer {bearer('admin')}"}

            async def taken_in() -> bool:
                answer = await http.get(f"/api/v1/petitions/{PETITION}/timeline", headers=admin)
                return answer.status_code == 200 and len(answer.json()["events"]) == 4

            await eventually(taken_in, timeout=30, what="the petition's events taken in")

            async def digest_made() -> bool:
                return (await http.get("/api/v1/digests/1", headers=admin)).status_code == 200

            await eventually(digest_made, timeout=30, what="the khóm's meeting digest")
            yield started
    finally:
        await nc.close()


@pytest.fixture(scope="module", autouse=True)
async def empty_stream(nats_server: EmbeddedNats) -> None:
    """Start from an empty stream, whatever tests ran before in this session (made anew, as
    intake would: notify may not create it)."""
    await reset_stream(nats_server.url)


def bearer(role: str) -> str:
    """An administrator, or the leader of the khóm (who also held the petition)."""
    if role == "admin":
        return staff_token("admin", "admin", unit_id=WARD, units=())
    return staff_token("leader", MEMBER, unit_id=UNIT, units=(UNIT, GROUP))


@pytest.mark.parametrize("role", ["admin", "leader"])
async def test_every_operation_keeps_its_contract(
    notify: Notify, role: str, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{notify.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {bearer(role)}",
        "--checks",
        "all",
        "--max-time",
        str(RUN_SECONDS),
        "--max-examples",
        "40",
        "--workers",
        "1",
        "--seed",
        "20261201",
        "--request-timeout",
        "10",
    ]
    # Run where its caches and crash files stay out of the repository.
    process = await asyncio.create_subprocess_exec(
        *command, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=RUN_SECONDS + 45)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report


KNOWN = [
    ("/api/v1/petitions/{petition_id}/timeline", "GET", {"petition_id": str(PETITION)}, {}),
    ("/api/v1/stats/petitions/{petition_id}", "GET", {"petition_id": str(PETITION)}, {}),
    ("/api/v1/stats/units/{unit_id}", "GET", {"unit_id": UNIT}, {"sub_units": "false"}),
    ("/api/v1/stats/members/{member_id}", "GET", {"member_id": MEMBER}, {}),
    ("/api/v1/notifications", "GET", {}, {"status": "sent"}),
    ("/api/v1/inbox", "GET", {}, {}),
    ("/api/v1/inbox/unread-count", "GET", {}, {}),
    ("/api/v1/digests/{digest_id}", "GET", {"digest_id": "1"}, {}),
]


@pytest.mark.parametrize(("path", "method", "path_parameters", "query"), KNOWN)
async def test_full_answers_match_their_schemas(
    notify: Notify,
    path: str,
    method: str,
    path_parameters: dict[str, str],
    query: dict[str, str],
) -> None:
    """What the fuzzer rarely reaches (a petition that exists, a member with messages) answered
    in full, as the member who held the case (an administrator for the delivery log)."""
    schema = schemathesis.openapi.from_url(f"{notify.url}/openapi.json")
    operation = schema[path][method]
    case = operation.Case(path_parameters=path_parameters, query=query)
    role = "admin" if path == "/api/v1/notifications" else "leader"
    response = await asyncio.to_thread(
        case.call_and_validate, headers={"Authorization": f"Bearer {bearer(role)}"}
    )
    assert response.status_code == 200, response.text


def test_every_refusal_has_its_status() -> None:
    """A refusal missing from the one mapping would reach people as a 500."""
    assert set(NotifyError.__subclasses__()) == set(ERRORS)
