"""GET services and GET services/{service_code}: intake's categories as GeoReport services."""

from fastapi import APIRouter, Response

from services.intake.deps import CatalogDep
from services.intake.open311 import render, views
from services.intake.open311.deps import Jurisdiction
from services.intake.open311.edge import PREFIX
from services.intake.open311.errors import UnknownService
from services.intake.open311.schemas import Format, GeoReportError, Service, ServiceDefinition
from services.intake.open311.submission import language

router = APIRouter(prefix=PREFIX, tags=["open311"])


@router.get(
    "/services.{format}",
    response_model=list[Service],
    responses={400: {"model": list[GeoReportError]}, 404: {"model": list[GeoReportError]}},
)
async def service_list(
    format: Format, catalog: CatalogDep, _: Jurisdiction, locale: str | None = None
) -> Response:
    """Every category, as a realtime service with metadata (the area attribute)."""
    lang = language(locale)
    return render.respond(
        format, "services", [views.service(c, lang) for c in catalog.categories.values()]
    )


@router.get(
    "/services/{service_code}.{format}",
    response_model=ServiceDefinition,
    responses={400: {"model": list[GeoReportError]}, 404: {"model": list[GeoReportError]}},
)
async def service_definition(
    service_code: str,
    format: Format,
    catalog: CatalogDep,
    _: Jurisdiction,
    locale: str | None = None,
) -> Response:
    """The attributes a request of this service carries: the resident's area."""
    if service_code not in catalog.categories:
        raise UnknownService(service_code)
    return render.respond(
        format, "service_definition", views.definition(catalog, service_code, language(locale))
    )
