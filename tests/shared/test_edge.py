"""The HTTP edge every service shares: domain errors and outages as problem details, the problem
schema in OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from services.intake.app import create_app as create_intake
from services.intake.settings import Settings as IntakeSettings
from services.notify.app import create_app as create_notify
from services.routing.app import create_app as create_routing
from services.routing.settings import Settings as RoutingSettings
from shared.web import install_problem_handlers, install_problem_openapi, problem_responses
from tests.notify.conftest import make_settings as notify_settings
from tests.support import service_nats


class Refused(Exception):
    problem_type = "urn:petitions:problem:refused"

    def __init__(self) -> None:
        super().__init__("Không được / Refused")
        self.extra = {"hint": "later"}


def edge_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app, {Refused: 409})
    install_problem_openapi(app)

    @app.get("/api/v1/refused", responses=problem_responses(409))
    async def refused() -> dict[str, str]:
        raise Refused

    @app.get("/api/v1/down")
    async def api_down() -> dict[str, str]:
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    @app.get("/cases")
    async def page_down() -> dict[str, str]:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    return app


async def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_a_domain_error_is_the_problem_its_mapping_names() -> None:
    async with await client(edge_app()) as http:
        answer = await http.get("/api/v1/refused")
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == {
        "type": "urn:petitions:problem:refused",
        "title": "Xung đột trạng thái / Conflict",
        "status": 409,
        "detail": "Không được / Refused",
        "hint": "later",
    }


async def test_a_database_outage_is_503_with_retry_after_never_500() -> None:
    async with await client(edge_app()) as http:
        api = await http.get("/api/v1/down")
        page = await http.get("/cases")
    assert api.status_code == 503
    assert api.headers["content-type"] == "application/problem+json"
    assert api.headers["retry-after"] == "5"
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "thử lại" in page.text
    assert page.headers["retry-after"] == "5"


def test_problems_are_documented_as_problem_json_with_their_schema() -> None:
    doc = edge_app().openapi()
    response = doc["paths"]["/api/v1/refused"]["get"]["responses"]["409"]
    assert response["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert "Problem" in doc["components"]["schemas"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]


async def test_a_wrong_method_names_every_method_of_the_path_in_allow() -> None:
    app = edge_app()

    @app.post("/api/v1/refused")
    async def create() -> dict[str, str]:
        return {}

    async with await client(app) as http:
        answer = await http.delete("/api/v1/refused")
    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["allow"] == "GET, POST"


async def test_every_service_refuses_a_body_over_the_limit_before_reading_it(
    nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    """413 problem details on every service, whether the size is declared or only streamed,
    signed in or not, before any parsing (or password hashing) happens."""
    limit = 2048
    intake = create_intake(
        IntakeSettings(
            database_url=sqlite_url,
            **service_nats(nats_url, "intake"),
            max_body_bytes=limit,
            public_url="http://i",
        )
    )
    routing = create_routing(
        RoutingSettings(
            env="test",
            **service_nats(nats_url, "routing"),
            database_url=sqlite_url,
            max_body_bytes=limit,
        )
    )
    notify = create_notify(notify_settings(nats_url, sqlite_url, tmp_path, max_body_bytes=limit))
    big = b"x" * (limit + 1)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"y" * (limit // 2)

    cases = [
        (intake, "/api/v1/petitions", "application/json"),
        (routing, "/api/v1/auth/token", "application/x-www-form-urlencoded"),
        (notify, "/api/v1/inbox/read-all", "application/json"),
    ]
    for app, path, media in cases:
        async with await client(app) as http:
            declared = await http.post(path, content=big, headers={"content-type": media})
            assert declared.status_code == 413, (path, declared.text)
            assert declared.headers["content-type"] == "application/problem+json"
            assert "2048" in declared.json()["detail"]
            if app is notify:
                continue  # this endpoint reads no body: nothing streamed is ever read
            streamed = await http.post(path, content=chunks(), headers={"content-type": media})
            assert streamed.status_code == 413, (path, streamed.text)
            assert streamed.headers["content-type"] == "application/problem+json"
