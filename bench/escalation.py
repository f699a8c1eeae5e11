"""The escalation sweep at scale: 10,000 cases fall due together among 1,000,000 open ones.

For PostgreSQL (a database created and dropped here, on --pg-url) and SQLite (a temporary file),
each with the routing schema from its migrations and an organisation of 1,000 hamlets in 10
wards, this loads N open cases at rung 0 with their pending deadline rows (resolve, two
reminders, heads-up), of which D have a resolve deadline that passed a minute ago, then measures

- **sweep+publish**: from the start of one sweep pass until every due case is escalated (case,
  history, deadlines and outbox rows committed) and every resulting event is confirmed by
  JetStream (outbox backlog 0, relay with PubAck, on a real nats-server);
- the same D due cases among only D open ones, and the ratio of the two;
- **idle**: a pass with nothing due (median of 50).

    .venv/bin/python bench/escalation.py                  # 1,000,000 open, 10,000 due
    .venv/bin/python bench/escalation.py --open 200000 --no-postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # type: ignore[import-untyped]  # noqa: E402
import nats  # noqa: E402
from faststream.nats import NatsBroker  # noqa: E402
from nats.js.errors import NotFoundError  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from services.routing import models  # noqa: E402
from services.routing.app import MIGRATIONS_DIR  # noqa: E402
from services.routing.ladder import default_ladder  # noqa: E402
from services.routing.scheduled import Sweep, tune_sqlite  # noqa: E402
from shared.clock import FixedClock  # noqa: E402
from shared.db import create_engine  # noqa: E402
from shared.embedded_nats import EmbeddedNats, free_port  # noqa: E402
from shared.messaging import OutboxRelay  # noqa: E402
from shared.migrate import upgrade  # noqa: E402
from shared.streams import PETITIONS_STREAM, ensure_stream  # noqa: E402

DEFAULT_PG_URL = os.environ.get(
    "PETITIONS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
WARDS, HAMLETS_PER_WARD, MEMBERS_PER_HAMLET = 10, 100, 2
CASE_COLUMNS = (
    "id", "petition_id", "correlation_id", "reference", "unit_id", "category_id", "title",
    "description", "language", "status", "rung", "holder_member_id", "holder_unit_id",
    "due_at", "opened_at", "updated_at", "version",
)  # fmt: skip
DEADLINE_COLUMNS = ("case_id", "rung", "kind", "due_at", "fraction", "later")
# Indexes dropped during the bulk load and built again after it, as a restore would.
BULK_INDEXES = {
    "ix_deadlines_due": "CREATE INDEX ix_deadlines_due ON deadlines (due_at) WHERE done_at IS NULL",
    "ix_deadlines_case_pending": "CREATE INDEX ix_deadlines_case_pending ON deadlines (case_id) "
    "WHERE done_at IS NULL",
    "ix_cases_holder_status": "CREATE INDEX ix_cases_holder_status ON cases (holder_member_id, status)",
    "ix_cases_unit": "CREATE INDEX ix_cases_unit ON cases (unit_id)",
    "ix_cases_open_due": "CREATE INDEX ix_cases_open_due ON cases (due_at) WHERE closed_at IS NULL",
}


@dataclass
class Result:
    backend: str
    open: int
    due: int
    load_s: float = 0.0
    sweep_s: float = 0.0
    published_s: float = 0.0
    escalated: int = 0
    on_stream: int = 0
    idle_ms: float = 0.0
    idle_p95_ms: float = 0.0
    backlog: int = 0

    @property
    def ms_per_case(self) -> float:
        return self.published_s * 1000 / self.due if self.due else 0.0


def hamlets() -> list[tuple[str, str]]:
    return [
        (f"h{w:02d}{h:03d}", f"w{w:02d}") for w in range(WARDS) for h in range(HAMLETS_PER_WARD)
    ]


async def seed_org(url: str) -> None:
    engine = create_engine(url)
    try:
        units = [{"id": "p", "parent_id": None, "name": "Tỉnh", "kind": "province"}]
        units += [
            {"id": f"w{w:02d}", "parent_id": "p", "name": f"Phường {w}", "kind": "ward"}
            for w in range(WARDS)
        ]
        units += [
            {"id": h, "parent_id": w, "name": f"Khóm {h}", "kind": "neighbourhood"}
            for h, w in hamlets()
        ]
        people: list[dict[str, Any]] = []

        def person(mid: str, unit: str, role: str) -> dict[str, Any]:
            return {
                "id": mid,
                "username": mid,
                "name": mid,
                "email": None,
                "unit_id": unit,
                "role": role,
                "categories": ["*"],
                "capacity": 1_000_000,
                "password_hash": "x",
                "active": True,
            }

        for w in range(WARDS):
            people.append(person(f"lw{w:02d}", f"w{w:02d}", "leader"))
        for h, _ in hamlets():
            people.append(person(f"l{h}", h, "leader"))
            people += [person(f"m{h}-{i}", h, "member") for i in range(MEMBERS_PER_HAMLET)]
        async with engine.begin() as conn:
            await conn.execute(insert(models.units), units)
            await conn.execute(
                insert(models.categories),
                [
                    {
                        "id": "roads_lighting",
                        "name_vi": "Đường",
                        "name_en": "Roads",
                        "deadline_hours": [72],
                    }
                ],
            )
            await conn.execute(insert(models.members), people)
    finally:
        await engine.dispose()


def generate(
    n_open: int, n_due: int, now: datetime
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Case rows and pending deadline rows; the first `n_due` cases are due a minute ago."""
    rng = random.Random(7)
    units = hamlets()
    cases: list[tuple[Any, ...]] = []
    deadlines: list[tuple[Any, ...]] = []
    opened = now - timedelta(days=3)
    # Due cases spread over every hamlet, as a real backlog would be.
    due_step = max(1, n_open // n_due)
    due_index = set(range(0, due_step * n_due, due_step))
    # Deadlines fall on whole hours: a few hundred distinct values, built once. A case's row is
    # its next deadline (the first reminder); the others ride on it, as routing plans them.
    later = [now + timedelta(hours=h) for h in range(701)]
    chains: list[tuple[datetime, list[list[Any]]]] = [
        (
            due - timedelta(hours=30),
            [
                ["reminder", _iso(due - timedelta(hours=10)), 0.8],
                ["heads_up", _iso(due - timedelta(hours=4)), None],
                ["resolve", _iso(due), None],
            ],
        )
        for due in later
    ]
    texts = [json.dumps(rest) for _, rest in chains]
    passed = now - timedelta(minutes=1)
    now_iso = _iso(now)
    bits = rng.getrandbits
    for i in range(n_open):
        unit, _ = units[i % len(units)]
        case_id, petition_id, correlation_id = _uuid(bits), _uuid(bits), _uuid(bits)
        is_due = i in due_index
        hour = rng.randint(2, 700)
        due_at = passed if is_due else later[hour]
        cases.append(
            (
                case_id, petition_id, correlation_id, f"PA-{i:07d}", unit,
                "roads_lighting", "Đèn đường hỏng", "Bench case", "vi", "accepted", 0,
                f"m{unit}-{i % MEMBERS_PER_HAMLET}", unit, due_at, opened, opened, 2,
            )
        )  # fmt: skip
        if is_due:
            # Reminders already fired for the due ones; the resolve deadline is what is left.
            deadlines.append((case_id, 0, "resolve", due_at, None, None))
        else:
            first, rest = chains[hour]
            pending = [item for item in rest if item[1] > now_iso]
            if first > now:
                deadlines.append((case_id, 0, "reminder", first, 0.5, texts[hour]))
            else:
                kind, at, fraction = pending[0]
                after = json.dumps(pending[1:]) if pending[1:] else None
                deadlines.append((case_id, 0, kind, datetime.fromisoformat(at), fraction, after))
    return cases, deadlines


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _uuid(bits: Any) -> str:
    """A random version-4 UUID as text, from the seeded generator (uuid.UUID is slow at 3 M)."""
    h = f"{bits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


async def load_postgres(
    url: str, cases: list[tuple[Any, ...]], deadlines: list[tuple[Any, ...]]
) -> None:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        for name in BULK_INDEXES:
            await conn.execute(f"DROP INDEX {name}")
        await conn.copy_records_to_table("cases", records=cases, columns=list(CASE_COLUMNS))
        await conn.copy_records_to_table(
            "deadlines", records=deadlines, columns=list(DEADLINE_COLUMNS)
        )
        for ddl in BULK_INDEXES.values():
            await conn.execute(ddl)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def _sqlite_rows(rows: list[tuple[Any, ...]], start: int, stop: int) -> list[tuple[Any, ...]]:
    """`rows[start:stop]` with their datetimes as the text UtcDateTime stores on SQLite; the
    few hundred distinct deadline values are formatted once."""
    text: dict[datetime, str] = {}

    def fmt(value: datetime) -> str:
        found = text.get(value)
        if found is None:
            found = text[value] = (
                value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
            )
        return found

    sample = rows[start] if start < len(rows) else ()
    times = [i for i, v in enumerate(sample) if isinstance(v, datetime)]
    out = []
    for row in rows[start:stop]:
        values = list(row)
        for i in times:
            values[i] = fmt(values[i])
        out.append(tuple(values))
    return out


def load_sqlite(path: str, cases: list[tuple[Any, ...]], deadlines: list[tuple[Any, ...]]) -> None:
    """Bulk load for the bench only: no journal, no syncs, a large cache for the index builds;
    the file is switched back to WAL (as routing runs it) before the measurement."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("PRAGMA cache_size=-1048576")
        db.execute("PRAGMA temp_store=MEMORY")
        db.execute("BEGIN")
        for name in BULK_INDEXES:
            db.execute(f"DROP INDEX {name}")
        chunk = 100_000
        for table, columns, rows in (
            ("cases", CASE_COLUMNS, cases),
            ("deadlines", DEADLINE_COLUMNS, deadlines),
        ):
            sql = (
                f"INSERT INTO {table} ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})"
            )
            for start in range(0, len(rows), chunk):
                db.executemany(sql, _sqlite_rows(rows, start, start + chunk))
        for ddl in BULK_INDEXES.values():
            db.execute(ddl)
        db.execute("COMMIT")
        db.execute("ANALYZE")
        db.execute("PRAGMA locking_mode=NORMAL")
        db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()


async def build(backend: str, url: str, n_open: int, n_due: int) -> tuple[float, datetime]:
    """Migrate, seed and bulk-load `url`; the seconds it took and the time the load calls now."""
    t0 = time.perf_counter()
    await asyncio.to_thread(upgrade, MIGRATIONS_DIR, url)
    await seed_org(url)
    now = datetime.now(UTC)
    cases, deadlines = generate(n_open, n_due, now)
    if backend == "postgres":
        await load_postgres(url, cases, deadlines)
    else:
        await asyncio.to_thread(load_sqlite, url.split(":///", 1)[1], cases, deadlines)
    del cases, deadlines
    return time.perf_counter() - t0, now


async def measure(
    backend: str, url: str, nats_url: str, n_open: int, n_due: int, *, now: datetime, cleanup: Any
) -> Result:
    """One sweep pass on a freshly built copy, at the time it was built for (a fixed clock)."""
    result = Result(backend, n_open, n_due)
    nc = await nats.connect(nats_url)
    with contextlib.suppress(NotFoundError):
        await nc.jetstream().delete_stream(PETITIONS_STREAM)
    engine = create_engine(url)
    tune_sqlite(engine)  # as routing's create_app does
    broker = NatsBroker(nats_url)
    await broker.start()
    await ensure_stream(broker)
    relay = OutboxRelay(
        engine=engine, outbox=models.messaging.outbox, broker=broker, stream=PETITIONS_STREAM
    )
    sweep = Sweep(
        engine=engine,
        ladder=default_ladder(),
        clock=FixedClock(now + timedelta(seconds=1)),
        after_commit=relay.wake,
    )
    try:
        # Warm the connection pool and the statement caches, as a running service would be.
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
        relay.start()
        started = time.perf_counter()
        totals = await sweep.run_once()
        result.sweep_s = time.perf_counter() - started
        # Wait on the relay's own count (no query competing for SQLite's one connection), then
        # until its last marks are committed (the count moves just before the commit).
        while relay.published_total < totals.events:  # noqa: ASYNC110 - a counter, not an event
            await asyncio.sleep(0.002)
        for _ in range(1000):
            result.backlog = await relay.backlog()
            if not result.backlog:
                break
            await asyncio.sleep(0.002)
        result.published_s = time.perf_counter() - started
        result.escalated = totals.escalated
        info = await nc.jetstream().stream_info(
            PETITIONS_STREAM, subjects_filter="petitions.escalated.v1"
        )
        result.on_stream = (info.state.subjects or {}).get("petitions.escalated.v1", 0)
        idle = []
        for _ in range(50):
            t = time.perf_counter()
            await sweep.run_once()
            idle.append((time.perf_counter() - t) * 1000)
        result.idle_ms = statistics.median(idle)
        result.idle_p95_ms = sorted(idle)[int(len(idle) * 0.95) - 1]
    finally:
        await relay.stop()
        await broker.stop()
        await engine.dispose()
        await nc.close()
        await cleanup()
    print(
        f"[{backend} {n_open:>9,} open] {result.escalated:,} escalated, {result.on_stream:,} on the "
        f"stream; sweep {result.sweep_s:.2f}s, +published {result.published_s:.2f}s "
        f"({result.ms_per_case:.2f} ms/case); idle {result.idle_ms:.2f} ms",
        flush=True,
    )
    return result


async def postgres_database(admin_url: str) -> tuple[str, Any]:
    name = f"petitions_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()

    async def drop() -> None:
        c = await asyncpg.connect(admin_url)
        try:
            await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await c.close()

    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}", drop


async def template_copy(backend: str, template: str, workdir: Path, run: int) -> tuple[str, Any]:
    """A fresh copy of a built database for one measurement, and how to remove it."""
    if backend == "postgres":
        admin, name = template.rsplit("/", 1)
        admin = admin.replace("postgresql+asyncpg://", "postgresql://", 1) + "/postgres"
        copy = f"{name}_r{run}"
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"')
        finally:
            await conn.close()

        async def drop() -> None:
            c = await asyncpg.connect(admin)
            try:
                await c.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
            finally:
                await c.close()

        return template.rsplit("/", 1)[0] + f"/{copy}", drop
    source = Path(template.split(":///", 1)[1])
    path = workdir / f"run-{run}-{source.name}"
    await asyncio.to_thread(shutil.copyfile, source, path)

    async def remove() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)  # noqa: ASYNC240

    return f"sqlite+aiosqlite:///{path}", remove


def spread(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    return f" (runs: {', '.join(f'{v:.2f}' for v in values)})"


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--open", type=int, default=1_000_000, help="open cases (default 1,000,000)"
    )
    parser.add_argument(
        "--due", type=int, default=10_000, help="cases due together (default 10,000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="measurements per size, each on a fresh copy"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="petitions-bench-escalation-"))
    server = EmbeddedNats(
        store_dir=workdir / "nats", port=free_port(), log_file=workdir / "nats.log"
    )
    server.start()
    results: list[Result] = []
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    try:
        backends = []
        if not args.no_postgres:
            try:
                c = await asyncpg.connect(args.pg_url, timeout=3)
                await c.close()
                backends.append("postgres")
            except Exception as exc:
                print(f"PostgreSQL skipped: {args.pg_url} not reachable ({exc})")
        if not args.no_sqlite:
            backends.append("sqlite")
        for backend in backends:
            for n_open in (args.due, args.open):
                if backend == "postgres":
                    url, cleanup = await postgres_database(args.pg_url)
                else:
                    path = workdir / f"routing-{n_open}.db"
                    url = f"sqlite+aiosqlite:///{path}"

                    async def cleanup(path: Path = path) -> None:
                        for suffix in ("", "-wal", "-shm"):
                            Path(f"{path}{suffix}").unlink(missing_ok=True)  # noqa: ASYNC240

                try:
                    load_s, now = await build(backend, url, n_open, args.due)
                    print(f"[{backend} {n_open:>9,} open] built in {load_s:.1f}s", flush=True)
                    for run in range(args.repeat):
                        copy, remove = await template_copy(backend, url, workdir, run)
                        result = await measure(
                            backend, copy, server.url, n_open, args.due, now=now, cleanup=remove
                        )
                        result.load_s = load_s
                        results.append(result)
                finally:
                    await cleanup()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{'backend':<9} {'open':>10} {'due':>7} {'sweep s':>8} {'+publish s':>11} "
        f"{'ms/case':>8} {'idle ms':>8} {'idle p95':>9}"
    )
    for r in results:
        print(
            f"{r.backend:<9} {r.open:>10,} {r.due:>7,} {r.sweep_s:>8.2f} {r.published_s:>11.2f} "
            f"{r.ms_per_case:>8.2f} {r.idle_ms:>8.2f} {r.idle_p95_ms:>9.2f}"
        )
    ok = True

    def line(target: str, passed: bool, figure: str) -> None:
        print(f"  {'PASS' if passed else 'MISS'}  {target}: {figure}")

    for backend in sorted({r.backend for r in results}):
        small = [r for r in results if r.backend == backend and r.open == args.due]
        big = [r for r in results if r.backend == backend and r.open == args.open]
        s_best = min(r.published_s for r in small)
        b_best = min(r.published_s for r in big)
        ratio = b_best / s_best if s_best else float("inf")
        idle = min(r.idle_ms for r in big)
        complete = all(r.escalated == r.due == r.on_stream and not r.backlog for r in small + big)
        print(f"{backend} (best of {args.repeat}):")
        big_times = [r.published_s for r in big]
        small_times = [r.published_s for r in small]
        line(
            f"{args.due:,} due among {args.open:,} open ≤ 15 s",
            b_best <= 15,
            f"{b_best:.2f} s{spread(big_times)}",
        )
        line(
            f"≤ 1.5× the same among {args.due:,} open",
            ratio <= 1.5,
            f"{ratio:.2f}× ({b_best:.2f} s / {s_best:.2f} s{spread(small_times)})",
        )
        line("idle pass < 5 ms", idle < 5, f"{idle:.2f} ms (median of 50)")
        line("every due case escalated once, its events on the stream", complete, str(complete))
        ok &= b_best <= 15 and ratio <= 1.5 and idle < 5 and complete
    print("reference: django-helpdesk escalate_tickets spends 12-16 ms per escalated ticket")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
