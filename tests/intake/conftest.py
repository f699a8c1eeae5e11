"""The intake app running for real: its lifespan (migrations, broker, relay, consumers) against
the session's nats-server and the test's database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI
from nats.aio.client import Client
from nats.js import JetStreamContext

from services.intake.app import create_app
from services.intake.settings import Settings
from shared.events import Event
from shared.runtime import Runtime
from shared.streams import PETITIONS_STREAM

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


@dataclass
class Intake:
    app: FastAPI
    client: httpx.AsyncClient
    nc: Client
    js: JetStreamContext

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

    async def track(self, token: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/track/{token}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def intake(nats_url: str, database_url: str) -> AsyncIterator[Intake]:
    settings = Settings(database_url=database_url, nats_url=nats_url, public_url=PUBLIC_URL)
    app = create_app(settings)
    nc = await nats.connect(nats_url)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://intake.test"
            ) as client,
        ):
            yield Intake(app=app, client=client, nc=nc, js=nc.jetstream())
    finally:
        await nc.close()
