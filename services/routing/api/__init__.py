"""Routing's staff JSON API, one module per resource: sign-in and who am I (`auth`), the cases
a person may see (`cases`), what they do to a case (`case_actions`), time away (`absence`),
passwords, one-time links and sign-in history (`accounts`).

The rules live in `services.routing.actions` and `services.routing.permissions`, shared with
the workspace pages; these modules read typed requests and answer typed responses. Refusals
are domain errors, answered as problem details by the map in `services.routing.problems`.
"""

from fastapi import APIRouter

from services.routing.api import absence, accounts, auth, case_actions, cases

ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    accounts.router,
    cases.router,
    case_actions.router,
    absence.router,
)

__all__ = ["ROUTERS"]
