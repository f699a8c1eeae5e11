"""End-to-end: the three services as separate processes, as in production, with a real
nats-server and real databases, driven over HTTP."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.stack import UNTHROTTLED_ENV, Stack, file_sink
from shared.embedded_nats import free_port
from tests.conftest import create_postgres_database, drop_postgres_database

pytestmark = pytest.mark.e2e


def make_stack(var_dir: Path, env: dict[str, str] | None = None) -> Stack:
    return Stack(
        var_dir=var_dir,
        ports={"intake": free_port(), "routing": free_port(), "notify": free_port()},
        nats_port=free_port(),
        env={
            "PETITIONS_LOG_LEVEL": "INFO",
            "PETITIONS_LOG_FORMAT": "json",
            # Members' assignment emails go out at once instead of after the batching window.
            "PETITIONS_NOTIFY_BATCH_WINDOW_MINUTES": "0",
            **UNTHROTTLED_ENV,
            **(env or {}),
        },
        output=file_sink(var_dir / "stack.log"),
        stop_grace=15,
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend_env(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, str]]:
    """Database URLs for the stack: SQLite files (the stack's default) or three PostgreSQL databases."""
    if request.param == "sqlite":
        yield {}
        return
    urls = {svc: await create_postgres_database() for svc in ("intake", "routing", "notify")}
    yield {f"PETITIONS_{svc.upper()}_DATABASE_URL": url for svc, url in urls.items()}
    for url in urls.values():
        await drop_postgres_database(url)


@pytest.fixture
def stack(tmp_path: Path, backend_env: dict[str, str]) -> Iterator[Stack]:
    s = make_stack(tmp_path / "var", backend_env)
    s.start()
    try:
        s.wait_ready(timeout=90)
        yield s
    finally:
        s.stop()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def sqlite_stack(tmp_path: Path) -> Iterator[Stack]:
    """The stack on SQLite only, for the browser tests."""
    s = make_stack(tmp_path / "var")
    s.start()
    try:
        s.wait_ready(timeout=90)
        yield s
    finally:
        s.stop()


@pytest.fixture
def page() -> Iterator[Any]:
    """A phone-sized page in the machine's Chromium, JavaScript off (the pages must not need it)."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs it")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        # A Vietnamese phone: its browser asks for Vietnamese (the pages read Accept-Language).
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, java_script_enabled=False, locale="vi-VN"
        )
        yield context.new_page()
        context.close()
        browser.close()
