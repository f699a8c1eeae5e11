"""Two routing processes on one PostgreSQL database sweep 2,000 cases that fell due together:
each case escalates exactly once, and killing one process with SIGKILL mid-sweep loses nothing
and doubles nothing (its open transaction rolls back; the other process, or its restart, does
the work again)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from services.routing import models
from services.routing.app import MIGRATIONS_DIR
from services.routing.org import DEMO_ORG_FILE, import_org
from shared.db import create_engine
from shared.embedded_nats import free_port
from shared.migrate import upgrade_async
from shared.streams import PETITIONS_STREAM
from tests.routing.test_flow import HAMLET, ROADS_MEMBER
from tests.support import connect_nats, eventually, service_nats_env

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).parents[2]
N = 2000


async def seed_due_cases(url: str, n: int) -> None:
    """`n` accepted cases at rung 0 whose resolve deadline passed a minute ago."""
    await upgrade_async(MIGRATIONS_DIR, url)
    engine = create_engine(url)
    try:
        await import_org(engine, DEMO_ORG_FILE, env="test")
        now = datetime.now(UTC)
        past = now - timedelta(minutes=1)
        cases, deadlines = [], []
        for i in range(n):
            case_id = str(uuid.uuid4())
            cases.append(
                {
                    "id": case_id,
                    "petition_id": str(uuid.uuid4()),
                    "correlation_id": str(uuid.uuid4()),
                    "reference": f"PA-TEST-{i:05d}",
                    "unit_id": HAMLET,
                    "category_id": "roads_lighting",
                    "title": "Đèn đường hỏng",
                    "description": "…",
                    "language": "vi",
                    "status": "accepted",
                    "rung": 0,
                    "holder_member_id": ROADS_MEMBER,
                    "holder_unit_id": HAMLET,
                    "due_at": past,
                    "opened_at": now - timedelta(days=7),
                    "updated_at": now - timedelta(days=7),
                    "version": 2,
                }
            )
            deadlines.append({"case_id": case_id, "rung": 0, "kind": "resolve", "due_at": past})
        async with engine.begin() as conn:
            await conn.execute(insert(models.cases), cases)
            await conn.execute(insert(models.deadlines), deadlines)
    finally:
        await engine.dispose()


class Replica:
    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name, self.env, self.log = name, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.routing"],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str, nats_url: str) -> Iterator[list[Replica]]:
    out = []
    for name in ("a", "b"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PETITIONS_")}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "PETITIONS_ENV": "test",
                "PETITIONS_ROUTING_DATABASE_URL": postgres_url,
                **service_nats_env(nats_url, "routing"),
                "PETITIONS_ROUTING_PORT": str(free_port()),
                "PETITIONS_VAR_DIR": str(tmp_path / name),
                "PETITIONS_ROUTING_SEED_DEMO": "false",
                "PETITIONS_ROUTING_SWEEP_INTERVAL_S": "0.2",
                # Small batches: many transactions, so the kill lands inside one.
                "PETITIONS_ROUTING_SWEEP_BATCH": "40",
                "PETITIONS_LOG_FORMAT": "json",
            }
        )
        out.append(Replica(name, env, tmp_path / f"routing-{name}.log"))
    yield out
    for r in out:
        r.stop()


async def count_escalated(url: str) -> tuple[int, int, int]:
    """(escalation history lines, cases at rung 1, unpublished outbox rows)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            h, k, o = models.case_history, models.cases, models.messaging.outbox
            lines = await conn.scalar(select(func.count()).where(h.c.kind == "escalated"))
            moved = await conn.scalar(select(func.count()).where(k.c.rung == 1))
            backlog = await conn.scalar(select(func.count()).where(o.c.published_at.is_(None)))
        return int(lines or 0), int(moved or 0), int(backlog or 0)
    finally:
        await engine.dispose()


async def test_two_replicas_and_a_kill_escalate_each_case_exactly_once(
    replicas: list[Replica], postgres_url: str, nats_url: str
) -> None:
    await seed_due_cases(postgres_url, N)
    a, b = replicas
    a.start()
    b.start()

    async def some_done() -> bool:
        lines, _, _ = await count_escalated(postgres_url)
        return lines >= 200

    await eventually(some_done, timeout=90, what="escalations under way")
    a.kill()
    a.start()  # a restart on the same database carries on

    async def all_done() -> tuple[int, int, int] | None:
        state = await count_escalated(postgres_url)
        return state if state[1] == N and state[2] == 0 else None

    lines, moved, _ = await eventually(all_done, timeout=120, what="every case escalated")
    assert (lines, moved) == (N, N)

    engine = create_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            h = models.case_history
            per_case = (
                await conn.execute(
                    select(h.c.case_id, func.count().label("n"))
                    .where(h.c.kind == "escalated")
                    .group_by(h.c.case_id)
                    .having(func.count() > 1)
                )
            ).all()
            d = models.deadlines
            still_due = await conn.scalar(
                select(func.count()).where(d.c.done_at.is_(None), d.c.rung == 0)
            )
    finally:
        await engine.dispose()
    assert per_case == []
    assert still_due == 0

    nc = await connect_nats(nats_url)
    try:
        info = await nc.jetstream().stream_info(
            PETITIONS_STREAM, subjects_filter="petitions.escalated.v1"
        )
    finally:
        await nc.close()
    assert info.state.subjects == {"petitions.escalated.v1": N}
    logs = [r.log.read_text() for r in replicas]
    assert all('"event": "sweep_pass"' in text for text in logs), "both replicas swept"
