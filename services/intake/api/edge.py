"""What every route of intake's JSON API shares: how a JSON body is read (media type, size,
syntax) before FastAPI validates it against the route's model, the bilingual field errors a
refused body gets, the operation ids a generated client is named by, and the documented
`Retry-After` of the problems that carry one.

No `from __future__ import annotations`: FastAPI reads these annotations at runtime.
"""

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from services.intake.errors import (
    FieldError,
    InvalidSubmission,
    MalformedBody,
    UnsupportedMediaType,
)
from services.intake.http import is_json, read_limited_body
from shared.web import problem_responses

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class _ReadRequest(Request):
    """A request whose JSON body was already read within the limit and parsed."""

    def __init__(self, request: Request, body: bytes, data: Any) -> None:
        super().__init__(request.scope, request.receive)
        self._read = body
        self._parsed = data

    async def body(self) -> bytes:
        return self._read

    async def json(self) -> Any:
        return self._parsed


async def _read_json(request: Request) -> _ReadRequest:
    """The body within MAX_BODY_BYTES (413 beyond, unread), declared as JSON (415 otherwise),
    and parsed (400 when it is not JSON). An empty body without a media type is no body."""
    body = await read_limited_body(request)
    content_type = request.headers.get("content-type")
    if not body and not content_type:
        return _ReadRequest(request, body, None)
    if not is_json(content_type):
        raise UnsupportedMediaType
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        # RecursionError: nesting deep enough to exhaust the parser, within the size limit.
        raise MalformedBody from None
    return _ReadRequest(request, body, data)


class JsonRoute(APIRoute):
    """A route whose body, if it takes one, is read by `_read_json` first, and whose refused
    input is an `InvalidSubmission` with messages in Vietnamese and English."""

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()
        reads_body = self.body_field is not None

        async def handle_json(request: Request) -> Response:
            if reads_body:
                request = await _read_json(request)
            try:
                return await handle(request)
            except RequestValidationError as exc:
                raise InvalidSubmission([_field_error(e) for e in exc.errors()]) from None

        return handle_json


# What pydantic says about a JSON value, as a resident or a client developer reads it.
_MESSAGES: dict[str, tuple[str, str]] = {
    "missing": ("không được để trống", "is required"),
    "string_type": ("phải là chuỗi ký tự", "must be text"),
    "bool_type": ("phải là true hoặc false", "must be true or false"),
    "float_type": ("phải là số", "must be a number"),
    "finite_number": ("phải là số hữu hạn", "must be a finite number"),
    "greater_than_equal": ("nằm ngoài khoảng cho phép", "is out of range"),
    "less_than_equal": ("nằm ngoài khoảng cho phép", "is out of range"),
    "uuid_type": ("mã không hợp lệ", "not a valid id"),
    "uuid_parsing": ("mã không hợp lệ", "not a valid id"),
    "model_attributes_type": ("phải là một đối tượng JSON", "must be a JSON object"),
    "dict_type": ("phải là một đối tượng JSON", "must be a JSON object"),
}
_CONSENT = ("cần đồng ý để phản ánh được xử lý", "consent is required to process the petition")


def _field_error(error: Any) -> FieldError:
    where = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(where) or "body"
    kind = str(error.get("type", ""))
    if field == "consent":
        vi, en = _CONSENT
    elif kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        vi, en = f"chỉ nhận {expected}", f"must be {expected}"
    else:
        vi, en = _MESSAGES.get(kind, ("không hợp lệ", str(error.get("msg", "invalid"))))
    return FieldError(field, vi, en)


def operation_id(route: APIRoute) -> str:
    """A route's operation id is its function's name (`submit_petition`), so a generated
    client reads like the code and OpenAPI links can name their target."""
    return route.name


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before sending the same request again.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`problem_responses`, with `Retry-After` documented on 429 and 503."""
    responses = problem_responses(*statuses)
    for status in (429, 503):
        if status in responses:
            responses[status] = {**responses[status], "headers": RETRY_AFTER}
    return responses
