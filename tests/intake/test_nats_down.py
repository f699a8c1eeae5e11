"""NATS down when intake starts: residents are served all the same, their petitions wait in the
outbox, and go out once the bus is back."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.intake.app import create_app
from services.intake.settings import Settings
from shared import runtime as runtime_module
from shared.events import PetitionSubmitted
from shared.nats_auth import BusCredentials
from shared.streams import PETITIONS_STREAM
from tests.conftest import authenticated_nats
from tests.intake.conftest import PUBLIC_URL, VALID
from tests.support import connect_nats, eventually, service_nats


async def test_intake_takes_petitions_while_nats_is_down_at_start_and_sends_them_later(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    nats_credentials: BusCredentials,
) -> None:
    monkeypatch.setattr(runtime_module, "NATS_GRACE_S", 0.5)
    server = authenticated_nats(tmp_path / "nats", nats_credentials)
    settings = Settings(
        database_url=database_url, **service_nats(server.url, "intake"), public_url=PUBLIC_URL
    )
    app = create_app(settings)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as http,
        ):
            accepted = await http.post("/api/v1/petitions", json=VALID)
            assert accepted.status_code == 201, accepted.text
            assert (await http.get("/")).status_code == 200
            not_ready = await http.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["checks"]["nats"] is False

            server.start()

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await eventually(ready, timeout=30, what="ready once NATS is up")
            nc = await connect_nats(server.url)
            try:
                js = nc.jetstream()

                async def published() -> bool:
                    info = await js.stream_info(PETITIONS_STREAM)
                    return info.state.messages >= 1

                await eventually(published, timeout=30, what="the petition on the stream")
                msg = await js.get_msg(PETITIONS_STREAM, seq=1)
            finally:
                await nc.close()
            event = PetitionSubmitted.model_validate_json(msg.data or b"")
            assert str(event.petition_id) == accepted.json()["petition_id"]
    finally:
        server.stop()
