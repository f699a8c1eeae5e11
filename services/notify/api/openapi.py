"""How notify's operations are named and linked in its OpenAPI document: operation ids are the
route functions' names (what a generated client calls them), and a link says which answer gives
the id another operation needs, so a client (and Schemathesis's stateful run) can follow one
from the other."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute


def operation_id(route: APIRoute) -> str:
    return route.name


def links(**targets: tuple[str, dict[str, str]]) -> dict[int | str, dict[str, Any]]:
    """A 200 answer's links: `name=(operation id, {parameter: runtime expression})`."""
    return {
        200: {
            "links": {
                name: {"operationId": target, "parameters": parameters}
                for name, (target, parameters) in targets.items()
            }
        }
    }
