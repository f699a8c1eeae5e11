"""Redacting the outbox after an erasure touches only text fields, whatever else events carry."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import MetaData, select

from services.routing.handlers import redact_outbox
from shared.db import create_engine
from shared.events import CaseOverdueAtTop
from shared.messaging import add_to_outbox, messaging_tables


async def test_an_overdue_case_with_member_ids_is_redacted_not_crashed(tmp_path: Path) -> None:
    """A case that was overdue at the top rung has an event with a list of member ids in its
    outbox; the erasure's redaction once crashed on it (a list is not hashable)."""
    metadata = MetaData()
    tables = messaging_tables(metadata)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}")
    petition_id = uuid.uuid4()
    overdue = CaseOverdueAtTop.new(
        producer="routing",
        petition_id=petition_id,
        case_id=uuid.uuid4(),
        rung=3,
        unit_id="Ổ gà trước nhà số 12",
        member_ids=["a", "b"],
        due_at=datetime.now(UTC),
        day="2026-12-01",
    )
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await add_to_outbox(conn, tables.outbox, overdue)
            await redact_outbox(conn, tables.outbox, str(petition_id), {"Ổ gà trước nhà số 12"})
            payload = await conn.scalar(select(tables.outbox.c.payload))
    finally:
        await engine.dispose()
    data = json.loads(payload)
    assert data["member_ids"] == ["a", "b"]
    assert data["unit_id"] != "Ổ gà trước nhà số 12"
