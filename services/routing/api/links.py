"""The staff API's operation ids and OpenAPI links: from a case in an answer to what can be done
with it next, so a client (and Schemathesis's stateful phase) can follow them."""

from typing import Any

from fastapi.routing import APIRoute

# Every operation on one case, by operation id (the route function's name).
CASE_OPERATIONS = (
    "case_detail",
    "accept",
    "add_note",
    "resolve",
    "reassign",
    "decline",
    "ask",
    "escalate_case",
    "take_over",
    "reject",
)


def operation_id(route: APIRoute) -> str:
    """An operation's id is its route function's name: short, stable, and what a generated
    client calls it."""
    return route.name


def case_links(pointer: str = "/id") -> dict[int | str, dict[str, Any]]:
    """The 200 answer carries a case at `pointer` (a JSON pointer into the body): links to every
    operation on that case."""
    links = {
        op: {"operationId": op, "parameters": {"case_id": f"$response.body#{pointer}"}}
        for op in CASE_OPERATIONS
    }
    return {200: {"description": "Successful Response", "links": links}}
