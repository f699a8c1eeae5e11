"""What a scenario left behind, counted for every petition submitted.

- **case**: exactly one in routing's database (`lost` when none and nothing parked says why,
  `doubled` when more);
- **events**: every event on the stream for the petition was handled by each service that
  handles its subject (an inbox row) or parked (a dead-letter row); an event never handled is
  `lost`, one the stream holds twice is `doubled`;
- **assigned**: the `assigned` events on the stream are exactly routing's assignments (its case
  history), one each;
- **notifications**: each idempotency key reached the SMTP sink or the webhook receiver at most
  once (`doubled` otherwise), and none is due but unsent (`stuck`);
- **dead letters**: each is listed by its service's admin API and its retry answers (handled,
  or refused with the reason), never 404 or 500;
- **in doubt**: notifications whose send began and was never recorded (a worker killed
  mid-send): set aside as `in_doubt` for a person, never resent on their own (or about to be,
  once their lease runs out). Counted apart from stuck: they wait for a person by design;
- **stuck**: besides due notifications, outbox rows never published and messages a consumer
  still holds once the stack has had time to settle.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData, and_, func, or_, select

from faults.load import Staff
from faults.world import World
from services.stack import SERVICES
from shared.events import (
    CATALOGUE,
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseDeclined,
    CaseEscalated,
    CaseOverdueAtTop,
    CaseQuestionAsked,
    CaseRejected,
    CaseReopened,
    CaseResolved,
    CaseResumed,
    EscalationRequested,
    FeedbackGiven,
    PetitionSubmitted,
    PetitionWithdrawn,
    ResidentAnswered,
)
from shared.messaging import messaging_tables
from shared.streams import PETITIONS_STREAM

# Which service handles which subject (services/*/app.py and handlers.py register them).
HANDLED_BY: dict[str, tuple[str, ...]] = {
    "routing": tuple(
        e.subject
        for e in (
            PetitionSubmitted,
            FeedbackGiven,
            PetitionWithdrawn,
            ResidentAnswered,
            EscalationRequested,
        )
    ),
    "intake": tuple(
        e.subject
        for e in (
            CaseAssigned,
            CaseAccepted,
            CaseResolved,
            CaseReopened,
            CaseEscalated,
            CaseClosed,
            CaseQuestionAsked,
            CaseResumed,
            CaseRejected,
            CaseDeclined,
            CaseOverdueAtTop,
        )
    ),
    "notify": tuple(CATALOGUE),
}
UNSENT = ("queued", "failed")
_messaging = messaging_tables(MetaData())


@dataclass
class StreamEvent:
    subject: str
    event_id: str
    petition_id: str


@dataclass
class Findings:
    petitions: int = 0
    lost: int = 0
    doubled: int = 0
    stuck: int = 0
    in_doubt: int = 0
    dead_lettered: int = 0
    recover_s: float | None = None
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


async def read_stream(world: World) -> list[StreamEvent]:
    """Every message on the petitions stream, in order (unparseable ones as petition `?`)."""
    nc = await world.nats()
    try:
        js = nc.jetstream(timeout=10)
        info = await js.stream_info(PETITIONS_STREAM)
        total = info.state.messages
        events: list[StreamEvent] = []
        if not total:
            return events
        sub = await js.subscribe("petitions.>", stream=PETITIONS_STREAM, ordered_consumer=True)
        try:
            while len(events) < total:
                try:
                    msg = await sub.next_msg(timeout=5.0)
                except TimeoutError:
                    break
                try:
                    body = json.loads(msg.data)
                    events.append(
                        StreamEvent(msg.subject, str(body["event_id"]), str(body["petition_id"]))
                    )
                except (ValueError, KeyError, TypeError):
                    events.append(StreamEvent(msg.subject, "?", "?"))
        finally:
            await sub.unsubscribe()
        return events
    finally:
        await nc.close()


async def consumer_backlog(world: World) -> dict[str, int]:
    """Messages each service's durable consumer has not yet acknowledged or terminated."""
    nc = await world.nats()
    try:
        js = nc.jetstream(timeout=10)
        out = {}
        for svc in SERVICES:
            try:
                info = await js.consumer_info(PETITIONS_STREAM, f"{svc}-events")
            except Exception:
                out[svc] = -1
                continue
            out[svc] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        return out
    finally:
        await nc.close()


async def unpublished(world: World) -> dict[str, int]:
    out = {}
    for svc in SERVICES:
        ob = _messaging.outbox
        async with world.engine(svc).connect() as conn:
            n = await conn.scalar(
                select(func.count()).select_from(ob).where(ob.c.published_at.is_(None))
            )
        out[svc] = int(n or 0)
    return out


async def unpublished_ids(world: World) -> set[str]:
    """Event ids and petition ids of every outbox row not yet published (stuck, not lost)."""
    ob = _messaging.outbox
    out: set[str] = set()
    for svc in SERVICES:
        async with world.engine(svc).connect() as conn:
            rows = await conn.execute(
                select(ob.c.event_id, ob.c.payload).where(ob.c.published_at.is_(None))
            )
            for event_id, payload in rows:
                out.add(str(event_id))
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    out.add(str(json.loads(payload)["petition_id"]))
    return out


async def due_unsent(world: World) -> list[dict[str, Any]]:
    """Notifications that should have gone and have not (nothing waiting for a planned retry)."""
    from services.notify.models import notifications as n

    now = datetime.fromtimestamp(world.clock.now(), UTC)
    async with world.engine("notify").connect() as conn:
        rows = await conn.execute(
            select(n.c.id, n.c.petition_id, n.c.status, n.c.next_attempt_at).where(
                or_(
                    and_(n.c.status.in_(UNSENT), n.c.next_attempt_at <= now),
                    # Claimed by a worker (an attempt counted, still queued): in flight, or
                    # orphaned by a killed worker until its lease runs out. Either way not done.
                    and_(n.c.status == "queued", n.c.attempts > 0),
                ),
                # A send began and was never recorded: in doubt (counted apart), not stuck.
                n.c.send_started_at.is_(None),
            )
        )
        return [dict(r) for r in rows.mappings()]


async def in_doubt(world: World) -> int:
    """Notifications that may have been sent: set aside as `in_doubt`, or with a send begun and
    never recorded that the next claim will set aside."""
    from services.notify.models import notifications as n

    async with world.engine("notify").connect() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(n)
            .where(
                or_(
                    n.c.status == "in_doubt",
                    and_(n.c.status.in_(UNSENT), n.c.send_started_at.is_not(None)),
                )
            )
        )
    return int(count or 0)


async def stored_petitions(world: World) -> set[str]:
    """Every petition intake stored, including those whose 201 the resident never saw (a
    timed-out request that committed): the audit counts them too."""
    from services.intake.models import petitions

    async with world.engine("intake").connect() as conn:
        return {str(pid) for pid in await conn.scalars(select(petitions.c.id))}


async def cases_by_petition(world: World) -> Counter[str]:
    from services.routing.models import cases

    async with world.engine("routing").connect() as conn:
        rows = await conn.execute(
            select(cases.c.petition_id, func.count()).group_by(cases.c.petition_id)
        )
        return Counter({str(pid): int(n) for pid, n in rows})


async def quiescent(world: World, petition_ids: set[str]) -> tuple[bool, str]:
    """Settled: every petition has its case, nothing waits in an outbox or a consumer, and no
    notification is due unsent."""
    try:
        cases = await cases_by_petition(world)
        missing = len(petition_ids - set(cases))
        backlog = await consumer_backlog(world)
        outbox = await unpublished(world)
        due = await due_unsent(world)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    ok = not missing and not any(backlog.values()) and not any(outbox.values()) and not due
    return ok, f"missing cases {missing}, backlog {backlog}, outbox {outbox}, due {len(due)}"


async def settle(
    world: World, petition_ids: set[str], *, since: float, timeout: float
) -> tuple[float | None, str]:
    """Poll until quiescent; the seconds from `since` (the fault's end) to that moment, or None."""
    deadline = time.monotonic() + timeout
    detail = ""
    while time.monotonic() < deadline:
        ok, detail = await quiescent(world, petition_ids)
        if ok:
            return time.monotonic() - since, detail
        await _sleep(1.0)
    return None, detail


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def dead_letters(world: World, staff: Staff, findings: Findings) -> list[dict[str, Any]]:
    """Every parked message, listed by each service's admin API; each retried once through it."""
    assert world.stack is not None
    parked: list[dict[str, Any]] = []
    for svc in SERVICES:
        response = await staff.request("admin", "GET", svc, "/api/v1/admin/dead-letters")
        if response.status_code != 200:
            findings.stuck += 1
            findings.note(f"{svc} dead-letter list answered {response.status_code}")
            continue
        for row in response.json():
            if row.get("retried_at"):
                continue
            row["service"] = svc
            parked.append(row)
    for row in parked:
        response = await staff.request(
            "admin", "POST", row["service"], f"/api/v1/admin/dead-letters/{row['id']}/retry"
        )
        row["retry_status"] = response.status_code
        if response.status_code not in (200, 409):
            findings.stuck += 1
            findings.note(f"{row['service']} dead letter {row['id']} retry {response.status_code}")
    return parked


async def inbox_ids(world: World, service: str) -> set[str]:
    ib = _messaging.inbox
    async with world.engine(service).connect() as conn:
        return {str(e) for e in await conn.scalars(select(ib.c.event_id).distinct())}


async def assignments(world: World) -> dict[str, set[str]]:
    from services.routing.models import case_history, cases

    out: dict[str, set[str]] = defaultdict(set)
    async with world.engine("routing").connect() as conn:
        rows = await conn.execute(
            select(cases.c.petition_id, case_history.c.event_id)
            .join(cases, cases.c.id == case_history.c.case_id)
            .where(case_history.c.kind == "assigned")
        )
        for pid, eid in rows:
            out[str(pid)].add(str(eid))
    return out


def _parked_ids(parked: list[dict[str, Any]]) -> set[str]:
    ids = set()
    for row in parked:
        if row.get("event_id"):
            ids.add(str(row["event_id"]))
        with contextlib.suppress(ValueError, KeyError, TypeError):
            ids.add(str(json.loads(row.get("payload") or "")["petition_id"]))
    return ids


async def audit(world: World, staff: Staff, petition_ids: set[str], findings: Findings) -> Findings:
    """Count what the scenario left behind (see the module's docstring)."""
    from services.notify.models import notifications as n

    findings.petitions = len(petition_ids)
    parked = await dead_letters(world, staff, findings)
    findings.dead_lettered += len(parked)
    parked_ids = _parked_ids(parked)
    if any(row.get("retry_status") == 200 for row in parked):
        await settle(world, petition_ids, since=time.monotonic(), timeout=60)

    cases = await cases_by_petition(world)
    # Held in an outbox: counted as stuck below (each unpublished row), not as lost.
    held = await unpublished_ids(world)
    for pid in petition_ids:
        if cases[pid] == 0 and pid not in parked_ids and pid not in held:
            findings.lost += 1
            findings.note("a petition has no case and no dead letter")
        elif cases[pid] > 1:
            findings.doubled += cases[pid] - 1
            findings.note("a petition has two cases")

    events = await read_stream(world)
    seen: Counter[str] = Counter(e.event_id for e in events if e.event_id != "?")
    twice = sum(c - 1 for c in seen.values() if c > 1)
    if twice:
        findings.doubled += twice
        findings.note(f"{twice} events on the stream twice")
    handled = {svc: await inbox_ids(world, svc) for svc in SERVICES}
    unhandled: Counter[str] = Counter()
    for e in events:
        if e.petition_id not in petition_ids:
            continue
        for svc, subjects in HANDLED_BY.items():
            if (
                e.subject in subjects
                and e.event_id not in handled[svc]
                and e.event_id not in parked_ids
            ):
                unhandled[f"{svc}:{e.subject}"] += 1
    if unhandled:
        findings.lost += sum(unhandled.values())
        findings.note(f"events never handled: {dict(unhandled)}")

    assigned_on_stream: dict[str, Counter[str]] = defaultdict(Counter)
    for e in events:
        if e.subject == CaseAssigned.subject:
            assigned_on_stream[e.petition_id][e.event_id] += 1
    history = await assignments(world)
    for pid in petition_ids:
        on_stream = set(assigned_on_stream[pid])
        missing = history[pid] - on_stream - held
        extra = on_stream - history[pid]
        if missing:
            findings.lost += len(missing)
            findings.note("an assignment never reached the stream")
        if extra:
            findings.doubled += len(extra)
            findings.note("an assigned event with no assignment behind it")

    async with world.engine("notify").connect() as conn:
        statuses = (
            Counter(
                str(s)
                for s in await conn.scalars(
                    select(n.c.status).where(n.c.petition_id.in_(petition_ids))
                )
            )
            if petition_ids
            else Counter()
        )
        dead = int(
            await conn.scalar(select(func.count()).select_from(n).where(n.c.status == "dead")) or 0
        )
        retried = int(
            await conn.scalar(select(func.count()).select_from(n).where(n.c.attempts > 1)) or 0
        )
    findings.dead_lettered += dead
    if dead:
        findings.note(
            f"{dead} notifications dead (retryable at /api/v1/notifications/{{id}}/retry)"
        )
    smtp_twice, hook_twice = world.smtp.doubled(), world.webhook.doubled()
    if smtp_twice or hook_twice:
        findings.doubled += smtp_twice + hook_twice
        findings.note(f"sent twice: {smtp_twice} mails, {hook_twice} webhooks")
        findings.note(f"the twice-sent rows (attempts, last error): {await _doubled_rows(world)}")
    due = await due_unsent(world)
    doubtful = await in_doubt(world)
    if doubtful:
        findings.in_doubt += doubtful
        findings.note(
            f"{doubtful} notifications in doubt (may have been sent; listed at "
            "/api/v1/notifications?status=in_doubt, retried by hand)"
        )
    outbox = await unpublished(world)
    backlog = await consumer_backlog(world)
    stuck = len(due) + sum(outbox.values()) + sum(max(v, 0) for v in backlog.values())
    if stuck:
        findings.stuck += stuck
        findings.note(f"stuck: due unsent {len(due)}, outbox {outbox}, consumers {backlog}")
    findings.note(
        f"notifications {dict(statuses)} ({retried} needed more than one attempt); mails {world.smtp.total()}; webhooks {sum(world.webhook.accepted.values())}"
    )
    return findings


async def _doubled_rows(world: World) -> dict[str, int]:
    """Evidence for a doubled mail: its notification's attempts and last error, counted."""
    from services.notify.channels import message_id
    from services.notify.models import notifications as n

    with world.smtp.lock:
        twice = {mid for mid, count in world.smtp.received.items() if count > 1}
    out: Counter[str] = Counter()
    async with world.engine("notify").connect() as conn:
        rows = await conn.execute(
            select(n.c.idempotency_key, n.c.attempts, n.c.last_error).where(n.c.channel == "email")
        )
        for key, attempts, error in rows:
            if message_id(str(key)) in twice:
                out[f"{attempts}: {(error or '-')[:80]}"] += 1
    return dict(out)
