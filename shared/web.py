"""The HTTP edge every service shares: RFC 9457 problem details, health, readiness, metrics,
the dead-letter list, and staff authentication.

No `from __future__ import annotations` here: FastAPI resolves string annotations against the
module's globals, and the dependencies below are closures.
"""

from collections.abc import Callable
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Cookie, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import SESSION_COOKIE, InvalidTokenError, Staff, read_token
from shared.db import ping
from shared.messaging import list_dead_letters
from shared.runtime import Runtime

PROBLEM_JSON = "application/problem+json"

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


def install_problem_handlers(app: FastAPI) -> None:
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
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        response = problem(exc.status_code, str(exc.detail))
        if headers:
            response.headers.update(headers)
        return response

    app.add_middleware(_CatchAll)


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


def ops_router(runtime: Runtime, *, extra_checks: Callable[[], bool] | None = None) -> APIRouter:
    """`/healthz` (alive), `/readyz` (database, NATS, consumers), `/metrics` (Prometheus)."""
    router = APIRouter(tags=["ops"])
    registry = CollectorRegistry()
    labels = {"service": runtime.service}
    handled = Gauge(
        "petitions_events_handled", "Events handled by consumers", ["service"], registry=registry
    )
    dups = Gauge(
        "petitions_events_duplicate", "Duplicate deliveries ignored", ["service"], registry=registry
    )
    retried = Gauge(
        "petitions_events_retried",
        "Deliveries retried after a failure",
        ["service"],
        registry=registry,
    )
    dead = Gauge(
        "petitions_events_dead_lettered",
        "Messages parked as dead letters",
        ["service"],
        registry=registry,
    )
    published = Gauge(
        "petitions_outbox_published",
        "Outbox events confirmed by JetStream",
        ["service"],
        registry=registry,
    )
    backlog = Gauge(
        "petitions_outbox_backlog",
        "Outbox events not yet confirmed",
        ["service"],
        registry=registry,
    )

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = {
            "database": await ping(runtime.engine),
            "nats": runtime.started and await runtime.broker.ping(timeout=2.0),
            "relay": runtime.relay.running,
            "consumers": runtime.started,
        }
        if extra_checks is not None:
            checks["service"] = extra_checks()
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        stats = runtime.consumers.stats
        handled.labels(**labels).set(stats.handled)
        dups.labels(**labels).set(stats.duplicates)
        retried.labels(**labels).set(stats.retried)
        dead.labels(**labels).set(stats.dead_lettered)
        published.labels(**labels).set(runtime.relay.published_total)
        backlog.labels(**labels).set(await runtime.relay.backlog())
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


_bearer = HTTPBearer(auto_error=False)


def staff_dependency(secret: Callable[[], str]) -> Callable[..., Staff]:
    """A FastAPI dependency that returns the signed-in staff member or answers 401.

    API clients send `Authorization: Bearer …`; the staff pages carry the same token in the
    `petitions_staff` cookie (HttpOnly, SameSite=Lax) set by routing's sign-in page.
    """

    def current_staff(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        session: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
    ) -> Staff:
        token = credentials.credentials if credentials is not None else session
        if not token:
            raise HTTPException(
                401, "Cần đăng nhập / Sign-in required", headers={"WWW-Authenticate": "Bearer"}
            )
        try:
            return read_token(token, secret=secret())
        except InvalidTokenError:
            raise HTTPException(
                401,
                "Phiên đăng nhập không hợp lệ / Invalid or expired token",
                headers={"WWW-Authenticate": "Bearer"},
            ) from None

    return current_staff


def dead_letter_router(runtime: Runtime, current_staff: Callable[..., Staff]) -> APIRouter:
    """Administrators see what consumers parked, and retry it."""
    router = APIRouter(prefix="/api/v1/admin/dead-letters", tags=["admin"])

    def admin(staff: Annotated[Staff, Depends(current_staff)]) -> Staff:
        if not staff.is_admin:
            raise HTTPException(403, "Chỉ quản trị viên / Administrators only")
        return staff

    @router.get("")
    async def list_parked(_: Annotated[Staff, Depends(admin)]) -> list[dict[str, Any]]:
        return await list_dead_letters(runtime.engine, runtime.tables)

    @router.post("/{dead_letter_id}/retry")
    async def retry(dead_letter_id: int, _: Annotated[Staff, Depends(admin)]) -> dict[str, Any]:
        try:
            ok = await runtime.consumers.retry_dead_letter(dead_letter_id)
        except Exception as exc:
            raise ProblemError(
                409, f"Thử lại thất bại / Retry failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not ok:
            raise HTTPException(404, "Không có thư chết này / No such parked message")
        return {"retried": dead_letter_id}

    return router
