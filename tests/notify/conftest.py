"""Running notify in-process against the session's real nats-server, and the outside world it
talks to: intake's contact look-up and routing's member look-up (answered from dicts over real
NATS request/reply), a real SMTP server (aiosmtpd) and a real HTTP receiver (uvicorn on
127.0.0.1) for webhooks."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request, Response

from services.notify.app import create_app
from services.notify.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER
from services.notify.config import NotifyConfig, parse_config
from services.notify.settings import Settings
from shared.auth import SESSION_COOKIE, Staff, issue_token
from shared.clock import Clock
from shared.events import Event
from shared.streams import RPC_CONTACT_LOOKUP, RPC_ROUTING_MEMBERS, RPC_ROUTING_UNITS
from tests.support import connect_nats, service_nats

SECRET = "notify-test-secret-of-at-least-32-chars"
WEBHOOK_SECRET = "webhook-test-secret-of-at-least-32-chars"


def make_config(**overrides: Any) -> NotifyConfig:
    """Tests' channels file: no batching window and no meetings unless a test asks."""
    data: dict[str, Any] = {"batching": {"window_minutes": 0}}
    data.update(overrides)
    return parse_config(data, source="test")


def make_settings(nats_url: str, database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        **service_nats(nats_url, "notify"),
        "database_url": database_url,
        "secret_key": SECRET,
        "var_dir": tmp_path / "var",
        "mail_dir": tmp_path / "mail",
        "retry_base_s": 0.05,
        "retry_max_s": 0.2,
        "delivery_poll_s": 0.05,
        "contact_lookup_timeout_s": 1.0,
        "webhook_secret": WEBHOOK_SECRET,
        "schedule_poll_s": 3600,
    }
    values.update(overrides)
    return Settings(**values)


def staff_token(
    role: str = "leader",
    member_id: str = "m-test",
    *,
    unit_id: str = "u",
    units: tuple[str, ...] | None = None,
) -> str:
    """A signed staff token; `units` defaults to the person's own unit."""
    staff = Staff(
        username=f"test-{role}-{member_id}",
        member_id=member_id,
        role=role,  # type: ignore[arg-type]
        unit_id=unit_id,
        units=(unit_id,) if units is None else units,
        # Each token its own session, as each sign-in would be.
        session_id=uuid.uuid4().hex,
    )
    return issue_token(staff, secret=SECRET)


def token(
    role: str = "leader",
    member_id: str = "m-test",
    *,
    unit_id: str = "u",
    units: tuple[str, ...] | None = None,
) -> dict[str, str]:
    value = staff_token(role, member_id, unit_id=unit_id, units=units)
    return {"Authorization": f"Bearer {value}"}


def session(
    role: str = "admin",
    member_id: str = "m-test",
    *,
    unit_id: str = "u",
    units: tuple[str, ...] | None = None,
) -> dict[str, str]:
    """The cookie routing's sign-in page sets, for the staff pages."""
    return {SESSION_COOKIE: staff_token(role, member_id, unit_id=unit_id, units=units)}


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

    def wake(self) -> None:
        self.app.state.delivery.wake()

    def mailbox(self) -> list[EmailMessage]:
        if not self.mail_dir.is_dir():
            return []
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(p.read_bytes()) for p in sorted(self.mail_dir.glob("*.eml"))]

    async def notifications(
        self, status: str | None = None, *, channel: str | None = None
    ) -> list[dict[str, Any]]:
        params = {"status": status} if status else {}
        response = await self.http.get(
            "/api/v1/notifications", params=params, headers=token("admin")
        )
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return [r for r in result if channel is None or r["channel"] == channel]

    async def timeline(self, petition_id: object) -> dict[str, Any] | None:
        response = await self.http.get(
            f"/api/v1/petitions/{petition_id}/timeline", headers=token("admin")
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


@asynccontextmanager
async def running_notify(
    settings: Settings, *, config: NotifyConfig | None = None, clock: Clock | None = None
) -> AsyncIterator[Running]:
    app = create_app(settings, config=config or make_config(), clock=clock)
    nc = await connect_nats(settings.nats_url)
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
    # Requests to leave unanswered (the asker times out), as an intake under load would.
    unanswered: int = 0

    def asked_for(self) -> list[str]:
        """Every petition id asked about, in either form."""
        ids: list[str] = []
        for request in self.requests:
            ids += request.get("petition_ids") or [request.get("petition_id")]
        return ids


@asynccontextmanager
async def fake_intake(nats_url: str) -> AsyncIterator[FakeIntake]:
    """Answers notify's contact look-ups the way intake does (the single and the bulk form),
    from a dict."""
    intake = FakeIntake()
    nc = await connect_nats(nats_url)

    async def answer(msg: Any) -> None:
        request = json.loads(msg.data)
        intake.requests.append(request)
        if intake.unanswered > 0:
            intake.unanswered -= 1
            return
        if "petition_ids" in request:
            # A contact's `recovery` is answered only when the request asks for it.
            recover = set(request.get("recover_links") or ())
            reply: dict[str, Any] = {
                "contacts": {
                    pid: {
                        k: v
                        for k, v in intake.contacts.get(pid, {"found": False}).items()
                        if k != "recovery" or pid in recover
                    }
                    for pid in request["petition_ids"]
                }
            }
        else:
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


@dataclass
class FakeRouting:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # The area tree routing answers `rpc.routing.units.v1` with.
    units: list[dict[str, Any]] = field(default_factory=list)

    def add_unit(self, unit_id: str, name: str, parent_id: str | None = None) -> None:
        self.units.append({"id": unit_id, "name": name, "kind": "unit", "parent_id": parent_id})

    def add(
        self,
        member_id: str,
        name: str,
        unit_id: str,
        *,
        email: str | None = None,
        role: str = "member",
    ) -> None:
        self.members[member_id] = {
            "id": member_id,
            "name": name,
            "email": email,
            "unit_id": unit_id,
            "role": role,
            "active": True,
        }


@asynccontextmanager
async def fake_routing(nats_url: str) -> AsyncIterator[FakeRouting]:
    """Answers notify's member look-ups the way routing does, from a dict."""
    routing = FakeRouting()
    nc = await connect_nats(nats_url)

    async def answer(msg: Any) -> None:
        request = json.loads(msg.data)
        routing.requests.append(request)
        if request.get("unit_id"):
            found = [m for m in routing.members.values() if m["unit_id"] == request["unit_id"]]
        else:
            ids = request.get("member_ids") or []
            found = [routing.members[i] for i in ids if i in routing.members]
        await msg.respond(json.dumps({"members": found}).encode())

    async def answer_units(msg: Any) -> None:
        await msg.respond(json.dumps({"units": routing.units}).encode())

    await nc.subscribe(RPC_ROUTING_MEMBERS, cb=answer)
    await nc.subscribe(RPC_ROUTING_UNITS, cb=answer_units)
    await nc.flush()
    try:
        yield routing
    finally:
        await nc.close()


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 standing in for an SMS gateway or a city system. It
    checks each webhook's signature itself (plain hmac, not notify's code) and answers with
    `status`, which a test may change."""

    port: int
    status: int = 200
    # Seconds the receiver takes to answer (a slow gateway), which a test may change.
    delay_s: float = 0.0
    # When set, the receiver answers only once the test opens it (a send held mid-way).
    gate: asyncio.Event | None = None
    answered: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    hits: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.received if r["_status"] == 200]


@asynccontextmanager
async def webhook_receiver(port: int, *, status: int = 200) -> AsyncIterator[Receiver]:
    import hashlib
    import hmac
    import time

    receiver = Receiver(port=port, status=status)
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        body = await request.body()
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        expected = hmac.new(
            WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
        ).hexdigest()
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
        if not fresh or request.headers.get(SIGNATURE_HEADER) != f"v1={expected}":
            receiver.bad_signatures += 1
            return Response(status_code=401)
        receiver.hits += 1
        payload = json.loads(body)
        payload["_status"] = receiver.status
        payload["_delivery"] = request.headers.get("X-Petitions-Delivery")
        receiver.received.append(payload)
        if receiver.delay_s:
            await asyncio.sleep(receiver.delay_s)
        if receiver.gate is not None:
            await receiver.gate.wait()
        receiver.answered += 1
        return Response(status_code=receiver.status)

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
