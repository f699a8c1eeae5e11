"""One case: what it is, where it stands, its history and notes, and the actions the signed-in
person may take on it. Every action calls `services.routing.actions`, as the JSON API does,
then comes back to the case (post/redirect/get); a refusal shows the case again with what was
typed and the reason in both languages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.routing import models
from services.routing.actions import (
    ActionError,
    CaseNotFound,
    CaseView,
    InvalidInput,
    eligible_assignees,
)
from services.routing.deps import OptionalSession, SignedIn
from services.routing.lifecycle import STATUS_WORDS
from services.routing.permissions import ACTIONS
from services.routing.problems import http_status
from services.routing.web.cases import is_overdue, unit_names
from services.routing.web.i18n import DECLINE_REASONS, HISTORY_WORDS, rung_words
from services.routing.web.pages import Workspace, WorkspaceDep
from shared.auth import Staff
from shared.events.routing import DeclineReason
from shared.geo import map_link
from shared.webkit.forms import FormRefused
from shared.webkit.i18n import Lang, choose_language, pick
from shared.webkit.pages import see_other
from shared.webkit.session import StaffSession

router = APIRouter(include_in_schema=False)

# The text a person wrote, by history kind.
_SAID = {
    "resolved": "explanation",
    "rejected": "reason",
    "question_asked": "question",
    "resident_answered": "answer",
    "reopened": "comment",
    "escalation_requested": "comment",
}


def history_line(
    entry: Mapping[str, Any], members: Mapping[str, str], lang: Lang
) -> dict[str, Any]:
    """One history entry in plain words: when, what, who, and what was written."""
    kind = entry["kind"]
    detail = entry.get("detail") or {}
    what = pick(HISTORY_WORDS.get(kind, (kind, kind)), lang)
    said: str | None = None
    if kind == "assigned" and entry.get("member_id"):
        what = f"{what}: {members.get(entry['member_id'], entry['member_id'])}"
        if entry.get("rung") is not None:
            what += f" ({rung_words(int(entry['rung']), lang)})"
    elif kind == "escalated":
        what += f" ({detail.get('from_rung')} → {detail.get('to_rung')})"
        said = detail.get("comment")
    elif kind == "declined":
        code = detail.get("reason_code")
        if isinstance(code, str) and code in DECLINE_REASONS:
            what = f"{what}: {pick(DECLINE_REASONS[code], lang)}"
        said = detail.get("comment")
    elif kind in _SAID:
        value = detail.get(_SAID[kind])
        said = value if isinstance(value, str) and value else None
    return {"at": entry["at"], "what": what, "actor": entry.get("actor"), "said": said}


async def category_name(ws: Workspace, category_id: str, lang: Lang) -> str:
    c = models.categories
    async with ws.actions.engine.connect() as conn:
        row = (await conn.execute(c.select().where(c.c.id == category_id))).first()
    if row is None:
        return category_id
    return str(row.name_en if lang == "en" else row.name_vi)


async def case_words(
    ws: Workspace, view: CaseView, can: Mapping[str, bool], lang: Lang
) -> dict[str, Any]:
    """The case as the page shows it: names instead of ids, in the page's language."""
    case, org = view.case, view.org
    names = await unit_names(ws.actions.engine)
    holder = org.member(case["holder_member_id"]) if case["holder_member_id"] else None
    members = {c.member_id: c.name for c in org.candidates}
    assignees = [
        {"id": c.member_id, "label": f"{c.name} ({names.get(c.unit_id, c.unit_id)})"}
        for c in (eligible_assignees(case, org) if can["reassign"] else [])
    ]
    st = case["status"]
    return {
        "status_words": pick(STATUS_WORDS.get(st, (st, st)), lang),
        "rung": rung_words(case["rung"], lang),
        "holder": holder.name if holder else None,
        "unit": names.get(case["unit_id"], case["unit_id"]),
        "category": await category_name(ws, case["category_id"], lang),
        "overdue": is_overdue(case, ws.actions.clock.now()),
        "assignees": assignees,
        "reasons": [(k, pick(v, lang)) for k, v in DECLINE_REASONS.items()],
        "notes": [
            {"who": members.get(n["member_id"], n["member_id"]), "at": n["at"], "text": n["note"]}
            for n in view.notes
        ],
        "history": [history_line(h, members, lang) for h in view.history],
    }


async def case_page(
    request: Request,
    ws: Workspace,
    session: StaffSession,
    case_id: str,
    *,
    status: int = 200,
    error: ActionError | None = None,
    values: Mapping[str, str] | None = None,
    failed: str | None = None,
) -> Response:
    """The case; after a refused action, with the refusal and what was typed."""
    lang, _ = choose_language(request)
    try:
        view = await ws.actions.view(session.staff, case_id)
    except CaseNotFound:
        return ws.message(request, 404, "not_found", session)
    can: dict[str, bool] = {action: action in view.allowed for action in ACTIONS}
    done = request.query_params.get("done", "")
    return ws.render(
        request,
        "case.html",
        session=session,
        status=status,
        here=f"/cases/{view.case['id']}",
        case=view.case,
        map_url=map_link(view.case.get("latitude"), view.case.get("longitude")),
        can=can,
        any_action=any(can.values()),
        notice=ws.kit.text(f"done_{done}", lang) if done in ACTIONS else None,
        error=error,
        other_lang_error=(error.en if lang == "vi" else error.vi) if error else None,
        values=values or {},
        failed=failed or "",
        **await case_words(ws, view, can, lang),
    )


@router.get("/cases/{case_id}")
async def case_detail(
    request: Request, case_id: str, ws: WorkspaceDep, session: SignedIn
) -> Response:
    return await case_page(request, ws, session, case_id)


async def perform(
    ws: Workspace, staff: Staff, case_id: str, action: str, form: Mapping[str, str]
) -> bool:
    """Run the named action; False when there is no such action."""
    actions = ws.actions
    if action == "accept":
        await actions.accept(staff, case_id=case_id)
    elif action == "note":
        await actions.add_note(staff, case_id=case_id, note=form.get("note", ""))
    elif action == "resolve":
        await actions.resolve(staff, case_id=case_id, explanation=form.get("explanation", ""))
    elif action == "decline":
        code = form.get("reason_code", "")
        if code not in DECLINE_REASONS:
            raise InvalidInput("Vui lòng chọn lý do.", "Please choose a reason.")
        await actions.decline(
            staff,
            case_id=case_id,
            reason_code=cast(DeclineReason, code),
            comment=form.get("comment"),
        )
    elif action == "ask":
        await actions.ask(staff, case_id=case_id, question=form.get("question", ""))
    elif action == "reassign":
        await actions.reassign(staff, case_id=case_id, member_id=form.get("member_id") or None)
    elif action == "escalate":
        await actions.escalate(staff, case_id=case_id, comment=form.get("comment"))
    elif action == "take-over":
        await actions.take_over(staff, case_id=case_id)
    elif action == "reject":
        await actions.reject(staff, case_id=case_id, reason=form.get("reason", ""))
    else:
        return False
    return True


@router.post("/cases/{case_id}/{action}")
async def case_action(
    request: Request, case_id: str, action: str, ws: WorkspaceDep, session: OptionalSession
) -> Response:
    """An action from the case page's forms (CSRF-checked), then back to the case."""
    if session is None:
        return see_other(f"/signin?next={quote(f'/cases/{case_id}', safe='')}")
    try:
        form = await ws.read_form(request)
    except FormRefused as exc:
        return ws.message(request, exc.status, exc.message_key, session)
    if not ws.guard.check(request, form, session.token):
        return ws.refused(request, session)
    try:
        known = await perform(ws, session.staff, case_id, action, form)
    except CaseNotFound:
        return ws.message(request, 404, "not_found", session)
    except ActionError as exc:
        return await case_page(
            request,
            ws,
            session,
            case_id,
            status=http_status(exc),
            error=exc,
            values=form,
            failed=action,
        )
    if not known:
        return ws.message(request, 404, "not_found", session)
    return see_other(f"/cases/{case_id}?done={action}")
