"""The area tree as notify needs it: units' names for the pages, and a unit's sub-units so its
figures can be shown with those of the units below it. Routing owns the tree; notify asks for it
(`rpc.routing.units.v1`) and keeps the answer a few minutes, since it changes rarely."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import structlog

from .directory import Directory, DirectoryUnavailable, Unit

log = structlog.get_logger(__name__)


class UnitTree:
    def __init__(self, units: Iterable[Unit]) -> None:
        self.units = {u.id: u for u in units}
        self._children: dict[str, list[str]] = {}
        for unit in self.units.values():
            if unit.parent_id:
                self._children.setdefault(unit.parent_id, []).append(unit.id)

    def name(self, unit_id: str) -> str:
        unit = self.units.get(unit_id)
        return unit.name if unit else unit_id

    def subtree(self, unit_id: str) -> list[str]:
        """The unit and every unit below it (a cycle in bad data is not followed twice)."""
        seen: list[str] = []
        todo = [unit_id]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.append(current)
            todo.extend(sorted(self._children.get(current, ()), reverse=True))
        return seen

    def depth(self, unit_id: str) -> int:
        depth, current, seen = 0, self.units.get(unit_id), set()
        while current is not None and current.parent_id and current.id not in seen:
            seen.add(current.id)
            depth += 1
            current = self.units.get(current.parent_id)
        return depth

    def in_tree_order(self, unit_ids: Sequence[str]) -> list[str]:
        """`unit_ids` ordered as the tree reads top-down (parents before their children); ids the
        tree does not know come last."""
        wanted = set(unit_ids)
        roots = sorted(
            (u.id for u in self.units.values() if not u.parent_id or u.parent_id not in self.units),
            key=self.name,
        )
        ordered: list[str] = []

        def walk(unit_id: str) -> None:
            if unit_id in ordered:
                return
            if unit_id in wanted:
                ordered.append(unit_id)
            for child in sorted(self._children.get(unit_id, ()), key=self.name):
                walk(child)

        for root in roots:
            walk(root)
        return ordered + sorted(wanted - set(ordered))


class UnitCache:
    """The tree from routing, kept `ttl_s`; None while routing does not answer (pages then show
    ids and units as themselves)."""

    def __init__(
        self,
        directory: Directory,
        *,
        ttl_s: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._tree: UnitTree | None = None
        self._fetched_at = 0.0

    async def tree(self) -> UnitTree | None:
        now = self._monotonic()
        if self._tree is None or now - self._fetched_at > self._ttl_s:
            try:
                units = await self._directory.units()
            except DirectoryUnavailable as exc:
                log.warning("unit_tree_unavailable", error=str(exc))
                return self._tree
            if units:
                self._tree, self._fetched_at = UnitTree(units), now
        return self._tree
