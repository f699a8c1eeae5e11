"""A database that cannot be reached during a submission is a 503 the resident can retry, and the
form keeps what they typed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, select

from services.intake.models import petitions
from shared.db import create_engine
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

    retried = await intake.client.post("/", data=data)
    assert retried.status_code == 303
    async with intake.runtime.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(petitions)) == 1
