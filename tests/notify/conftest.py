"""Running notify in-process against the session's real nats-server, and stand-ins for the
outside world it talks to: intake's contact look-up and an SMTP server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import nats
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from services.notify.app import create_app
from services.notify.settings import Settings
from shared.auth import Staff, issue_token
from shared.events import Event
from shared.streams import RPC_CONTACT_LOOKUP

SECRET = "notify-test-secret-of-at-least-32-chars"


def make_settings(nats_url: str, database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "nats_url": nats_url,
        "database_url": database_url,
        "secret_key": SECRET,
        "var_dir": tmp_path / "var",
        "mail_dir": tmp_path / "mail",
        "retry_base_s": 0.05,
        "retry_max_s": 0.2,
        "delivery_poll_s": 0.05,
        "contact_lookup_timeout_s": 1.0,
    }
    values.update(overrides)
    return Settings(**values)


def token(role: str = "leader") -> dict[str, str]:
    staff = Staff(username=f"test-{role}", member_id="m-test", role=role, unit_id="u")  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {issue_token(staff, secret=SECRET)}"}


@dataclass
class Running:
    app: FastAPI
    http: httpx.AsyncClient
    nc: Any
    mail_dir: Path

    async def publish(self, event: Event, *, msg_id: str | None = None) -> None:
        await self.nc.jetstream().publish(
            event.subject,
            event.to_json(),
            headers={"Nats-Msg-Id": msg_id or str(event.event_id)},
        )

    def mailbox(self) -> list[EmailMessage]:
        if not self.mail_dir.is_dir():
            return []
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(p.read_bytes()) for p in sorted(self.mail_dir.glob("*.eml"))]

    async def notifications(self, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else {}
        response = await self.http.get(
            "/api/v1/notifications", params=params, headers=token("admin")
        )
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    async def timeline(self, petition_id: object) -> dict[str, Any] | None:
        response = await self.http.get(f"/api/v1/petitions/{petition_id}/timeline", headers=token())
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


@asynccontextmanager
async def running_notify(settings: Settings) -> AsyncIterator[Running]:
    app = create_app(settings)
    nc = await nats.connect(settings.nats_url)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://notify") as http:
                assert settings.mail_dir is not None
                yield Running(app=app, http=http, nc=nc, mail_dir=settings.mail_dir)
    finally:
        await nc.close()


@dataclass
class FakeIntake:
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)


@asynccontextmanager
async def fake_intake(nats_url: str) -> AsyncIterator[FakeIntake]:
    """Answers notify's contact look-ups the way intake does, from a dict."""
    intake = FakeIntake()
    nc = await nats.connect(nats_url)

    async def answer(msg: Any) -> None:
        request = json.loads(msg.data)
        intake.requests.append(request)
        reply = intake.contacts.get(request.get("petition_id"), {"found": False})
        await msg.respond(json.dumps(reply).encode())

    await nc.subscribe(RPC_CONTACT_LOOKUP, cb=answer)
    await nc.flush()
    try:
        yield intake
    finally:
        await nc.close()


class SmtpInbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = BytesParser(policy=policy.default).parsebytes(envelope.content)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@asynccontextmanager
async def smtp_server(port: int) -> AsyncIterator[SmtpInbox]:
    inbox = SmtpInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    await asyncio.to_thread(controller.start)
    try:
        yield inbox
    finally:
        await asyncio.to_thread(controller.stop)
