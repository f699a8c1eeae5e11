"""A database that cannot be reached during a submission is a 503 the resident can retry, and the
form keeps what they typed."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select

from services.intake.models import petitions
from shared.db import create_engine, is_sqlite
from shared.embedded_nats import free_port
from tests.intake.conftest import VALID, Intake
from tests.intake.test_web import FORM


@contextmanager
def database_down(intake: Intake) -> Iterator[None]:
    """The routes' engine points at a port nobody listens on; the relay and consumers keep
    theirs, as they would ride out an outage on their own."""
    runtime = intake.runtime
    real = runtime.engine
    runtime.engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
    try:
        yield
    finally:
        runtime.engine = real


async def test_submissions_during_an_outage_are_503_and_keep_the_input(intake: Intake) -> None:
    page = await intake.client.get("/")
    key = re.search(r'name="submission_key" value="([^"]+)"', page.text)
    assert key
    data = {**FORM, "name": "Lê C", "submission_key": key.group(1)}

    with database_down(intake):
        api = await intake.client.post("/api/v1/petitions", json=VALID)
        form = await intake.client.post("/", data=data)
        track = await intake.client.get("/api/v1/track/whatever")

    assert api.status_code == 503
    assert api.headers["content-type"] == "application/problem+json"
    assert api.headers["retry-after"]
    assert track.status_code == 503
    assert form.status_code == 503
    assert form.headers["content-type"].startswith("text/html")
    assert "vui lòng bấm gửi lại" in form.text
    assert 'value="Lê C"' in form.text
    assert "Rác tồn đọng ba ngày.</textarea>" in form.text
    assert f'name="submission_key" value="{key.group(1)}"' in form.text

    # The breaker answered the form without trying the database; the resident retries after
    # `Retry-After` (its window is skipped here), and the form's own try gets through.
    assert intake.app.state.database_breaker.open
    intake.app.state.database_breaker.open_until = 0.0
    retried = await intake.client.post("/", data=data)
    assert retried.status_code == 303
    assert not intake.app.state.database_breaker.tripped
    async with intake.runtime.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(petitions)) == 1


async def test_while_sqlite_is_held_the_api_answers_503_at_once_after_the_first_wait(
    intake: Intake,
) -> None:
    """Another process holds SQLite's write lock: the first submission waits out the busy
    timeout and is told 503; the next ones are told at once instead of queueing behind it for
    the single connection; one request at a time tries again after `Retry-After`, and once the
    lock is gone a submission is stored."""
    if not is_sqlite(intake.runtime.engine):
        pytest.skip("SQLite's write lock; PostgreSQL refuses connections at once when down")
    path = intake.runtime.engine.url.database
    assert path
    lock = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    try:
        await asyncio.to_thread(lock.execute, "BEGIN EXCLUSIVE")
        breaker = intake.app.state.database_breaker
        # A window no loaded machine outlasts: every request below is the breaker's to answer.
        breaker.open_s = 600
        first = await intake.client.post("/api/v1/petitions", json=VALID, timeout=60)
        assert first.status_code == 503
        assert first.headers["retry-after"]
        assert breaker.trips == 1
        answers = await asyncio.gather(
            *(intake.client.post("/api/v1/petitions", json=VALID) for _ in range(10))
        )
        assert [a.status_code for a in answers] == [503] * 10
        # Answered without trying the database: none of them found it locked again.
        assert breaker.trips == 1
        assert all(a.headers["content-type"] == "application/problem+json" for a in answers)
        health = await intake.client.get("/healthz")
        assert health.status_code == 200
    finally:
        await asyncio.to_thread(lock.rollback)
        await asyncio.to_thread(lock.close)
    intake.app.state.database_breaker.open_until = 0.0
    stored = await intake.client.post("/api/v1/petitions", json=VALID)
    assert stored.status_code == 201, stored.text
    assert not intake.app.state.database_breaker.tripped
