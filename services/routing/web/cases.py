"""The case list: my cases, or (for leaders and administrators) every case of my units,
open ones first by deadline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from services.routing import models
from services.routing.cases import Organisation
from services.routing.deps import SignedIn
from services.routing.lifecycle import OPEN, STATUS_WORDS
from services.routing.permissions import may_list_unit
from services.routing.web.i18n import rung_words
from services.routing.web.pages import WorkspaceDep
from shared.webkit.i18n import Lang, choose_language, pick

router = APIRouter(include_in_schema=False)


def is_overdue(case: RowMapping, now: datetime) -> bool:
    if case["status"] not in OPEN:
        return False
    if case["flag"] in ("overdue", "overdue_top"):
        return True
    return case["due_at"] is not None and case["due_at"] < now


async def unit_names(engine: AsyncEngine) -> dict[str, str]:
    u = models.units
    async with engine.connect() as conn:
        return {row.id: row.name for row in (await conn.execute(u.select())).all()}


def summary(
    case: RowMapping, org: Organisation, names: dict[str, str], now: datetime, lang: Lang
) -> dict[str, Any]:
    """One line of the list: what, where, how urgent, and who holds it."""
    holder = org.member(case["holder_member_id"]) if case["holder_member_id"] else None
    return {
        "id": case["id"],
        "title": case["title"],
        "reference": case["reference"],
        "status": pick(STATUS_WORDS.get(case["status"], (case["status"],) * 2), lang),
        "open": case["status"] in OPEN,
        "overdue": is_overdue(case, now),
        "due_at": case["due_at"],
        "ack_due_at": case["ack_due_at"] if case["status"] == "assigned" else None,
        "unit": names.get(case["unit_id"], case["unit_id"]),
        "rung": rung_words(case["rung"], lang),
        "holder": holder.name if holder else None,
    }


def wanted_statuses(wanted: str) -> tuple[str, list[str] | None]:
    """The status filter asked for, and the statuses it lists (None: all); open by default."""
    if wanted == "all":
        return wanted, None
    if wanted in STATUS_WORDS:
        return wanted, [wanted]
    return "open", sorted(OPEN)


@router.get("/cases")
async def case_list(request: Request, ws: WorkspaceDep, session: SignedIn) -> Response:
    staff = session.staff
    lang, _ = choose_language(request)
    may_see_unit = may_list_unit(staff)
    scope: Literal["mine", "unit"] = (
        "unit" if request.query_params.get("scope") == "unit" and may_see_unit else "mine"
    )
    wanted, statuses = wanted_statuses(request.query_params.get("status", "open"))
    rows, org = await ws.actions.list_cases(staff, scope=scope, statuses=statuses, limit=500)
    now = ws.actions.clock.now()
    far = datetime.max.replace(tzinfo=UTC)
    rows.sort(key=lambda r: (r["status"] not in OPEN, r["due_at"] or far))
    names = await unit_names(ws.actions.engine)
    return ws.render(
        request,
        "cases.html",
        session=session,
        scope=scope,
        may_see_unit=may_see_unit,
        wanted=wanted,
        statuses=[(s, pick(w, lang)) for s, w in STATUS_WORDS.items()],
        cases=[summary(r, org, names, now, lang) for r in rows],
    )
