"""No log line carries a resident's tracking token: intake served by uvicorn as in production
(access log on), logging configured as in production, a resident who submits, follows their
link, acts on it, and a tracking path that fails with a traceback."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest
import structlog
import uvicorn
from sqlalchemy import text

from services.intake.app import create_app
from services.intake.settings import Settings
from shared.embedded_nats import free_port
from shared.logging import configure_logging, scrub_secrets
from shared.runtime import Runtime
from tests.intake.conftest import VALID
from tests.support import eventually, service_nats


@pytest.fixture
def captured_logs(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """Logging as `python -m services.intake` sets it up, written to a buffer; the test
    session's logging is put back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config())
    access = logging.getLogger("uvicorn.access")
    saved_access = access.level
    fmt: Literal["console", "json"] = request.param
    configure_logging(service="intake", fmt=fmt, level="INFO")
    # The access log, off by default (it costs throughput), is what an operator turns on first.
    access.setLevel(logging.INFO)
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], level, config = saved
        root.setLevel(level)
        structlog.configure(**config)
        access.setLevel(saved_access)


@pytest.fixture
async def served(nats_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, Runtime]]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}",
        **service_nats(nats_url, "intake"),
        public_url="http://127.0.0.1",
    )
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=True)
    )
    task = asyncio.create_task(server.serve())
    try:

        async def started() -> bool:
            return server.started

        await eventually(started, what="uvicorn serving")
        yield f"http://127.0.0.1:{port}", app.state.runtime
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize("captured_logs", ["json", "console"], indirect=True)
async def test_no_log_line_carries_a_tracking_token(
    captured_logs: io.StringIO, served: tuple[str, Runtime]
) -> None:
    base, runtime = served
    async with httpx.AsyncClient(base_url=base) as http:
        submitted = await http.post("/api/v1/petitions", json=VALID)
        assert submitted.status_code == 201, submitted.text
        token = submitted.json()["tracking_token"]
        assert (await http.get(f"/track/{token}")).status_code == 200
        assert (await http.get(f"/api/v1/track/{token}")).status_code == 200
        refused = await http.post(f"/api/v1/track/{token}/feedback", json={"resolved": True})
        assert refused.status_code == 409
        # A bug on a tracking path: the table the page reads is gone, and the traceback is logged.
        async with runtime.engine.begin() as conn:
            await conn.execute(text("DROP TABLE public_timeline"))
        assert (await http.get(f"/track/{token}")).status_code == 500
        assert (await http.get(f"/api/v1/track/{token}")).status_code == 500

    logs = captured_logs.getvalue()
    # The lines are there, with the paths scrubbed: the check below could fail.
    assert "unhandled_error" in logs
    assert "Traceback" in logs or '"exception"' in logs
    assert logs.count("/track/[redacted]") >= 6, logs
    assert token not in logs


def test_scrubbing_keeps_the_rest_of_the_line() -> None:
    line = 'GET /track/Ab-_9x/feedback?lang=en "/api/v1/track/Zz" /x?api_key=k-1&page=2'
    assert scrub_secrets(line) == (
        'GET /track/[redacted]/feedback?lang=en "/api/v1/track/[redacted]"'
        " /x?api_key=[redacted]&page=2"
    )
    assert scrub_secrets("/track/ and /tracking/x") == "/track/ and /tracking/x"
