"""`services.stack.Stack`: the three services as processes, killed and restarted like a crash."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.stack import Stack, file_sink
from shared.embedded_nats import free_port

pytestmark = pytest.mark.e2e


def test_stack_starts_survives_a_killed_service_and_stops(tmp_path: Path) -> None:
    log = tmp_path / "stack.log"
    stack = Stack(
        var_dir=tmp_path / "var",
        ports={svc: free_port() for svc in ("intake", "routing", "notify")},
        nats_port=free_port(),
        output=file_sink(log),
    )
    stack.start()
    try:
        stack.wait_ready(timeout=120)
        assert (tmp_path / "var" / "nats").is_dir()
        for svc in ("intake", "routing", "notify"):
            assert (tmp_path / "var" / f"{svc}.db").exists()

        stack.kill("routing")
        assert stack.exited() == {"routing": -9}
        with pytest.raises(httpx.HTTPError):
            httpx.get(stack.url("routing") + "/readyz", timeout=2)

        stack.start_service("routing")
        stack.wait_ready(timeout=120, services=("routing",))
        assert httpx.get(stack.url("routing") + "/readyz", timeout=5).status_code == 200
    finally:
        stack.stop()
    assert stack.exited().keys() == {"intake", "routing", "notify"}
    assert "[routing]" in log.read_text()


async def test_the_embedded_bus_is_authenticated_with_keys_made_once(tmp_path: Path) -> None:
    """`petitions up`'s nats-server: per-service seeds under var/ (0600) on first start, the
    same keys on the next, each service handed its own, and no entry without a key."""
    import nats
    from nats.errors import Error as NatsError

    def start() -> Stack:
        stack = Stack(var_dir=tmp_path / "var", services=(), nats_port=free_port())
        stack.start()
        return stack

    stack = start()
    try:
        seeds = sorted((tmp_path / "var" / "nats-auth").glob("*.nk"))
        assert [p.stem for p in seeds] == ["admin", "intake", "notify", "routing", "system"]
        assert {p.stat().st_mode & 0o777 for p in seeds} == {0o600}
        first = {p.name: p.read_text() for p in seeds}
        for svc in ("intake", "routing", "notify"):
            assert stack.service_env(svc)["PETITIONS_NATS_NKEY_SEED"].endswith(f"/{svc}.nk")
        with pytest.raises(NatsError):
            await nats.connect(stack.nats_url, allow_reconnect=False, max_reconnect_attempts=0)
        nc = await nats.connect(stack.nats_url, **stack.nats_connect_options("intake"))
        await nc.close()
    finally:
        stack.stop()
    stack = start()
    try:
        assert {p.name: p.read_text() for p in seeds} == first
        nc = await nats.connect(stack.nats_url, **stack.nats_connect_options())
        await nc.close()
    finally:
        stack.stop()
