"""GET discovery.{json,xml}: Open311's service discovery file, which the
specification requires beside every GeoReport endpoint so clients find it and its formats."""

from datetime import UTC, datetime

from fastapi import APIRouter, Response

from services.intake.deps import SettingsDep
from services.intake.open311 import render
from services.intake.open311.edge import PREFIX
from services.intake.open311.render import XML_MEDIA_TYPE
from services.intake.open311.schemas import Discovery, Endpoint, Format, GeoReportError

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When this endpoint's behaviour last changed; clients compare it to know they must re-read.
CHANGESET = datetime(2026, 12, 1, tzinfo=UTC)

router = APIRouter(prefix=PREFIX, tags=["open311"])


@router.get(
    "/discovery.{format}",
    response_model=Discovery,
    responses={400: {"model": list[GeoReportError]}},
)
async def discovery(format: Format, settings: SettingsDep) -> Response:
    """Where the GeoReport v2 endpoint is, what it answers in, and how to get a key."""
    production = settings.env == "production"
    return render.respond(
        format,
        "discovery",
        Discovery(
            changeset=CHANGESET,
            contact="Quản trị viên hệ thống phản ánh / the petitions administrator",
            key_service=(
                "Quản trị viên cấp khóa api_key cho từng ứng dụng / "
                "an administrator issues one api_key per client application"
            ),
            endpoints=[
                Endpoint(
                    specification=SPECIFICATION,
                    url=f"{settings.public_url}{PREFIX}",
                    changeset=CHANGESET,
                    type="production" if production else "test",
                    formats=[XML_MEDIA_TYPE, "application/json"],
                )
            ],
        ),
    )
