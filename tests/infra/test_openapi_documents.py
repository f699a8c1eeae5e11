"""The checked-in OpenAPI documents are the ones the services serve, and every error response
they list is problem details, except Open311's: the GeoReport specification fixes its error
format (a list of {code, description}, in JSON or XML)."""

from __future__ import annotations

import json

import pytest

from services import openapi
from services.stack import SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_checked_in_document_is_current(service: str) -> None:
    current = openapi.path(service).read_text(encoding="utf-8")
    assert current == openapi.render(service), "run: make openapi"


OPEN311 = "/open311/"
GEOREPORT_ERRORS = {"type": "array", "items": {"$ref": "#/components/schemas/GeoReportError"}}


@pytest.mark.parametrize("service", SERVICES)
def test_every_error_response_is_problem_details(service: str) -> None:
    doc = json.loads(openapi.path(service).read_text(encoding="utf-8"))
    for route, operations in doc["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if not code.isdigit() or int(code) < 400:
                    continue
                where = (method, route, code)
                if route.startswith(OPEN311):
                    assert list(response["content"]) == ["application/json", "text/xml"], where
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == GEOREPORT_ERRORS, where
                else:
                    assert list(response["content"]) == ["application/problem+json"], where
