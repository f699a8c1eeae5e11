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
