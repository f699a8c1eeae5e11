"""Database helpers: one async engine per service, SQLite tuned for a single writer, PostgreSQL via asyncpg."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, TypeDecorator, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_MS = 15_000


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Build the engine for `url`.

    SQLite: WAL so readers never block the writer, a long busy_timeout, and every transaction
    opened with `BEGIN IMMEDIATE` so a read-then-write cannot lose a race (SQLite has no
    `FOR UPDATE`). PostgreSQL: asyncpg with a bounded pool.
    """
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection per process, handed out in FIFO order: SQLite allows one writer, and
        # waiting in SQLAlchemy's queue is fair where SQLite's busy handler lets a waiter
        # (the outbox relay, say) starve for seconds behind a busy consumer.
        engine = create_async_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
            # Errors name the statement, never its values (a resident's contact, say): they
            # reach logs, dead letters and problem details.
            hide_parameters=True,
        )
        _tune_sqlite(engine)
        return engine
    kwargs: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "pool_pre_ping": True,
        "hide_parameters": True,
    }
    if os.environ.get("PETITIONS_DB_NULLPOOL") == "1":
        kwargs = {"poolclass": NullPool, "hide_parameters": True}
    return create_async_engine(url, **kwargs)


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A unit of work: commits when the block ends normally, rolls back on any exception."""
    async with engine.begin() as conn:
        yield conn


# What the database drivers raise through SQLAlchemy; `is_database_outage` tells an outage
# (refused, dropped, shutting down, locked past the busy timeout, unopenable, full), worth a
# retry later, from a constraint or a bug.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (DBAPIError, PoolTimeout)


# SQLite reports a missing table or a malformed query as an OperationalError too: only these
# mean the file cannot be used right now (held by another writer, unopenable, disk trouble).
_SQLITE_OUTAGE = ("locked", "busy", "unable to open", "disk i/o", "database or disk is full")


# PostgreSQL's SQLSTATEs for "not now": connection exceptions (class 08), insufficient
# resources (53: disk full, out of memory, too many connections) and the server shutting down,
# crashed or still starting (57P01-57P03, which asyncpg raises as CannotConnectNowError and
# SQLAlchemy wraps in a plain DBAPIError).
_POSTGRES_OUTAGE = ("08", "53", "57P01", "57P02", "57P03")


def _sqlstate(orig: BaseException | None) -> str | None:
    """The SQLSTATE of a driver error, from SQLAlchemy's adapted asyncpg error or its cause."""
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def is_database_outage(exc: BaseException) -> bool:
    """The database cannot be used right now: the same work may succeed once it is back. A
    bug that SQLite happens to report as an OperationalError (no such table) is not one."""
    # PoolTimeout: every connection stayed busy (SQLite's one, held past the busy timeout).
    if isinstance(exc, OSError | TimeoutError | InterfaceError | PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if orig is not None and type(orig).__module__.startswith(("sqlite3", "aiosqlite")):
        return isinstance(exc, OperationalError) and any(
            words in str(orig).lower() for words in _SQLITE_OUTAGE
        )
    code = _sqlstate(orig)
    if code is not None and code.startswith(_POSTGRES_OUTAGE):
        return True
    return isinstance(exc, OperationalError) or exc.connection_invalidated


async def ping(engine: AsyncEngine, timeout: float = 2.0) -> bool:
    """True when the database answers a trivial query within `timeout` seconds."""
    from sqlalchemy import text

    try:
        async with asyncio.timeout(timeout), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which stores naive text) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
