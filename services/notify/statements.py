"""SQL statements built once per database dialect and executed with parameters: building and
hashing a fresh SQLAlchemy construct for every event cost more than running it.

A `Statements` belongs to one app (built in `create_app`), so nothing is kept between apps or
built when a module is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection


class Statements:
    def __init__(self) -> None:
        self._built: dict[tuple[str, str], Any] = {}

    def get(self, conn: AsyncConnection, name: str, build: Callable[[str], Any]) -> Any:
        """The statement called `name` for this connection's dialect, built by
        `build(dialect_name)` the first time."""
        key = (conn.dialect.name, name)
        stmt = self._built.get(key)
        if stmt is None:
            stmt = self._built[key] = build(conn.dialect.name)
        return stmt
