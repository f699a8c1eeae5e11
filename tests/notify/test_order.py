"""Events about one petition that cross on the way are taken in the order they happened:
notify keeps an event it cannot plan yet (`NotYet`) until the one it needs has arrived,
instead of planning without it; and an erasure that overtakes the submission still keeps the
resident's text out of notify."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.notify.models import notifications
from shared.db import create_engine
from shared.events import (
    REDACTED_TEXT,
    CaseAssigned,
    CaseEscalated,
    CaseReopened,
    CaseResolved,
    FeedbackGiven,
    PetitionRedacted,
    PetitionSubmitted,
)
from tests.support import eventually

from .conftest import make_settings, running_notify

T0 = datetime.now(UTC) - timedelta(hours=1)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def submitted(pid: uuid.UUID, *, minute: int = 0) -> PetitionSubmitted:
    return PetitionSubmitted.new(
        producer="intake",
        petition_id=pid,
        occurred_at=at(minute),
        reference="PA-ORDER",
        unit_id="khom",
        category_id="roads",
        title="Cống nhà bà Tư số 7 bị tắc",
        description="Nhà tôi ở số 7, gọi tôi theo số 0912 000 000",
        location="Số 7 hẻm 3",
        wants_updates=True,
    )


def assigned(pid: uuid.UUID, case: uuid.UUID, minute: int, **fields: Any) -> CaseAssigned:
    values: dict[str, Any] = {
        "rung": 0,
        "unit_id": "khom",
        "member_id": "m-lan",
        "member_username": "m-lan",
        "member_name": "Lan",
        "member_email": "lan@example.org",
    }
    values.update(fields)
    return CaseAssigned.new(
        producer="routing", petition_id=pid, occurred_at=at(minute), case_id=case, **values
    )


async def contexts(database_url: str, template: str) -> list[dict[str, Any]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(notifications.c.context).where(notifications.c.template == template)
            )
            # The in-app copy keeps no context; the email's does.
            return [json.loads(c) for (c,) in rows.all() if c != "{}"]
    finally:
        await engine.dispose()


async def test_a_reopening_before_its_resolution_waits_and_tells_the_resolver(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(nats_url, database_url, tmp_path)
    pid, case = uuid.uuid4(), uuid.uuid4()
    resolved = CaseResolved.new(
        producer="routing",
        petition_id=pid,
        occurred_at=at(2),
        case_id=case,
        member_id="m-lan",
        explanation="Đã thông cống",
    )
    reopened = CaseReopened.new(
        producer="routing",
        petition_id=pid,
        occurred_at=at(4),
        case_id=case,
        from_rung=0,
        comment="Vẫn tắc",
    )
    async with running_notify(settings) as notify:
        await notify.publish(submitted(pid))
        await notify.publish(assigned(pid, case, 1))
        # The resolution is held up somewhere: the reopening arrives first.
        await notify.publish(reopened)

        async def waited() -> bool:
            return notify.app.state.runtime.consumers.stats.retried >= 1

        await eventually(waited, what="the reopening kept for later")
        await notify.publish(resolved)

        async def told() -> list[dict[str, Any]]:
            return await contexts(database_url, "case_reopened")

        # On each of the resolver's channels.
        found = await eventually(told, what="the resolver told of the reopening")
        assert all(c["comment"] == "Vẫn tắc" for c in found)
        assert notify.app.state.runtime.consumers.stats.dead_lettered == 0


async def test_an_assignment_by_escalation_before_its_escalation_names_the_reason(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(nats_url, database_url, tmp_path)
    pid, case = uuid.uuid4(), uuid.uuid4()
    escalated = CaseEscalated.new(
        producer="routing",
        petition_id=pid,
        occurred_at=at(3),
        case_id=case,
        from_rung=0,
        to_rung=1,
        reason="deadline_passed",
    )
    up = assigned(pid, case, 3, rung=1, member_id="m-chi", member_username="m-chi")
    up = up.model_copy(update={"reason": "escalated"})
    async with running_notify(settings) as notify:
        await notify.publish(submitted(pid))
        await notify.publish(assigned(pid, case, 1))
        await notify.publish(up)

        async def waited() -> bool:
            return notify.app.state.runtime.consumers.stats.retried >= 1

        await eventually(waited, what="the assignment kept for later")
        await notify.publish(escalated)

        async def told() -> list[dict[str, Any]]:
            return await contexts(database_url, "case_escalated_to_you")

        found = await eventually(told, what="the new holder told why")
        assert all(c["reason_vi"] == "quá hạn xử lý" for c in found)
        assert all(c["reason_en"] == "deadline passed" for c in found)


async def test_an_erasure_that_overtakes_the_submission_still_keeps_the_text_out(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(nats_url, database_url, tmp_path)
    pid = uuid.uuid4()
    first = submitted(pid)
    erased = PetitionRedacted.new(producer="intake", petition_id=pid, occurred_at=at(5))
    comment = FeedbackGiven.new(
        producer="intake", petition_id=pid, occurred_at=at(6), resolved=False, comment="Số 7"
    )
    async with running_notify(settings) as notify:
        await notify.publish(erased)
        await notify.publish(first)
        await notify.publish(comment)

        async def all_in() -> dict[str, Any] | None:
            timeline = await notify.timeline(pid)
            return timeline if timeline and len(timeline["events"]) == 3 else None

        timeline = await eventually(all_in, what="three events on the timeline")
        text = json.dumps(timeline, ensure_ascii=False)
        for said in (first.title, first.description, "Số 7"):
            assert said not in text
        assert REDACTED_TEXT in text
        [data] = [e["data"] for e in timeline["events"] if e["kind"] == "submitted"]
        assert data["title"] == REDACTED_TEXT
        assert data["location"] == REDACTED_TEXT
