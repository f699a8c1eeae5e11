"""The HTTP edge every service shares: domain errors and outages as problem details, the problem
schema in OpenAPI."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from shared.web import install_problem_handlers, install_problem_openapi, problem_responses


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
