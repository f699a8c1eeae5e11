"""The tracking page: a resident follows their petition by its link (the token in the URL is
the only key, so pages never leak it to another site), and the pages that confirm an action
that cannot be undone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from services.intake import store
from services.intake.catalog import Catalog
from services.intake.deps import CatalogDep, ClientAddress, SettingsDep, ThrottleDep
from services.intake.petitions import (
    holder_label,
    resident_actions,
    status_label,
    tracking_url,
)
from services.intake.throttle import PublicThrottle
from shared.geo import map_link
from shared.runtime import Runtime
from shared.web import AppRuntime
from shared.webkit.i18n import Lang, choose_language, pick
from shared.webkit.pages import PageKit, Pages

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Tracking:
    """What the tracking pages are given."""

    kit: PageKit
    runtime: Runtime
    catalog: Catalog
    public_url: str
    throttle: PublicThrottle
    # The client address the public rate limit counts.
    client: str


def tracking(
    kit: Pages,
    runtime: AppRuntime,
    catalog: CatalogDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
    client: ClientAddress,
) -> Tracking:
    return Tracking(
        kit=kit,
        runtime=runtime,
        catalog=catalog,
        public_url=settings.public_url,
        throttle=throttle,
        client=client,
    )


TrackingDep = Annotated[Tracking, Depends(tracking)]

# What a redirect back to the tracking page tells the resident (`?done=…`).
_DONE_NOTICES = {
    "feedback": "feedback_thanks",
    "answered": "answered",
    "escalated": "escalated_notice",
    "withdrawn": "withdrawn_notice",
    "stopped": "stopped_notice",
    "erased": "erased_notice",
}


def done_notice(kit: PageKit, request: Request, lang: Lang) -> str | None:
    done = _DONE_NOTICES.get(request.query_params.get("done", ""))
    if request.query_params.get("feedback"):
        done = "feedback_thanks"
    return kit.text(done, lang) if done else None


def petition_words(row: Any, catalog: Catalog, lang: Lang) -> dict[str, Any]:
    """The petition's status, holder, place and category in the page's language, and what the
    member wrote when resolving or rejecting it."""
    category = catalog.categories.get(row["category_id"])
    holder = holder_label(row["rung"]) if row["rung"] is not None else None
    timeline = row["timeline"]
    resolution = next((i for i in timeline if i["event_id"] == row["resolution_event_id"]), None)
    rejection = next((i for i in reversed(timeline) if i["kind"] == "rejected"), None)
    return {
        "status_text": pick(status_label(row["status"]), lang),
        "holder": pick(holder, lang) if holder else None,
        "unit_name": catalog.path_name(row["unit_id"]),
        "category_name": category.name(lang) if category else row["category_id"],
        "resolution": resolution["detail"] if resolution else None,
        "rejection": rejection["detail"] if rejection else None,
        "map_url": map_link(row["latitude"], row["longitude"]),
    }


async def track_page(
    request: Request, on: Tracking, token: str, *, status: int = 200, notice: str | None = None
) -> Response:
    """The petition as the resident sees it, with the actions open to them now."""
    kit = on.kit
    lang, _ = choose_language(request)
    row = await store.petition_by_token(on.runtime.engine, token)
    if row is None:
        return kit.render(request, "not_found.html", status=404)
    return kit.render(
        request,
        "track.html",
        status=status,
        here=f"/track/{token}",
        p=row,
        token=token,
        tracking_url=tracking_url(on.public_url, token),
        is_new=request.query_params.get("new") == "1",
        notice=notice or done_notice(kit, request, lang),
        actions=resident_actions(row, on.runtime.clock.now()),
        **petition_words(row, on.catalog, lang),
    )


@router.get("/track/{token}", response_class=HTMLResponse)
async def track(request: Request, token: str, on: TrackingDep) -> Response:
    return await track_page(request, on, token)


async def confirm_page(
    request: Request,
    kit: PageKit,
    runtime: AppRuntime,
    token: str,
    action: Literal["withdraw", "erase"],
) -> Response:
    row = await store.petition_by_token(runtime.engine, token)
    if row is None:
        return kit.render(request, "not_found.html", status=404)
    return kit.render(request, "confirm.html", p=row, token=token, action=action)


@router.get("/track/{token}/withdraw", response_class=HTMLResponse)
async def withdraw_confirm(
    request: Request, token: str, kit: Pages, runtime: AppRuntime
) -> Response:
    return await confirm_page(request, kit, runtime, token, "withdraw")


@router.get("/track/{token}/erase", response_class=HTMLResponse)
async def erase_confirm(request: Request, token: str, kit: Pages, runtime: AppRuntime) -> Response:
    return await confirm_page(request, kit, runtime, token, "erase")
