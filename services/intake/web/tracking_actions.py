"""What a resident does from the tracking page: say whether the matter is settled, answer a
member's question, ask for escalation when overdue, withdraw, stop progress messages, erase
their contact details. Each runs one store function and comes back to the tracking page; a
refusal is the tracking page with a notice, in the page's language."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.intake import store
from services.intake.deps import resident_action_keys
from services.intake.errors import (
    ActionNotAllowed,
    EscalationRefused,
    FeedbackNotExpected,
    InvalidSubmission,
    TooManyRequests,
    UnknownTrackingLink,
)
from services.intake.petitions import validate_comment
from services.intake.web.pages import error_page, form_errors, read_page_form, refused_page
from services.intake.web.tracking import Tracking, TrackingDep, track_page
from shared.db import is_database_outage
from shared.runtime import Runtime
from shared.web import trip_database_breaker
from shared.webkit.forms import FormRefused
from shared.webkit.i18n import choose_language
from shared.webkit.pages import see_other

router = APIRouter(include_in_schema=False)

# Runs the action for the petition of a tracking token, from its form; says what was done.
Action = Callable[[Runtime, str, dict[str, str]], Awaitable[str]]
_REFUSALS = (ActionNotAllowed, FeedbackNotExpected, EscalationRefused)


async def act(request: Request, on: Tracking, token: str, action: Action, refused: str) -> Response:
    """Read the form, run the action, go back to the tracking page saying what was done."""
    lang, _ = choose_language(request)
    try:
        form = await read_page_form(request)
    except FormRefused as exc:
        return refused_page(on.kit, request, exc)
    try:
        await on.throttle.admit(resident_action_keys(on.client, token))
        done = await action(on.runtime, token, form)
    except TooManyRequests as exc:
        notice = on.kit.text("rate_limited_short", lang).format(minutes=exc.minutes)
        response = await track_page(request, on, token, status=429, notice=notice)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except InvalidSubmission as exc:
        _, summary = form_errors(exc.errors, lang)
        notice = " ".join(s.text for s in summary)
        return await track_page(request, on, token, status=422, notice=notice)
    except UnknownTrackingLink:
        return await track_page(request, on, token)
    except _REFUSALS:
        return await track_page(request, on, token, status=409, notice=on.kit.text(refused, lang))
    except Exception as exc:
        if is_database_outage(exc):
            trip_database_breaker(request)
            return error_page(on.kit, request, 503, "unavailable_short")
        raise
    on.runtime.relay.wake()
    return see_other(f"/track/{token}?done={done}")


async def give_feedback(runtime: Runtime, token: str, form: dict[str, str]) -> str:
    answer = form.get("resolved")
    if answer not in ("yes", "no"):
        raise FeedbackNotExpected("invalid")
    await store.give_feedback(
        runtime.engine,
        token=token,
        resolved=answer == "yes",
        comment=validate_comment(form.get("comment")),
        now=runtime.clock.now(),
    )
    return "feedback"


async def answer_question(runtime: Runtime, token: str, form: dict[str, str]) -> str:
    try:
        question_id = uuid.UUID(form.get("question_id", ""))
    except ValueError:
        raise ActionNotAllowed("invalid", "other_question") from None
    answer = validate_comment(form.get("answer"), field="answer", required=True)
    assert answer is not None
    await store.answer_question(
        runtime.engine,
        token=token,
        question_id=question_id,
        answer=answer,
        now=runtime.clock.now(),
    )
    return "answered"


async def ask_escalation(runtime: Runtime, token: str, form: dict[str, str]) -> str:
    await store.request_escalation(
        runtime.engine,
        token=token,
        comment=validate_comment(form.get("comment")),
        now=runtime.clock.now(),
    )
    return "escalated"


async def withdraw_petition(runtime: Runtime, token: str, form: dict[str, str]) -> str:
    await store.withdraw(
        runtime.engine,
        token=token,
        reason=validate_comment(form.get("reason"), field="reason"),
        now=runtime.clock.now(),
    )
    return "withdrawn"


async def stop_progress_messages(runtime: Runtime, token: str, _: dict[str, str]) -> str:
    await store.stop_updates(runtime.engine, token=token, now=runtime.clock.now())
    return "stopped"


async def erase_contact(runtime: Runtime, token: str, _: dict[str, str]) -> str:
    await store.erase_contact(runtime.engine, token=token, now=runtime.clock.now())
    return "erased"


@router.post("/track/{token}/feedback", response_class=HTMLResponse)
async def feedback(request: Request, token: str, on: TrackingDep) -> Response:
    return await act(request, on, token, give_feedback, "feedback_refused")


@router.post("/track/{token}/answer", response_class=HTMLResponse)
async def answer(request: Request, token: str, on: TrackingDep) -> Response:
    return await act(request, on, token, answer_question, "answer_refused")


@router.post("/track/{token}/escalate", response_class=HTMLResponse)
async def escalate(request: Request, token: str, on: TrackingDep) -> Response:
    return await act(request, on, token, ask_escalation, "escalate_refused")


@router.post("/track/{token}/withdraw", response_class=HTMLResponse)
async def withdraw(request: Request, token: str, on: TrackingDep) -> Response:
    return await act(request, on, token, withdraw_petition, "not_allowed")


@router.post("/track/{token}/stop-updates", response_class=HTMLResponse)
async def stop_updates(request: Request, token: str, on: TrackingDep) -> Response:
    return await act(request, on, token, stop_progress_messages, "not_allowed")


@router.post("/track/{token}/erase", response_class=HTMLResponse)
async def erase(request: Request, token: str, on: TrackingDep) -> Response:
    return await act(request, on, token, erase_contact, "not_allowed")
