"""GET tokens/{token}: the request id a create answer's token stands for."""

import re

from fastapi import APIRouter, Response

from services.intake.deps import AppRuntime
from services.intake.open311 import render
from services.intake.open311.deps import Jurisdiction
from services.intake.open311.edge import PREFIX
from services.intake.open311.errors import UnknownToken
from services.intake.open311.records import request_by_token
from services.intake.open311.schemas import Format, GeoReportError, TokenAnswer

# What our tokens look like (`secrets.token_urlsafe(16)`); nothing else reaches the database.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

router = APIRouter(prefix=PREFIX, tags=["open311"])


@router.get(
    "/tokens/{token}.{format}",
    response_model=list[TokenAnswer],
    responses={400: {"model": list[GeoReportError]}, 404: {"model": list[GeoReportError]}},
)
async def token_request(
    token: str, format: Format, runtime: AppRuntime, _: Jurisdiction
) -> Response:
    """Our requests are created at once (services are `realtime`), so a token always resolves;
    clients written for servers that answer later can still ask."""
    row = await request_by_token(runtime.engine, token) if _TOKEN.match(token) else None
    if row is None:
        raise UnknownToken(token)
    return render.respond(
        format,
        "service_requests",
        [TokenAnswer(service_request_id=row["reference"], token=token)],
    )
