"""The case state machine."""

from __future__ import annotations

import pytest

from services.routing.lifecycle import IllegalTransition, transition


@pytest.mark.parametrize(
    ("current", "action", "expected"),
    [
        ("assigned", "accept", "accepted"),
        ("accepted", "resolve", "resolved"),
        ("resolved", "close", "closed"),
        ("resolved", "reopen", "reopened"),
        ("reopened", "assign", "assigned"),
        ("accepted", "assign", "assigned"),
        ("unassigned", "assign", "assigned"),
        ("accepted", "note", "accepted"),
        ("resolved", "note", "resolved"),
        ("accepted", "withdraw", "withdrawn"),
        ("assigned", "reject", "rejected"),
    ],
)
def test_legal(current: str, action: str, expected: str) -> None:
    assert transition(current, action) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("current", "action"),
    [
        ("assigned", "resolve"),
        ("accepted", "accept"),
        ("resolved", "accept"),
        ("closed", "reopen"),
        ("closed", "note"),
        ("withdrawn", "assign"),
        ("assigned", "close"),
        ("resolved", "assign"),
    ],
)
def test_illegal_names_the_current_status(current: str, action: str) -> None:
    with pytest.raises(IllegalTransition) as info:
        transition(current, action)  # type: ignore[arg-type]
    assert info.value.current_status == current
