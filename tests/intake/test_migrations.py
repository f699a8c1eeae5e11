"""The migration history builds exactly the schema the code expects, and comes down again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from services.intake import store
from services.intake.app import MIGRATIONS_DIR
from services.intake.models import metadata
from services.intake.petitions import hash_token
from shared.db import create_engine
from shared.migrate import upgrade

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def _diff(database_url: str) -> tuple[list[Any], set[str]]:
    async def run() -> tuple[list[Any], set[str]]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: (
                        compare_metadata(MigrationContext.configure(sync), metadata),
                        set(inspect(sync).get_table_names()),
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def test_upgrade_matches_models_and_downgrade_empties(database_url: str) -> None:
    await asyncio.to_thread(upgrade, MIGRATIONS_DIR, database_url)
    diff, tables = await asyncio.to_thread(_diff, database_url)
    assert diff == []
    assert {"petitions", "contacts", "public_timeline", "outbox", "inbox"} <= tables

    from alembic import command

    from shared.migrate import alembic_config

    await asyncio.to_thread(command.downgrade, alembic_config(MIGRATIONS_DIR, database_url), "base")
    _, tables = await asyncio.to_thread(_diff, database_url)
    assert tables <= {"alembic_version"}
    await asyncio.to_thread(upgrade, MIGRATIONS_DIR, database_url)


async def test_plaintext_tracking_tokens_are_hashed_then_dropped(database_url: str) -> None:
    """Revision 0004: links given before it keep working, and no plaintext token remains."""
    await asyncio.to_thread(upgrade, MIGRATIONS_DIR, database_url, "0003")
    shown, other = "shown-at-submission-" + "a" * 23, "copied-elsewhere-" + "b" * 26
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            for pid, reference, kept in (
                ("p-1", "PA-0000-0001", shown),
                ("p-2", "PA-0000-0002", other),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO petitions (id, reference, tracking_token_hash, unit_id,"
                        " category_id, title, description, language, status, status_changed_at,"
                        " correlation_id, submitted_at, created_at) VALUES (:id, :ref, :hash,"
                        " 'u', 'c', 't', 'd', 'vi', 'submitted', :now, :id, :now, :now)"
                    ),
                    {
                        "id": pid,
                        "ref": reference,
                        "hash": hash_token(shown if pid == "p-1" else "x" * 43),
                        "now": NOW,
                    },
                )
                await conn.execute(
                    text(
                        "INSERT INTO contacts (petition_id, name, wants_updates, tracking_token)"
                        " VALUES (:id, 'A', :yes, :token)"
                    ),
                    {"id": pid, "yes": True, "token": kept},
                )
    finally:
        await engine.dispose()

    await asyncio.to_thread(upgrade, MIGRATIONS_DIR, database_url)

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("contacts")}
            )
        assert "tracking_token" not in columns
        for token, pid in ((shown, "p-1"), (other, "p-2")):
            found = await store.petition_by_token(engine, token)
            assert found is not None
            assert found["id"] == pid
    finally:
        await engine.dispose()
