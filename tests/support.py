"""Helpers for tests: wait on conditions, never on time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
from nats.aio.client import Client as NATS

from shared.embedded_nats import free_port
from shared.nats_auth import ADMIN, BusCredentials

T = TypeVar("T")

__all__ = [
    "bus_options",
    "connect_nats",
    "eventually",
    "eventually_sync",
    "free_port",
    "register_bus",
    "service_nats",
    "service_nats_env",
]


async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "",
) -> T:
    """Call `check` until it returns something truthy (returned) or `timeout` passes (fails)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"condition not met within {timeout}s: {what or check!r}; last={last!r}"
            )
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T], *, timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"condition not met within {timeout}s: {what or check!r}; last={last!r}"
            )
        time.sleep(interval)


# The authenticated test buses by URL: the session's nats-server and any a test starts itself
# (`register_bus`), so a test that has only the URL still reaches the bus as a given user.
_BUSES: dict[str, BusCredentials] = {}


def register_bus(url: str, credentials: BusCredentials) -> None:
    _BUSES[url] = credentials


def _bus(url: str) -> BusCredentials:
    first = url.split(",")[0].strip()
    try:
        return _BUSES[first]
    except KeyError:
        raise AssertionError(f"no test bus registered at {first}") from None


def bus_options(url: str, user: str = ADMIN) -> dict[str, Any]:
    """nats-py `connect` arguments for `user` (default: the operator, who may do anything)."""
    return _bus(url).connect_options(user)


async def connect_nats(url: str, user: str = ADMIN, **options: Any) -> NATS:
    """A raw NATS connection to a test bus as `user` (the test's stand-in for other parts)."""
    return await nats.connect(url, **bus_options(url, user), **options)


def service_nats(url: str, service: str) -> dict[str, Any]:
    """Settings arguments that put `service` on the test bus as its own NATS user."""
    return {"nats_url": url, "nats_nkey_seed": _bus(url).seed_file(service)}


def service_nats_env(url: str, service: str) -> dict[str, str]:
    """The same, as environment variables for a service started as a process."""
    return {
        "PETITIONS_NATS_URL": url,
        "PETITIONS_NATS_NKEY_SEED": str(_bus(url).seed_file(service)),
    }
