"""The HTTP edge every service shares: RFC 9457 problem details, health, readiness, metrics,
the dead-letter list, and staff authentication.

No `from __future__ import annotations` here: FastAPI reads the `Annotated` dependencies at
import time and pydantic the response models.
"""

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Cookie, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import SESSION_COOKIE, InvalidTokenError, Staff, read_token
from shared.db import OUTAGE_ERRORS, is_database_outage, ping
from shared.messaging import Unretryable, list_dead_letters, retryable
from shared.revocations import RevokedSessions
from shared.runtime import Runtime

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger(__name__)


def _text_timestamp(value: object) -> object:
    """A moment as the documents say, an RFC 3339 string: not the Unix timestamps that pydantic
    would also read as a datetime (`"from": 111040426` is a mistake, not a day in 1973)."""
    if not isinstance(value, str | datetime):
        raise ValueError(
            "expected an RFC 3339 date-time with its offset, e.g. 2026-12-01T08:00:00+07:00"
        )
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_text_timestamp)]
"""An input moment with its UTC offset, given as text."""

_TITLES = {
    400: "Yêu cầu không hợp lệ / Bad request",
    401: "Chưa đăng nhập / Not signed in",
    403: "Không có quyền / Forbidden",
    404: "Không tìm thấy / Not found",
    405: "Phương thức không được phép / Method not allowed",
    409: "Xung đột trạng thái / Conflict",
    413: "Nội dung quá lớn / Payload too large",
    415: "Kiểu nội dung không hỗ trợ / Unsupported media type",
    422: "Dữ liệu không hợp lệ / Invalid data",
    429: "Quá nhiều yêu cầu / Too many requests",
    503: "Dịch vụ chưa sẵn sàng / Service unavailable",
}


class ProblemError(Exception):
    """An error the HTTP edge renders as problem details."""

    def __init__(
        self, status: int, detail: str, *, type_: str = "about:blank", **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = type_
        self.extra = extra


def problem(status: int, detail: str, *, type_: str = "about:blank", **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "title": _TITLES.get(status, "Lỗi / Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


class FieldProblem(BaseModel):
    field: str
    message: str
    message_vi: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of every service is answered."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that may answer these problems; `install_problem_openapi`
    documents them as `application/problem+json`."""
    return {
        status: {"model": Problem, "description": _TITLES.get(status, "Lỗi / Error")}
        for status in statuses
    }


def install_problem_openapi(app: FastAPI) -> None:
    """Document problem responses with the media type they are sent with, and FastAPI's own
    validation answer (422) as the problem details `install_problem_handlers` really sends."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        problem_ref = {"$ref": "#/components/schemas/Problem"}
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        components.setdefault(
            "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        components.setdefault("FieldProblem", FieldProblem.model_json_schema())
        components["Problem"].pop("$defs", None)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for code, response in operation.get("responses", {}).items():
                    if not code.isdigit() or int(code) < 400:
                        continue
                    content = response.setdefault("content", {})
                    content.pop("application/json", None)
                    content[PROBLEM_JSON] = {"schema": problem_ref}
                    if code == "422":
                        response["description"] = _TITLES[422]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_problem_handlers(
    app: FastAPI, errors: Mapping[type[Exception], int] | None = None
) -> None:
    """Every error as problem details. `errors` maps a service's domain exceptions to their
    HTTP status in one place: the domain raises `UnknownTrackingLink`, the edge answers 404.
    A domain exception may carry `problem_type` (a URN), `extra` (more members) and `headers`
    (e.g. `Retry-After`)."""
    for exc_type, status in (errors or {}).items():
        app.add_exception_handler(exc_type, _domain_handler(status))
    for outage in (*OUTAGE_ERRORS, ConnectionRefusedError):
        app.add_exception_handler(outage, _database_outage)
    app.state.database_breaker = Breaker()
    app.add_middleware(_DatabaseBreaker, breaker=app.state.database_breaker)

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem(exc.status, exc.detail, type_=exc.type, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "form")]
            errors.append({"field": ".".join(loc) or "body", "message": err.get("msg", "")})
        fields = ", ".join(e["field"] for e in errors)
        return problem(
            422,
            f"Trường không hợp lệ / Invalid fields: {fields}",
            type_="urn:petitions:problem:validation",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        response = problem(exc.status_code, str(exc.detail))
        if headers:
            response.headers.update(headers)
        if exc.status_code == 405:
            response.headers["Allow"] = allowed_methods(request)
        return response

    app.add_middleware(_CatchAll)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route of the app answers at this path. Starlette names only the first
    matching route's methods, wrong when GET and POST of one path are two routes; asking each
    route with each method also sees into included routers."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    )


RETRY_AFTER_S = 5
DATABASE_UNAVAILABLE = (
    "Hệ thống tạm thời không lưu được, vui lòng thử lại sau ít phút / "
    "The database is unavailable for a moment, please retry"
)


async def _database_outage(request: Request, exc: Exception) -> Response:
    """A database that cannot be reached is a 503 the client may retry, never a 500: problem
    details for the API, a short bilingual page for the staff pages. A bug SQLite reports the
    same way (no such table) stays a 500. The breaker then answers the next requests at once."""
    if not is_database_outage(exc):
        raise exc
    trip_database_breaker(request)
    return _unavailable(request.url.path)


def _unavailable(path: str) -> Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    if path.startswith("/api/") or path.startswith("/open311/"):
        response = problem(503, DATABASE_UNAVAILABLE, type_="urn:petitions:problem:unavailable")
        response.headers.update(headers)
        return response
    return HTMLResponse(
        '<!doctype html><html lang="vi"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>503</title><p>{DATABASE_UNAVAILABLE}</p></html>",
        status_code=503,
        headers=headers,
    )


class Breaker:
    """What the HTTP edge knows about the database: a request found it unavailable recently.

    SQLite held by another writer makes each request wait out the busy timeout (15 s) in
    turn, one connection at a time, so without this a queue forms and a resident's phone
    waits until its own timeout. Once a request has found the database unavailable, the next
    API requests are answered 503 with `Retry-After` at once for `RETRY_AFTER_S`; then one
    request at a time tries it (the others still 503) until one gets through without finding
    it down. Health and readiness are never answered by it."""

    def __init__(self, *, open_s: float = RETRY_AFTER_S) -> None:
        self.open_s = open_s
        self.tripped = False
        self.open_until = 0.0
        self.probing = False
        self.trips = 0

    @property
    def open(self) -> bool:
        """Answer 503 now without trying the database."""
        return self.tripped and (time.monotonic() < self.open_until or self.probing)

    def trip(self) -> None:
        if not self.tripped:
            log.warning("database_breaker_open", retry_after_s=self.open_s)
        self.tripped = True
        self.open_until = time.monotonic() + self.open_s
        self.trips += 1

    def recovered(self) -> None:
        """A request got through to the database."""
        if self.tripped:
            self.tripped = False
            log.info("database_breaker_closed")


def database_breaker(request: Request) -> Breaker:
    """The app's breaker, for a page that answers an outage itself (the resident's form keeps
    what they typed): it asks `open` first, and trips or clears it by what it found."""
    breaker: Breaker = request.app.state.database_breaker
    return breaker


# The breaker answers for machine clients, which read `Retry-After`; pages answer an outage
# themselves (the form keeps what the resident typed), asking `database_breaker(request)`.
_BREAKER_PATHS = ("/api/",)


class _DatabaseBreaker:
    def __init__(self, app: ASGIApp, breaker: Breaker) -> None:
        self.app = app
        self.breaker = breaker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        b = self.breaker
        path = scope.get("path", "")
        if scope["type"] != "http" or not b.tripped or not path.startswith(_BREAKER_PATHS):
            await self.app(scope, receive, send)
            return
        if b.open:
            await _unavailable(path)(scope, receive, send)
            return
        b.probing = True
        trips = b.trips
        try:
            await self.app(scope, receive, send)
        finally:
            b.probing = False
            if b.trips == trips:
                b.recovered()


def trip_database_breaker(request: Request) -> None:
    """A route or handler that answered a database outage itself says so to the breaker."""
    breaker = getattr(request.app.state, "database_breaker", None)
    if breaker is not None:
        breaker.trip()


def _domain_handler(status: int) -> Callable[[Request, Exception], Any]:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        if getattr(exc, "database_outage", False):
            trip_database_breaker(request)
        response = problem(
            status,
            str(exc),
            type_=getattr(exc, "problem_type", "about:blank"),
            **getattr(exc, "extra", {}),
        )
        response.headers.update(getattr(exc, "headers", {}))
        return response

    return handle


class _CatchAll:
    """Turns an unexpected exception into a 500 problem, logged once.

    An `exception_handler(Exception)` would answer too, but Starlette re-raises after it and
    the server logs the same traceback a second time.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            structlog.get_logger(__name__).exception(
                "unhandled_error", error=type(exc).__name__, path=scope.get("path")
            )
            if not started:
                await problem(500, "Lỗi máy chủ / Internal error")(scope, receive, send)


DOCS_ASSETS = "/docs-assets"


def offline_docs(app: FastAPI) -> None:
    """Serve `/docs` (Swagger UI) from files installed with the service, not from a CDN: the
    embedded mode runs on machines without internet, and a city's network may block CDNs."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.router.routes[:] = [
        r for r in app.router.routes if getattr(r, "path", None) not in ("/docs", "/redoc")
    ]
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


class _Metrics:
    """One service's Prometheus gauges, refreshed from its runtime on each scrape."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.labels = {"service": service}

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, ["service"], registry=self.registry)

        self.handled = gauge("petitions_events_handled", "Events handled by consumers")
        self.duplicates = gauge("petitions_events_duplicate", "Duplicate deliveries ignored")
        self.retried = gauge("petitions_events_retried", "Deliveries retried after a failure")
        self.dead = gauge("petitions_events_dead_lettered", "Messages parked as dead letters")
        self.published = gauge("petitions_outbox_published", "Outbox events confirmed by JetStream")
        self.backlog = gauge("petitions_outbox_backlog", "Outbox events not yet confirmed")

    async def render(self, runtime: Runtime) -> bytes:
        stats = runtime.consumers.stats
        self.handled.labels(**self.labels).set(stats.handled)
        self.duplicates.labels(**self.labels).set(stats.duplicates)
        self.retried.labels(**self.labels).set(stats.retried)
        self.dead.labels(**self.labels).set(stats.dead_lettered)
        self.published.labels(**self.labels).set(runtime.relay.published_total)
        self.backlog.labels(**self.labels).set(await runtime.relay.backlog())
        return generate_latest(self.registry)


def from_state(name: str) -> Callable[[Request], Any]:
    """A dependency that hands a route what `create_app` put on `app.state` under `name`;
    used as `Annotated[Settings, Depends(from_state("settings"))]`, so nothing exists before
    an app is built."""

    def read(request: Request) -> Any:
        return getattr(request.app.state, name)

    read.__name__ = f"state_{name}"
    return read


# The service's runtime (engine, broker, clock, relay, consumers), built in `create_app`.
AppRuntime = Annotated[Runtime, Depends(from_state("runtime"))]

ops = APIRouter(tags=["ops"])


@ops.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """Alive: the process answers."""
    return {"status": "ok"}


@ops.get("/readyz", include_in_schema=False)
async def readyz(request: Request, runtime: AppRuntime) -> JSONResponse:
    """Ready: database, NATS, relay and consumers, plus the service's own workers."""
    checks = {
        "database": await ping(runtime.engine),
        "nats": runtime.started and await runtime.broker.ping(timeout=2.0),
        "relay": runtime.relay.running,
        "consumers": runtime.started,
    }
    extra: Callable[[], bool] | None = request.app.state.ready_check
    if extra is not None:
        checks["service"] = extra()
    ok = all(checks.values())
    return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


@ops.get("/metrics", include_in_schema=False)
async def metrics(request: Request, runtime: AppRuntime) -> Response:
    """Prometheus text format."""
    gauges: _Metrics = request.app.state.metrics
    return Response(await gauges.render(runtime), media_type=CONTENT_TYPE_LATEST)


_bearer = HTTPBearer(auto_error=False)


SessionCheck = Callable[[Staff], Awaitable[bool]]
"""Whether the session a valid token names is still open (`install_service_edge`)."""


async def current_staff(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    session: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
) -> Staff:
    """The signed-in staff member, or 401: the one way every service reads who is calling.

    API clients send `Authorization: Bearer …`; the staff pages carry the same token in the
    `petitions_staff` cookie (HttpOnly, SameSite=Lax) set by routing's sign-in page. The key
    comes from `app.state.staff_secret`, set by each service's `create_app`; a token whose
    session has ended (signed out, deactivated, role or password changed) is refused although
    its signature and expiry are good.
    """
    token = credentials.credentials if credentials is not None else session
    if not token:
        raise HTTPException(
            401, "Cần đăng nhập / Sign-in required", headers={"WWW-Authenticate": "Bearer"}
        )
    secret: Callable[[], str] = request.app.state.staff_secret
    try:
        staff = read_token(token, secret=secret())
    except InvalidTokenError:
        raise HTTPException(
            401,
            "Phiên đăng nhập không hợp lệ / Invalid or expired token",
            headers={"WWW-Authenticate": "Bearer"},
        ) from None
    still_open: SessionCheck = request.app.state.session_check
    if not await still_open(staff):
        raise HTTPException(
            401,
            "Phiên đăng nhập đã kết thúc / The session has ended, sign in again",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return staff


CurrentStaff = Annotated[Staff, Depends(current_staff)]


def admin_staff(staff: CurrentStaff) -> Staff:
    """The signed-in administrator, or 403."""
    if not staff.is_admin:
        raise HTTPException(403, "Chỉ quản trị viên / Administrators only")
    return staff


AdminStaff = Annotated[Staff, Depends(admin_staff)]


class DeadLetter(BaseModel):
    """A message a consumer parked after its last failed delivery."""

    id: int
    consumer: str
    subject: str
    event_id: str | None
    payload: str
    error: str
    deliveries: int
    failed_at: datetime
    retried_at: datetime | None
    retryable: bool = Field(
        description="False when a retry cannot help: the body does not parse, or no handler "
        "knows its subject (it was parked at once)."
    )


class Retried(BaseModel):
    retried: int


dead_letters = APIRouter(prefix="/api/v1/admin/dead-letters", tags=["admin"])


@dead_letters.get("", responses=problem_responses(401, 403))
async def list_parked(_: AdminStaff, runtime: AppRuntime) -> list[DeadLetter]:
    """What consumers parked, for an administrator to read and retry."""
    rows = await list_dead_letters(runtime.engine, runtime.tables)
    return [DeadLetter.model_validate({**row, "retryable": retryable(row)}) for row in rows]


@dead_letters.post("/{dead_letter_id}/retry", responses=problem_responses(401, 403, 404, 409))
async def retry_parked(dead_letter_id: int, _: AdminStaff, runtime: AppRuntime) -> Retried:
    """Hand a parked message to its handler again; it leaves the list once handled."""
    try:
        ok = await runtime.consumers.retry_dead_letter(dead_letter_id)
    except Unretryable as exc:
        raise ProblemError(
            409, f"Không thể thử lại thư này / This message cannot be retried: {exc}"
        ) from exc
    except Exception as exc:
        raise ProblemError(
            409, f"Thử lại thất bại / Retry failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not ok:
        raise HTTPException(404, "Không có thư chết này / No such parked message")
    return Retried(retried=dead_letter_id)


def install_service_edge(
    app: FastAPI,
    runtime: Runtime,
    *,
    staff_secret: Callable[[], str],
    session_check: SessionCheck | None = None,
    errors: Mapping[type[Exception], int] | None = None,
    ready_check: Callable[[], bool] | None = None,
) -> None:
    """What every service's HTTP edge has: its state for the dependencies above, problem
    details for every error (domain exceptions mapped by `errors`), a bound on request bodies,
    offline `/docs`, the problem schema in OpenAPI, health, readiness, metrics and the
    dead-letter list.

    Staff tokens of a revoked session are refused: `session_check` says so for the service
    that keeps the sessions (routing); every other service watches the revocations routing
    announces on the bus, for as long as the app runs."""
    app.state.runtime = runtime
    app.state.staff_secret = staff_secret
    app.state.ready_check = ready_check
    app.state.metrics = _Metrics(runtime.service)
    if session_check is None:
        revoked = RevokedSessions()
        app.state.revoked_sessions = revoked
        session_check = _not_revoked(revoked)
        _watch_while_running(app, revoked, runtime)
    app.state.session_check = session_check
    install_problem_handlers(app, errors)
    app.add_middleware(BodyLimit, max_bytes=runtime.settings.max_body_bytes)
    install_problem_openapi(app)
    offline_docs(app)
    app.include_router(ops)
    app.include_router(dead_letters)


def _not_revoked(revoked: RevokedSessions) -> SessionCheck:
    async def check(staff: Staff) -> bool:
        return not await revoked.revoked(staff.session_id)

    return check


def _watch_while_running(app: FastAPI, revoked: RevokedSessions, runtime: Runtime) -> None:
    """Run the revocation watch inside the app's own lifespan (after the bus connects)."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        async with inner(app_) as state:
            revoked.start(runtime)
            try:
                yield state
            finally:
                await revoked.stop()

    app.router.lifespan_context = lifespan


# Paths whose clients expect their own error format, not problem details: Open311 GeoReport.
_OWN_ERROR_FORMAT = ("/open311/",)


class BodyLimit:
    """Refuses (413, problem details) a request body over `max_bytes`: at once when its
    Content-Length says so, else as soon as the bytes read pass the limit. Bounds what any
    caller, signed in or not, can make a service buffer and parse."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> str:
        return (
            f"Nội dung vượt quá {self.max_bytes} byte / Request body exceeds {self.max_bytes} bytes"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            if not scope.get("path", "").startswith(_OWN_ERROR_FORMAT):
                await problem(413, self._too_large())(scope, receive, send)
                return

            # Refused at the first read, unread, by the handlers of a path that speaks its
            # own error format (a GeoReport error).
            async def refuse() -> Message:
                raise HTTPException(413, self._too_large())

            await self.app(scope, refuse, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI passes its own HTTPException through body reading unchanged;
                    # the problem handlers answer it.
                    raise HTTPException(413, self._too_large())
            return message

        await self.app(scope, limited, send)
