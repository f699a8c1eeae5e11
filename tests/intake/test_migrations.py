"""The migration history builds exactly the schema the code expects, and comes down again."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from services.intake.app import MIGRATIONS_DIR
from services.intake.models import metadata
from shared.db import create_engine
from shared.migrate import upgrade


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
