"""The leadership dashboard: resolution figures per unit (each with the units below it, or
alone), what could not be delivered (administrators), meetings and their digests, and the
most recently active petitions; all only as far as the signed-in person may see
(`shared.scope`: a unit's figures for the leaders of it or a unit above it)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notify.access import may_open_digest, visible_filter
from services.notify.config import NotifyConfig
from services.notify.deps import ConfigDep, PageStaff, SettingsDep, UnitCacheDep
from services.notify.models import STAT_COUNTERS, digests, notifications, timeline
from services.notify.stats import all_scope_totals, summarise_counters
from services.notify.timeline import status_label
from services.notify.units import UnitTree
from services.notify.web.pages import render
from shared.auth import Staff
from shared.scope import may_see_unit
from shared.web import AppRuntime
from shared.webkit.pages import Pages

router = APIRouter(include_in_schema=False)


def unit_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    staff: Staff,
    tree: UnitTree | None,
    with_sub_units: bool,
) -> list[dict[str, Any]]:
    """The dashboard's units, named, in tree order, each with its own figures or, with
    `with_sub_units`, added to those of the units below it that this person may see."""
    own = {r["id"]: r["counters"] for r in rows}
    if tree is None:
        return [{**r, "name": r["id"], "depth": 0} for r in rows]
    shown = set(own)
    if with_sub_units:
        # A unit with no figures of its own still adds up those below it.
        shown |= set(tree.units if staff.is_admin else staff.units)
    result = []
    for unit_id in tree.in_tree_order(sorted(shown)):
        counted = tree.subtree(unit_id) if with_sub_units else [unit_id]
        total = dict.fromkeys(STAT_COUNTERS, 0)
        for sub in counted:
            if may_see_unit(staff, sub):
                for name, value in own.get(sub, {}).items():
                    total[name] += value
        if not any(total.values()):
            continue
        result.append(
            {
                "id": unit_id,
                "name": tree.name(unit_id),
                "depth": tree.depth(unit_id),
                **summarise_counters(total),
            }
        )
    return result


async def latest_statuses(
    conn: AsyncConnection, staff: Staff, *, limit: int
) -> list[dict[str, Any]]:
    """The most recently active petitions this person may see, each with its latest status,
    from their timelines."""
    t = timeline
    query = select(t.c.petition_id, t.c.kind, t.c.occurred_at, t.c.payload)
    allowed = visible_filter(staff, t.c.petition_id)
    if allowed is not None:
        query = query.where(allowed)
    ordered = query.order_by(t.c.occurred_at.desc(), t.c.id.desc()).limit(limit * 20)
    latest: dict[str, dict[str, Any]] = {}
    for row in (await conn.execute(ordered)).mappings().all():
        entry = latest.setdefault(
            row["petition_id"],
            {"petition_id": row["petition_id"], "updated_at": row["occurred_at"], "status": None},
        )
        if entry["status"] is None:
            entry["status"] = status_label(row["kind"], json.loads(row["payload"]))
    return list(latest.values())[:limit]


async def recent_petitions(
    engine: AsyncEngine, staff: Staff, *, limit: int = 50
) -> list[dict[str, Any]]:
    """The latest status of the most recently active petitions this person may see, with the
    reference and title they were submitted with."""
    t = timeline
    async with engine.connect() as conn:
        chosen = await latest_statuses(conn, staff, limit=limit)
        ids = [c["petition_id"] for c in chosen]
        submitted = (
            (
                await conn.execute(
                    select(t.c.petition_id, t.c.payload).where(
                        and_(t.c.kind == "submitted", t.c.petition_id.in_(ids))
                    )
                )
            )
            .mappings()
            .all()
        )
    details = {r["petition_id"]: json.loads(r["payload"]) for r in submitted}
    for entry in chosen:
        data = details.get(entry["petition_id"], {})
        entry["reference"] = data.get("reference") or entry["petition_id"][:8].upper()
        entry["title"] = data.get("title") or ""
        entry["status"] = entry["status"] or ("Đang cập nhật", "Updating")
    return chosen


async def recent_digests(
    conn: AsyncConnection, staff: Staff, tree: UnitTree | None
) -> list[dict[str, Any]]:
    d = digests
    listed = select(d.c.id, d.c.unit_id, d.c.meeting_at)
    if not staff.is_admin:
        units = {*staff.units, *([staff.unit_id] if staff.unit_id else [])}
        listed = listed.where(d.c.unit_id.in_([u for u in units if may_open_digest(staff, u)]))
    rows = (await conn.execute(listed.order_by(d.c.meeting_at.desc()).limit(10))).mappings()
    return [
        {**r, "unit_name": tree.name(r["unit_id"]) if tree else r["unit_id"]} for r in rows.all()
    ]


def meeting_names(config: NotifyConfig, staff: Staff, tree: UnitTree | None) -> dict[str, str]:
    return {
        unit_id: m.name or (tree.name(unit_id) if tree else unit_id)
        for unit_id, m in config.meetings.items()
        if may_open_digest(staff, unit_id)
    }


@router.get("/", response_class=HTMLResponse)
async def overview(
    request: Request,
    staff: PageStaff,
    kit: Pages,
    runtime: AppRuntime,
    settings: SettingsDep,
    config: ConfigDep,
    unit_cache: UnitCacheDep,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    view: Annotated[Literal["tree", "self"], Query()] = "tree",
) -> HTMLResponse:
    last = end or runtime.clock.now().astimezone(config.zone).date()
    first = start or last - timedelta(days=29)
    petitions = await recent_petitions(runtime.engine, staff)
    tree = await unit_cache.tree()
    only = None if staff.is_admin else [u for u in staff.units if may_see_unit(staff, u)]
    async with runtime.engine.connect() as conn:
        rows = await all_scope_totals(conn, scope="unit", start=first, end=last, only=only)
        n = notifications
        dead: int | None = None
        in_doubt: int | None = None
        if staff.is_admin:
            counted = await conn.execute(
                select(n.c.status, func.count())
                .where(n.c.status.in_(("dead", "in_doubt")))
                .group_by(n.c.status)
            )
            by_status = {str(s): int(c) for s, c in counted.all()}
            dead, in_doubt = by_status.get("dead", 0), by_status.get("in_doubt", 0)
        listed_digests = await recent_digests(conn, staff, tree)
    return render(
        kit,
        request,
        settings,
        "overview.html",
        staff,
        petitions=petitions,
        units=unit_rows(rows, staff=staff, tree=tree, with_sub_units=view == "tree"),
        view=view if tree is not None else "self",
        tree_known=tree is not None,
        first=first,
        last=last,
        dead=dead,
        in_doubt=in_doubt,
        digests=listed_digests,
        meetings=meeting_names(config, staff, tree),
    )
