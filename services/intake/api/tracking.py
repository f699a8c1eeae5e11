"""What the resident does with the secret tracking token: follow the petition, answer a
resolution or a question, ask for escalation when overdue, withdraw, stop updates, erase their
contact data. The domain functions in `store` refuse what the petition's state does not allow.

No `from __future__ import annotations`: FastAPI reads these annotations at runtime.
"""

from fastapi import APIRouter, Depends, Response
from starlette.convertors import Convertor, register_url_convertor

from services.intake import store
from services.intake.api.edge import JsonRoute, operation_id, problems
from services.intake.api.schemas import (
    ContactErased,
    EscalationAsked,
    EscalationRequest,
    Feedback,
    QuestionAnswer,
    StatusChanged,
    TrackingView,
    UpdatesStopped,
    Withdrawal,
)
from services.intake.deps import AppRuntime, CatalogDep, count_resident_action
from services.intake.errors import UnknownTrackingLink
from services.intake.petitions import resident_actions, validate_comment


class TrackingToken(Convertor[str]):
    """A tracking token in a path: anything but `recover`, which is the lost-link request
    (`POST /api/v1/track/recover`), so that path answers only what it documents."""

    regex = r"(?!recover(?:/|$))[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


# Starlette's convertors are one registry, read when a route is declared: this names ours
# before the routes below use it (registering again is harmless).
register_url_convertor("tracking_token", TrackingToken())

router = APIRouter(
    prefix="/api/v1/track/{token:tracking_token}",
    tags=["tracking"],
    route_class=JsonRoute,
    generate_unique_id_function=operation_id,
)

# Problems every action by token may answer: unknown link, a state that does not allow it, a
# body that cannot be read, a field that breaks a rule, too many actions (the public rate
# limit), the database away for a moment.
ACTION_PROBLEMS = (400, 404, 409, 413, 415, 422, 429, 503)
# Every action is a public write: counted per address and per petition.
COUNTED = [Depends(count_resident_action)]


@router.get("", responses=problems(404, 503))
async def tracking_view(
    token: str, response: Response, runtime: AppRuntime, catalog: CatalogDep
) -> TrackingView:
    """The resident's own view of the petition: content, masked contact, timeline and what they
    may do now. Never cached, never sent on as a referrer: the link is the secret."""
    row = await store.petition_by_token(runtime.engine, token)
    if row is None:
        raise UnknownTrackingLink
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return TrackingView.build(row, catalog, resident_actions(row, runtime.clock.now()))


@router.post("/feedback", responses=problems(*ACTION_PROBLEMS), dependencies=COUNTED)
async def give_feedback(token: str, feedback: Feedback, runtime: AppRuntime) -> StatusChanged:
    """The resident answers a resolution once: resolved, or not (which reopens it)."""
    status = await store.give_feedback(
        runtime.engine,
        token=token,
        resolved=feedback.resolved,
        comment=validate_comment(feedback.comment),
        now=runtime.clock.now(),
    )
    runtime.relay.wake()
    return StatusChanged.to(status)


@router.post("/withdraw", responses=problems(*ACTION_PROBLEMS), dependencies=COUNTED)
async def withdraw_petition(
    token: str, runtime: AppRuntime, withdrawal: Withdrawal | None = None
) -> StatusChanged:
    """The resident withdraws the petition (`reason` optional, the body too); nothing more can
    happen to it."""
    reason = validate_comment(withdrawal.reason if withdrawal else None, field="reason")
    status = await store.withdraw(
        runtime.engine, token=token, reason=reason, now=runtime.clock.now()
    )
    runtime.relay.wake()
    return StatusChanged.to(status)


@router.post("/answer", responses=problems(*ACTION_PROBLEMS), dependencies=COUNTED)
async def answer_question(token: str, answer: QuestionAnswer, runtime: AppRuntime) -> StatusChanged:
    """The resident answers the holder's open question (`question_id`, `answer`), once."""
    text = validate_comment(answer.answer, field="answer", required=True)
    assert text is not None  # required=True refuses an empty answer
    status = await store.answer_question(
        runtime.engine,
        token=token,
        question_id=answer.question_id,
        answer=text,
        now=runtime.clock.now(),
    )
    runtime.relay.wake()
    return StatusChanged.to(status)


@router.post("/escalate", responses=problems(*ACTION_PROBLEMS), dependencies=COUNTED)
async def request_escalation(
    token: str, runtime: AppRuntime, escalation: EscalationRequest | None = None
) -> EscalationAsked:
    """An overdue case may be sent one rung up at the resident's request, once per 24 hours
    (429 with `allowed_at` and `Retry-After` when asked again sooner)."""
    comment = validate_comment(escalation.comment if escalation else None)
    next_allowed_at = await store.request_escalation(
        runtime.engine, token=token, comment=comment, now=runtime.clock.now()
    )
    runtime.relay.wake()
    return EscalationAsked(requested=True, next_allowed_at=next_allowed_at)


@router.post("/stop-updates", responses=problems(404, 429, 503), dependencies=COUNTED)
async def stop_updates(token: str, runtime: AppRuntime) -> UpdatesStopped:
    """The resident withdraws consent to be contacted about this petition."""
    changed = await store.stop_updates(runtime.engine, token=token, now=runtime.clock.now())
    return UpdatesStopped(wants_updates=False, changed=changed)


@router.post("/erase", responses=problems(404, 429, 503), dependencies=COUNTED)
async def erase_contact(token: str, runtime: AppRuntime) -> ContactErased:
    """The resident's contact data is erased; the petition itself stays, anonymous."""
    changed = await store.erase_contact(runtime.engine, token=token, now=runtime.clock.now())
    return ContactErased(contact_erased=True, changed=changed)
