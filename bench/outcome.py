"""What happened to each petition a run sent, read after the fact from where the stack left it:
intake's database (which tag became which petition), the JetStream stream (when its
`petitions.assigned.v1` was stored) and the embedded mailbox (when each email was written).

Nothing here runs while the load does, so the bench does not compete with the stack for CPU;
the drain wait only counts stream messages and mailbox files.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.streams import PETITIONS_STREAM

ASSIGNED_SUBJECT = "petitions.assigned.v1"
MEMBER_TEMPLATES = ("case_assigned", "case_assigned_batch")
RESIDENT_TEMPLATES = ("petition_received",)
REFERENCE = re.compile(r"\b[A-Z]{2}-[A-Z0-9]{4}-[A-Z0-9]{4}\b")
TAG = re.compile(r"#([a-z0-9]+-[0-9]+)$")


@dataclass(frozen=True)
class Stored:
    petition_id: str
    reference: str
    tag: str | None


@dataclass
class Timeline:
    """Per petition id: when it was sent, assigned, and its member's and resident's emails
    written (wall-clock seconds)."""

    sent: dict[str, float] = field(default_factory=dict)
    assigned: dict[str, float] = field(default_factory=dict)
    member: dict[str, float] = field(default_factory=dict)
    resident: dict[str, float] = field(default_factory=dict)

    def complete(self) -> dict[str, float]:
        """Petitions assigned with both emails written → when the last of the three happened."""
        return {
            pid: max(self.assigned[pid], self.member[pid], self.resident[pid])
            for pid in self.sent
            if pid in self.assigned and pid in self.member and pid in self.resident
        }


def _sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1]


async def stored_petitions(database_url: str) -> list[Stored]:
    """Every petition in intake's database, with the bench tag from its title."""
    query = "SELECT id, reference, title FROM petitions"
    if database_url.startswith("sqlite"):

        def read() -> list[tuple[Any, ...]]:
            with contextlib.closing(sqlite3.connect(_sqlite_path(database_url))) as db:
                return db.execute(query).fetchall()

        rows = await asyncio.to_thread(read)
    else:
        conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            rows = [tuple(r) for r in await conn.fetch(query)]
        finally:
            await conn.close()
    out = []
    for pid, reference, title in rows:
        match = TAG.search(title)
        out.append(Stored(str(pid), str(reference), match.group(1) if match else None))
    return out


async def stored_count(database_url: str) -> int:
    query = "SELECT count(*) FROM petitions"
    if database_url.startswith("sqlite"):

        def read() -> int:
            with contextlib.closing(sqlite3.connect(_sqlite_path(database_url))) as db:
                return int(db.execute(query).fetchone()[0])

        return await asyncio.to_thread(read)
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return int(await conn.fetchval(query))
    finally:
        await conn.close()


async def assigned_count(nc: NATS) -> int:
    info = await nc.jetstream().stream_info(PETITIONS_STREAM, subjects_filter=ASSIGNED_SUBJECT)
    return int((info.state.subjects or {}).get(ASSIGNED_SUBJECT, 0))


def mail_counts(mail_dir: Path) -> tuple[int, int]:
    """(member, resident) messages written so far, by the template in the file name."""
    member = resident = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(mail_dir) as entries:
        for entry in entries:
            name = entry.name
            if not name.endswith(".eml") or name.startswith("."):
                continue
            template = name[9:-4]
            if template in MEMBER_TEMPLATES:
                member += 1
            elif template in RESIDENT_TEMPLATES:
                resident += 1
    return member, resident


async def assigned_times(nc: NATS) -> dict[str, float]:
    """petition id → when JetStream stored its first `petitions.assigned.v1`."""
    js = nc.jetstream()
    sub = await js.pull_subscribe(
        ASSIGNED_SUBJECT,
        stream=PETITIONS_STREAM,
        config=ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.ALL,
            inactive_threshold=30.0,
        ),
    )
    found: dict[str, float] = {}
    try:
        while True:
            try:
                batch = await sub.fetch(500, timeout=2.0)
            except TimeoutError:
                break
            for msg in batch:
                with contextlib.suppress(ValueError, KeyError):
                    pid = str(json.loads(msg.data)["petition_id"])
                    found.setdefault(pid, msg.metadata.timestamp.timestamp())
            if batch and batch[-1].metadata.num_pending == 0:
                break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return found


def mail_times(mail_dir: Path) -> tuple[dict[str, float], dict[str, float]]:
    """(member, resident): reference → when the first message naming it was written (the
    file's modification time; notify writes a temporary file and renames it)."""
    member: dict[str, float] = {}
    resident: dict[str, float] = {}
    if not mail_dir.exists():
        return member, resident
    for path in mail_dir.glob("*.eml"):
        template = path.name[9:-4]
        target = (
            member
            if template in MEMBER_TEMPLATES
            else resident
            if template in RESIDENT_TEMPLATES
            else None
        )
        if target is None:
            continue
        try:
            raw = path.read_bytes()
            written = path.stat().st_mtime
        except OSError:
            continue
        message = email.message_from_bytes(raw, policy=email.policy.default)
        text = [str(message.get("Subject", ""))]
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                with contextlib.suppress(LookupError, ValueError):
                    text.append(part.get_content())
        for reference in set(REFERENCE.findall("\n".join(text))):
            if reference not in target or written < target[reference]:
                target[reference] = written
    return member, resident


async def timeline(
    *, database_url: str, nc: NATS, mail_dir: Path, sent: dict[str, float]
) -> tuple[Timeline, int]:
    """The timeline of the petitions whose tags are in `sent`, and how many of them intake
    stored."""
    rows = await stored_petitions(database_url)
    assigned = await assigned_times(nc)
    member_by_ref, resident_by_ref = await asyncio.to_thread(mail_times, mail_dir)
    out = Timeline()
    for row in rows:
        if row.tag is None or row.tag not in sent:
            continue
        out.sent[row.petition_id] = sent[row.tag]
        if row.petition_id in assigned:
            out.assigned[row.petition_id] = assigned[row.petition_id]
        if row.reference in member_by_ref:
            out.member[row.petition_id] = member_by_ref[row.reference]
        if row.reference in resident_by_ref:
            out.resident[row.petition_id] = resident_by_ref[row.reference]
    return out, len(out.sent)
