"""The page where a resident who lost their tracking link asks for it again by reference and
contact (`services.intake.recovery`): the same answer whether or not anything matched."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, Response

from services.intake.deps import ClientAddress, ThrottleDep
from services.intake.errors import TooManyRequests
from services.intake.recovery import ask_for_link
from services.intake.web.pages import read_page_form, refused_page
from shared.web import AppRuntime
from shared.webkit.forms import FormRefused
from shared.webkit.i18n import choose_language
from shared.webkit.pages import Pages

router = APIRouter(include_in_schema=False)


@router.get("/track/recover", response_class=HTMLResponse)
async def recover_form(request: Request, kit: Pages) -> Response:
    return kit.render(request, "recover.html", values={}, banner=None, sent=None)


@router.post("/track/recover", response_class=HTMLResponse)
async def recover(
    request: Request,
    kit: Pages,
    runtime: AppRuntime,
    throttle: ThrottleDep,
    client: ClientAddress,
    tasks: BackgroundTasks,
) -> Response:
    lang, _ = choose_language(request)
    try:
        values = await read_page_form(request)
    except FormRefused as exc:
        return refused_page(kit, request, exc)
    reference = values.get("reference", "").strip()[:40]
    contact = values.get("contact", "").strip()[:254]
    if not reference or not contact:
        banner = kit.text("recover_missing", lang)
        return kit.render(
            request, "recover.html", status=422, values=values, banner=banner, sent=None
        )
    try:
        await ask_for_link(
            reference=reference,
            contact=contact,
            client=client,
            throttle=throttle,
            runtime=runtime,
            tasks=tasks,
        )
    except TooManyRequests as exc:
        banner = kit.text("rate_limited_short", lang).format(minutes=exc.minutes)
        response = kit.render(
            request, "recover.html", status=429, values=values, banner=banner, sent=None
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    sent = kit.text("recover_sent", lang)
    return kit.render(request, "recover.html", status=202, values={}, banner=None, sent=sent)
