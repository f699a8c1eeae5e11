"""Test session fixtures: a real nats-server on a free port, SQLite files, and PostgreSQL
databases created and dropped per test when a server is reachable."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.embedded_nats import EmbeddedNats, free_port
from shared.nats_auth import BusCredentials
from tests.support import connect_nats, register_bus

POSTGRES_ADMIN_URL = os.environ.get(
    "PETITIONS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# Apps built in this process read these (stacks get `services.stack.UNTHROTTLED_ENV`): tests
# submit many petitions from one address at once, and forms faster than a person types. The
# tests of the limit and the fill time set their own.
os.environ.setdefault("PETITIONS_PUBLIC_RATE_LIMIT", "off")
os.environ.setdefault("PETITIONS_INTAKE_FORM_MIN_FILL_S", "0")

# `.ci/run` sets this: there an unreachable PostgreSQL is a failure, not a skip.
POSTGRES_REQUIRED = os.environ.get("PETITIONS_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def nats_credentials(tmp_path_factory: pytest.TempPathFactory) -> BusCredentials:
    """The test bus's users: each service's own nkey, and `admin` for the tests themselves."""
    return BusCredentials.ensure(tmp_path_factory.mktemp("nats-auth"))


def authenticated_nats(store_dir: Path, credentials: BusCredentials) -> EmbeddedNats:
    """A nats-server on a free port with the services' users and permissions, registered so
    `tests.support.connect_nats(url)` and `service_nats(url, svc)` reach it."""
    server = EmbeddedNats(store_dir=store_dir, port=free_port(), credentials=credentials)
    register_bus(server.url, credentials)
    return server


@pytest.fixture(scope="session")
def nats_server(
    tmp_path_factory: pytest.TempPathFactory, nats_credentials: BusCredentials
) -> Iterator[EmbeddedNats]:
    server = authenticated_nats(tmp_path_factory.mktemp("nats"), nats_credentials)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def nats_url(nats_server: EmbeddedNats) -> str:
    """The session's server with the petitions stream made anew, so each test starts empty
    (the services recreate their durable consumers when they start). It is created here, as
    intake would: routing and notify may not create it and wait for it."""
    await reset_stream(nats_server.url)
    return nats_server.url


async def reset_stream(url: str) -> None:
    from nats.js.errors import NotFoundError

    from shared.events.base import STREAM_SUBJECT_PREFIX
    from shared.streams import PETITIONS_STREAM, petitions_stream

    nc = await connect_nats(url)
    try:
        js = nc.jetstream()
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(PETITIONS_STREAM)
        config = petitions_stream().config
        config.subjects = [f"{STREAM_SUBJECT_PREFIX}.>"]
        await js.add_stream(config=config)
    finally:
        await nc.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


async def _postgres_reachable() -> str | None:
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(POSTGRES_ADMIN_URL), 3)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


_pg_state: dict[str, str | None] = {}


async def _check_postgres() -> None:
    if "error" not in _pg_state:
        _pg_state["error"] = await _postgres_reachable()
    error = _pg_state["error"]
    if error is not None:
        message = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} ({error})"
        if POSTGRES_REQUIRED:
            pytest.fail(message + "; PETITIONS_REQUIRE_POSTGRES=1 makes it mandatory")
        pytest.skip(message)


async def create_postgres_database() -> str:
    """A fresh, empty database; returns its asyncpg URL. Caller drops it with `drop_postgres_database`."""
    import asyncpg

    await _check_postgres()
    name = f"petitions_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


async def drop_postgres_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    url = await create_postgres_database()
    yield url
    await drop_postgres_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each test that takes this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    url = await create_postgres_database()
    yield url
    await drop_postgres_database(url)
