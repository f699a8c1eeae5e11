"""Where Open311's errors meet HTTP, in one place: its domain errors, FastAPI's validation
errors and unknown paths under `/open311/` are answered as GeoReport errors (the specification
fixes that format, so not problem details), in the format the path asked for; and the OpenAPI
document says so."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.intake.open311 import render
from services.intake.open311.errors import Open311Error, RateLimited
from services.intake.open311.schemas import CreateForm, Format, GeoReportError
from shared.web import allowed_methods, trip_database_breaker

ROOT = "/open311"
PREFIX = f"{ROOT}/v2"
_ERRORS_REF = {"type": "array", "items": {"$ref": "#/components/schemas/GeoReportError"}}
_XML = {"schema": {"type": "string", "description": "The same content as XML (`.xml` suffix)"}}

_HTTP = {
    404: "Không có địa chỉ này / No such resource",
    405: "Phương thức không được phép / Method not allowed",
}

Handler = Callable[[Request, Any], Response | Awaitable[Response]]


async def _delegate(handler: Handler, request: Request, exc: Exception) -> Response:
    answer = handler(request, exc)
    return await answer if inspect.isawaitable(answer) else answer


def format_of(request: Request) -> Format:
    """The format named by the path's suffix (`.json` or `.xml`); JSON when it names neither."""
    fmt = request.path_params.get("format")
    if fmt == "xml" or (fmt is None and request.url.path.endswith(".xml")):
        return "xml"
    return "json"


def error_response(request: Request, status: int, *descriptions: str) -> Response:
    return render.errors(format_of(request), status, descriptions)


def is_open311(request: Request) -> bool:
    return request.url.path.startswith(ROOT + "/")


def _describe(exc: RequestValidationError) -> list[str]:
    described = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
        described.append(
            f"{where or 'request'}: không hợp lệ / invalid ({err.get('msg', '')})".strip()
        )
    return described


def install(app: FastAPI) -> None:
    """Register after `install_service_edge`: these handlers answer under `/open311/` and hand
    everything else to the shared ones."""

    async def domain(request: Request, exc: Open311Error) -> Response:
        if exc.status == 503:
            trip_database_breaker(request)
        response = error_response(request, exc.status, *exc.descriptions)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    app.add_exception_handler(Open311Error, domain)  # type: ignore[arg-type]
    invalid_elsewhere: Handler = app.exception_handlers[RequestValidationError]
    http_elsewhere: Handler = app.exception_handlers[StarletteHTTPException]

    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if not is_open311(request):
            return await _delegate(invalid_elsewhere, request, exc)
        return error_response(request, 400, *_describe(exc))

    async def http(request: Request, exc: StarletteHTTPException) -> Response:
        if not is_open311(request):
            return await _delegate(http_elsewhere, request, exc)
        response = error_response(
            request, exc.status_code, _HTTP.get(exc.status_code, str(exc.detail))
        )
        # 405 carries `Allow`, 401 `WWW-Authenticate`: keep what the exception says, with
        # every method of the path in `Allow`.
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = allowed_methods(request)
        return response

    app.add_exception_handler(RequestValidationError, invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http)  # type: ignore[arg-type]
    _document(app)


def _document(app: FastAPI) -> None:
    """In the OpenAPI document, Open311 operations answer JSON or XML, and their errors are
    GeoReport's list (the shared edge documents every error as problem details; undo that
    here, and drop FastAPI's 422: a bad argument is GeoReport's 400)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("GeoReportError", GeoReportError.model_json_schema())
        components.setdefault("CreateForm", CreateForm.model_json_schema(by_alias=True))
        for path, operations in schema.get("paths", {}).items():
            if path.startswith(ROOT + "/"):
                for operation in operations.values():
                    _open311_responses(operation["responses"])
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _open311_responses(responses: dict[str, Any]) -> None:
    responses.pop("422", None)
    for code, response in responses.items():
        if not code.isdigit():
            continue
        content = response.setdefault("content", {})
        if int(code) >= 400:
            content.clear()
            content["application/json"] = {"schema": _ERRORS_REF}
        content[render.XML_MEDIA_TYPE] = _XML
