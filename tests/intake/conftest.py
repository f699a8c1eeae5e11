"""The intake app running for real: its lifespan (migrations, broker, relay, consumers) against
the session's nats-server and the test's database."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from services.intake.app import create_app
from services.intake.settings import Settings
from shared.events import Event
from shared.runtime import Runtime
from shared.streams import PETITIONS_STREAM, RPC_CONTACT_LOOKUP
from tests.support import connect_nats, eventually, service_nats

E = TypeVar("E", bound=Event)

PUBLIC_URL = "http://intake.test"

VALID = {
    "unit_id": "my-thoi-thoi-an-a-to-2",
    "category_id": "roads_lighting",
    "title": "Đèn đường hỏng",
    "description": "Đèn đường trước nhà số 12 không sáng đã một tuần.",
    "location": "Trước nhà số 12",
    "name": "Nguyễn Văn A",
    "phone": "0912 345 678",
    "email": "a@example.vn",
    "notify": True,
    "consent": True,
}


class TestClock:
    """Real time plus an offset a test moves forward (deadlines pass, rate limits expire)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass
class Intake:
    app: FastAPI
    client: httpx.AsyncClient
    nc: Client
    js: JetStreamContext
    clock: TestClock = field(default_factory=TestClock)

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    async def submit(self, **overrides: Any) -> dict[str, Any]:
        response = await self.client.post("/api/v1/petitions", json={**VALID, **overrides})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def publish(self, event: Event, *, msg_id: str | None = None) -> None:
        await self.js.publish(
            event.subject,
            event.to_json(),
            headers={"Nats-Msg-Id": msg_id or str(event.event_id)},
            stream=PETITIONS_STREAM,
        )

    async def events(self, cls: type[E]) -> list[E]:
        """Every event of this type on the stream, in order."""
        found: list[E] = []
        seq = 1
        while True:
            try:
                msg = await self.js.get_msg(
                    PETITIONS_STREAM, seq=seq, subject=cls.subject, next=True
                )
            except NotFoundError:
                return found
            found.append(cls.model_validate_json(msg.data or b""))
            assert msg.seq is not None
            seq = msg.seq + 1

    async def published(self, cls: type[E], count: int = 1) -> list[E]:
        """Wait until the outbox is drained and `count` events of the type are on the stream;
        then there are exactly that many."""

        async def check() -> list[E]:
            if await self.runtime.relay.backlog():
                return []
            found = await self.events(cls)
            return found if len(found) >= count else []

        found = await eventually(check, what=f"{count} {cls.__name__} on the stream")
        assert len(found) == count, found
        return found

    async def contact(self, petition_id: str) -> dict[str, Any]:
        reply = await self.nc.request(
            RPC_CONTACT_LOOKUP, json.dumps({"petition_id": petition_id}).encode(), timeout=5
        )
        answer: dict[str, Any] = json.loads(reply.data)
        return answer

    async def track(self, token: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/track/{token}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@asynccontextmanager
async def open_intake(nats_url: str, database_url: str, **settings: Any) -> AsyncIterator[Intake]:
    """Intake with its lifespan running and a client, with `settings` over the test defaults."""
    full = Settings(
        **{
            "database_url": database_url,
            **service_nats(nats_url, "intake"),
            "public_url": PUBLIC_URL,
            **settings,
        }
    )
    clock = TestClock()
    app = create_app(full, clock=clock)
    nc = await connect_nats(nats_url)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://intake.test"
            ) as client,
        ):
            yield Intake(app=app, client=client, nc=nc, js=nc.jetstream(), clock=clock)
    finally:
        await nc.close()


@pytest.fixture
async def intake(nats_url: str, database_url: str) -> AsyncIterator[Intake]:
    async with open_intake(nats_url, database_url) as running:
        yield running
