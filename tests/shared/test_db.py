"""Which database errors are an outage (503, retried without parking) and which are bugs."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from shared.db import is_database_outage


class _Adapted(Exception):
    """Stands in for SQLAlchemy's adapted asyncpg error: the driver's error is its cause."""


def _wrapped(driver_error: Exception, wrapper: type[DBAPIError] = DBAPIError) -> DBAPIError:
    adapted = _Adapted(str(driver_error))
    adapted.__cause__ = driver_error
    return wrapper("SELECT 1", None, adapted)


@pytest.mark.parametrize(
    "driver_error",
    [
        # What intake answered 500 to while the fault suite stopped and started PostgreSQL.
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator"),
        asyncpg.exceptions.DiskFullError("could not extend file: No space left on device"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.ConnectionFailureError("connection failure"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_postgresql_not_answering_now_is_an_outage(driver_error: Exception) -> None:
    assert is_database_outage(_wrapped(driver_error))


def test_a_constraint_or_a_bug_is_not_an_outage() -> None:
    unique = asyncpg.exceptions.UniqueViolationError("duplicate key value")
    assert not is_database_outage(_wrapped(unique, IntegrityError))
    missing = asyncpg.exceptions.UndefinedTableError('relation "x" does not exist')
    assert not is_database_outage(_wrapped(missing))


def test_sqlite_locked_is_an_outage_and_a_missing_table_is_not() -> None:
    import sqlite3

    locked = OperationalError("INSERT", None, sqlite3.OperationalError("database is locked"))
    assert is_database_outage(locked)
    missing = OperationalError("SELECT", None, sqlite3.OperationalError("no such table: x"))
    assert not is_database_outage(missing)


def test_a_pool_that_never_frees_a_connection_is_an_outage() -> None:
    """SQLite's one connection held past the pool's timeout by a request waiting on a lock:
    the next request is told 503, not 500."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    assert is_database_outage(PoolTimeout("QueuePool limit of size 1 overflow 0 reached"))
