"""Routing answers notify's member look-up over real NATS request/reply."""

from __future__ import annotations

import json
from typing import Any

from services.routing.app import create_app
from services.routing.settings import Settings
from shared.streams import RPC_ROUTING_MEMBERS, RPC_ROUTING_UNITS
from tests.support import connect_nats, service_nats

HAMLET = "my-hoa-hung-my-khanh-2"


async def test_members_of_a_unit_and_by_id(nats_url: str, sqlite_url: str) -> None:
    settings = Settings(
        env="test", **service_nats(nats_url, "routing"), database_url=sqlite_url, seed_demo=True
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        nc = await connect_nats(nats_url)
        try:

            async def ask(body: Any) -> dict[str, Any]:
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                reply = await nc.request(RPC_ROUTING_MEMBERS, raw, timeout=5)
                result: dict[str, Any] = json.loads(reply.data)
                return result

            unit = (await ask({"unit_id": HAMLET}))["members"]
            assert len(unit) >= 10
            assert {m["unit_id"] for m in unit} == {HAMLET}
            assert all(m["active"] for m in unit)
            leader = next(m for m in unit if m["id"] == "bithu.mykhanh2")
            assert leader["role"] == "leader"
            assert leader["email"].endswith("@example.org")
            assert set(leader) == {"id", "name", "email", "unit_id", "role", "active"}

            by_id = (await ask({"member_ids": ["bithu.mykhanh2", "nobody"]}))["members"]
            assert [m["id"] for m in by_id] == ["bithu.mykhanh2"]
            assert (await ask({"unit_id": "nowhere"}))["members"] == []
            assert (await ask(b"not json"))["members"] == []
            assert (await ask({"member_ids": "x"}))["members"] == []
        finally:
            await nc.close()


async def test_the_area_tree_for_notify(nats_url: str, sqlite_url: str) -> None:
    settings = Settings(
        env="test", **service_nats(nats_url, "routing"), database_url=sqlite_url, seed_demo=True
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        nc = await connect_nats(nats_url)
        try:
            reply = await nc.request(RPC_ROUTING_UNITS, b"{}", timeout=5)
            units = {u["id"]: u for u in json.loads(reply.data)["units"]}
        finally:
            await nc.close()
    hamlet = units[HAMLET]
    assert set(hamlet) == {"id", "name", "kind", "parent_id"}
    assert "Mỹ Khánh 2" in hamlet["name"]
    # Up the tree from the hamlet to a root, every parent known.
    seen, current = set(), hamlet
    while current["parent_id"] is not None:
        assert current["id"] not in seen
        seen.add(current["id"])
        current = units[current["parent_id"]]
    assert len(seen) >= 2
