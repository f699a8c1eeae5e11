"""Routing running in-process against a real nats-server and a real database (SQLite and
PostgreSQL): petitions open cases, members act, residents' feedback closes or reopens."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from nats.js import JetStreamContext
from sqlalchemy import func, select

from services.routing import models
from services.routing.app import create_app
from services.routing.cases import case_id_for
from services.routing.settings import Settings
from shared.db import create_engine
from shared.embedded_nats import free_port
from shared.events import (
    REDACTED_TEXT,
    Event,
    FeedbackGiven,
    PetitionRedacted,
    PetitionSubmitted,
    PetitionWithdrawn,
)
from shared.runtime import Runtime
from shared.streams import PETITIONS_STREAM
from tests.support import connect_nats, eventually, service_nats

HAMLET = "my-hoa-hung-my-khanh-2"
# First by username among the hamlet's members who handle roads_lighting (everyone starts idle).
ROADS_MEMBER = "buihoangluc"
HAMLET_LEADER = "bithu.mykhanh2"


@dataclass
class Routing:
    app: FastAPI
    client: httpx.AsyncClient
    js: JetStreamContext

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    async def publish(self, event: Event, msg_id: str | None = None) -> None:
        await self.js.publish(
            event.subject, event.to_json(), headers={"Nats-Msg-Id": msg_id or str(event.event_id)}
        )

    async def events(self, subject_part: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        info = await self.js.stream_info(PETITIONS_STREAM)
        out = []
        if info.state.messages:
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await self.js.get_msg(PETITIONS_STREAM, seq)
                assert msg.subject is not None
                assert msg.data is not None
                out.append((msg.subject, json.loads(msg.data)))
        if subject_part is None:
            return out
        return [e for e in out if e[0] == f"petitions.{subject_part}.v1"]

    async def token(self, username: str, password: str = "demo") -> dict[str, str]:
        response = await self.client.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
async def routing(nats_url: str, database_url: str) -> AsyncIterator[Routing]:
    settings = Settings(
        env="test",
        **service_nats(nats_url, "routing"),
        database_url=database_url,
        seed_demo=True,
        max_deliver=3,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        nc = await connect_nats(nats_url)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://routing"
            ) as client:
                yield Routing(app, client, nc.jetstream())
        finally:
            await nc.close()


def submitted(unit_id: str = HAMLET, category_id: str = "roads_lighting") -> PetitionSubmitted:
    return PetitionSubmitted.new(
        producer="intake",
        petition_id=uuid.uuid4(),
        reference="MHH-2025-0001",
        unit_id=unit_id,
        category_id=category_id,
        title="Đèn đường hỏng",
        description="Đèn đường trước nhà văn hóa ấp tắt ba đêm nay.",
        location="Nhà văn hóa ấp Mỹ Khánh 2",
    )


async def open_case(routing: Routing, event: PetitionSubmitted) -> dict[str, Any]:
    await routing.publish(event)

    async def assigned() -> dict[str, Any]:
        found = [
            e
            for _, e in await routing.events("assigned")
            if e["petition_id"] == str(event.petition_id)
        ]
        return found[0] if found else {}

    return await eventually(assigned, what="CaseAssigned on the stream")


async def test_a_petition_opens_a_case_held_by_a_serving_member(routing: Routing) -> None:
    event = submitted()
    assigned = await open_case(routing, event)
    assert assigned["member_username"] == ROADS_MEMBER
    assert assigned["rung"] == 0
    assert assigned["reason"] == "initial"
    assert assigned["unit_id"] == HAMLET
    assert assigned["member_name"]
    assert assigned["member_email"] == f"{ROADS_MEMBER}@example.org"
    assert assigned["causation_id"] == str(event.event_id)
    assert assigned["correlation_id"] == str(event.correlation_id)

    headers = await routing.token(ROADS_MEMBER)
    listing = await routing.client.get("/api/v1/cases", headers=headers)
    assert listing.status_code == 200, listing.text
    mine = listing.json()
    assert [c["petition_id"] for c in mine] == [str(event.petition_id)]
    case = mine[0]
    assert (case["status"], case["holder_username"], case["due_at"] is not None) == (
        "assigned",
        ROADS_MEMBER,
        True,
    )
    detail = (await routing.client.get(f"/api/v1/cases/{case['id']}", headers=headers)).json()
    assert [h["kind"] for h in detail["history"]] == ["submitted", "assigned"]

    # The next petition goes to the next member with the fewest open cases.
    second = await open_case(routing, submitted())
    assert second["member_username"] != ROADS_MEMBER


async def test_the_same_event_twice_opens_one_case(routing: Routing) -> None:
    event = submitted()
    # Different Nats-Msg-Id: JetStream keeps both, only the inbox can tell they are one event.
    await routing.publish(event, msg_id=str(uuid.uuid4()))
    await routing.publish(event, msg_id=str(uuid.uuid4()))
    stats = routing.runtime.consumers.stats

    async def both_seen() -> bool:
        return stats.handled + stats.duplicates >= 2

    await eventually(both_seen, what="both deliveries handled")
    assert (stats.handled, stats.duplicates) == (1, 1)
    async with routing.runtime.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(models.cases)) == 1
    await routing.runtime.relay.publish_pending()
    assert len(await routing.events("assigned")) == 1


async def test_member_works_the_case_and_the_resident_decides(routing: Routing) -> None:
    event = submitted()
    assigned = await open_case(routing, event)
    case_id = assigned["case_id"]
    member = await routing.token(ROADS_MEMBER)
    url = f"/api/v1/cases/{case_id}"

    assert (await routing.client.post(f"{url}/accept", headers=member)).json()[
        "status"
    ] == "accepted"
    again = await routing.client.post(f"{url}/accept", headers=member)
    assert (again.status_code, again.json()["current_status"]) == (409, "accepted")
    assert again.headers["content-type"].startswith("application/problem+json")
    noted = await routing.client.post(
        f"{url}/notes", json={"note": "Đã báo điện lực"}, headers=member
    )
    assert noted.status_code == 200, noted.text
    empty = await routing.client.post(f"{url}/resolve", json={"explanation": ""}, headers=member)
    assert empty.status_code == 422
    resolved = await routing.client.post(
        f"{url}/resolve", json={"explanation": "Điện lực đã thay bóng đèn"}, headers=member
    )
    assert resolved.json()["status"] == "resolved"

    async def worked() -> bool:
        subjects = [s for s, e in await routing.events() if e.get("case_id") == case_id]
        return subjects[-3:] == [
            "petitions.accepted.v1",
            "petitions.note_added.v1",
            "petitions.resolved.v1",
        ]

    await eventually(worked, what="accepted, note_added, resolved on the stream")

    # "Not resolved": the case reopens one rung up, with the hamlet's leader.
    await routing.publish(
        FeedbackGiven.new(
            producer="intake", petition_id=event.petition_id, resolved=False, comment="Vẫn tối"
        )
    )

    async def reopened() -> list[dict[str, Any]]:
        return [e for _, e in await routing.events("assigned") if e["reason"] == "reopened"]

    reassigned = (await eventually(reopened, what="reassigned at rung 1"))[0]
    assert (reassigned["rung"], reassigned["member_username"]) == (1, HAMLET_LEADER)
    escalated = await routing.events("escalated")
    assert [(e["from_rung"], e["to_rung"], e["reason"]) for _, e in escalated] == [
        (0, 1, "not_resolved")
    ]
    assert len(await routing.events("reopened")) == 1

    # The former holder no longer acts on it; the leader does.
    stale = await routing.client.post(f"{url}/accept", headers=member)
    assert stale.status_code == 403
    leader = await routing.token(HAMLET_LEADER)
    for action, body in (("accept", None), ("resolve", {"explanation": "Đã thay cả dãy đèn"})):
        response = await routing.client.post(f"{url}/{action}", json=body, headers=leader)
        assert response.status_code == 200, response.text

    await routing.publish(
        FeedbackGiven.new(producer="intake", petition_id=event.petition_id, resolved=True)
    )

    async def closed() -> list[tuple[str, dict[str, Any]]]:
        return await routing.events("closed")

    ((_, closing),) = await eventually(closed, what="CaseClosed")
    assert closing["reason"] == "resident_confirmed"
    final = (await routing.client.get(url, headers=leader)).json()
    assert final["status"] == "closed"
    assert [h["kind"] for h in final["history"]] == [
        "submitted",
        "assigned",
        "accepted",
        "note",
        "resolved",
        "reopened",
        "escalated",
        "assigned",
        "accepted",
        "resolved",
        "closed",
    ]


async def test_staff_see_only_what_role_and_unit_allow(routing: Routing) -> None:
    assigned = await open_case(routing, submitted())
    url = f"/api/v1/cases/{assigned['case_id']}"
    bad = await routing.client.post(
        "/api/v1/auth/token", data={"username": ROADS_MEMBER, "password": "wrong"}
    )
    assert bad.status_code == 401
    assert (await routing.client.get("/api/v1/cases")).status_code == 401

    other = await routing.token("dokimhanh")
    assert (await routing.client.get(url, headers=other)).status_code == 404
    assert (await routing.client.get("/api/v1/cases?scope=unit", headers=other)).status_code == 403
    foreign_leader = await routing.token("bithu.thoiana")
    assert (await routing.client.get(url, headers=foreign_leader)).status_code == 404

    for username in (HAMLET_LEADER, "danguy.myhoahung", "admin"):
        headers = await routing.token(username)
        listed = (await routing.client.get("/api/v1/cases?scope=unit", headers=headers)).json()
        assert [c["id"] for c in listed] == [assigned["case_id"]], username
    me = (await routing.client.get("/api/v1/me", headers=await routing.token(HAMLET_LEADER))).json()
    assert (me["role"], me["unit_id"]) == ("leader", HAMLET)

    # A leader hands it to a member who serves the hamlet; a member of another unit is refused.
    leader = await routing.token(HAMLET_LEADER)
    refused = await routing.client.post(
        f"{url}/reassign", json={"username": "dangthutai"}, headers=leader
    )
    assert refused.status_code == 422
    member_cannot = await routing.client.post(
        f"{url}/reassign", json={"username": "dokimhanh"}, headers=await routing.token(ROADS_MEMBER)
    )
    assert member_cannot.status_code == 403
    moved = await routing.client.post(
        f"{url}/reassign", json={"username": "dokimhanh"}, headers=leader
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["holder_username"], moved.json()["rung"]) == ("dokimhanh", 0)

    async def reassigned() -> list[dict[str, Any]]:
        return [e for _, e in await routing.events("assigned") if e["reason"] == "reassigned"]

    (event,) = await eventually(reassigned, what="CaseAssigned reason reassigned")
    assert (event["member_username"], event["actor"]) == ("dokimhanh", HAMLET_LEADER)


async def test_withdrawal_closes_the_case(routing: Routing) -> None:
    event = submitted(unit_id="my-thoi-thoi-an-a", category_id="social_policy")
    assigned = await open_case(routing, event)
    assert assigned["member_username"] in {"truongminhquyen", "lyhoangtrang"}
    await routing.publish(PetitionWithdrawn.new(producer="intake", petition_id=event.petition_id))

    async def closed() -> list[tuple[str, dict[str, Any]]]:
        return await routing.events("closed")

    ((_, closing),) = await eventually(closed, what="CaseClosed withdrawn")
    assert closing["reason"] == "withdrawn"


async def test_a_withdrawal_that_overtakes_its_submission_still_closes_the_case(
    routing: Routing,
) -> None:
    """The stream holds the withdrawal before the submission (a relay retry can leave them so):
    the withdrawal is kept until the case exists, then closes it; it is never dropped."""
    event = submitted(unit_id="my-thoi-thoi-an-a", category_id="social_policy")
    withdrawn = PetitionWithdrawn.new(producer="intake", petition_id=event.petition_id)
    await routing.publish(withdrawn)

    async def waiting() -> bool:
        return routing.runtime.consumers.stats.retried >= 1

    await eventually(waiting, what="the withdrawal kept for later")
    await routing.publish(event)

    async def closed() -> list[tuple[str, dict[str, Any]]]:
        return await routing.events("closed")

    ((_, closing),) = await eventually(closed, what="CaseClosed withdrawn")
    assert closing["reason"] == "withdrawn"
    assert closing["petition_id"] == str(event.petition_id)
    async with routing.runtime.engine.connect() as conn:
        status = await conn.scalar(
            select(models.cases.c.status).where(
                models.cases.c.petition_id == str(event.petition_id)
            )
        )
        parked = await conn.scalar(
            select(func.count()).select_from(routing.runtime.tables.dead_letters)
        )
    assert status == "withdrawn"
    assert parked == 0


async def test_the_staff_api_and_pages_answer_503_while_the_database_is_down(
    routing: Routing,
) -> None:
    headers = await routing.token(HAMLET_LEADER)
    actions = routing.app.state.actions
    real = actions.engine
    actions.engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
    try:
        api = await routing.client.get("/api/v1/cases", headers=headers)
        page = await routing.client.get("/cases", headers=headers)
    finally:
        actions.engine = real
    assert api.status_code == 503
    assert api.headers["content-type"] == "application/problem+json"
    assert api.headers["retry-after"]
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    # Within `Retry-After` the breaker answers without trying the database; after it, one
    # request tries and gets through (the window is skipped here).
    breaker = routing.app.state.database_breaker
    assert (await routing.client.get("/api/v1/cases", headers=headers)).status_code == 503
    breaker.open_until = 0.0
    assert (await routing.client.get("/api/v1/cases", headers=headers)).status_code == 200
    assert not breaker.tripped


async def test_an_erasure_redacts_the_case_even_before_it_exists_and_what_follows(
    routing: Routing,
) -> None:
    """`petitions.redacted.v1` that overtakes the submission waits for the case, then removes
    the resident's text; a withdrawal reason the resident gives afterwards is not kept either."""
    event = submitted(unit_id="my-thoi-thoi-an-a", category_id="social_policy")
    erased = PetitionRedacted.new(producer="intake", petition_id=event.petition_id)
    await routing.publish(erased)

    async def waiting() -> bool:
        return routing.runtime.consumers.stats.retried >= 1

    await eventually(waiting, what="the erasure kept for later")
    await open_case(routing, event)
    said = "Tôi chuyển nhà về số 9 / I moved to number 9"
    await routing.publish(
        PetitionWithdrawn.new(producer="intake", petition_id=event.petition_id, reason=said)
    )

    async def redacted() -> list[Any] | None:
        # History first: each statement sees what was committed when it ran (PostgreSQL's read
        # committed), and the redaction's history line commits with the case's new text, so a
        # case read after a history that shows it has that text.
        h = models.case_history
        async with routing.runtime.engine.connect() as conn:
            history = (
                await conn.execute(
                    select(h.c.kind, h.c.detail).where(
                        h.c.case_id == str(case_id_for(event.petition_id))
                    )
                )
            ).all()
            case = (
                (
                    await conn.execute(
                        select(models.cases).where(
                            models.cases.c.petition_id == str(event.petition_id)
                        )
                    )
                )
                .mappings()
                .one()
            )
        kinds = [kind for kind, _ in history]
        if not {"withdrawn", "redacted"} <= set(kinds):
            return None
        assert case["status"] == "withdrawn"
        assert case["title"] == REDACTED_TEXT
        assert case["description"] == REDACTED_TEXT
        assert case["location"] is None
        return history

    history = await eventually(redacted, what="the case redacted and withdrawn")
    assert said not in json.dumps([detail for _, detail in history], ensure_ascii=False)
    [reason] = [detail["reason"] for kind, detail in history if kind == "withdrawn"]
    assert reason == REDACTED_TEXT
    assert routing.runtime.consumers.stats.dead_lettered == 0
