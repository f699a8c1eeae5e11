"""How routing's refusals are answered over HTTP: the one map from domain error to status,
given to `install_service_edge` (JSON API) and read by the pages for their own status."""

from __future__ import annotations

from services.routing.errors import (
    ActionError,
    BadCredentials,
    CaseNotFound,
    InvalidInput,
    LinkInvalid,
    MemberNotFound,
    NotPermitted,
    Refused,
    SessionEnded,
    TooManyAttempts,
    WeakPassword,
    WrongPassword,
)

# Most specific first: a subclass not listed answers as its nearest listed base.
PROBLEM_STATUS: dict[type[Exception], int] = {
    CaseNotFound: 404,
    MemberNotFound: 404,
    NotPermitted: 403,
    Refused: 409,
    WeakPassword: 422,
    InvalidInput: 422,
    WrongPassword: 403,
    LinkInvalid: 410,
    BadCredentials: 401,
    SessionEnded: 401,
    TooManyAttempts: 429,
    ActionError: 400,
}


def http_status(exc: ActionError) -> int:
    """The status a refusal is answered with."""
    for cls in type(exc).__mro__:
        if cls in PROBLEM_STATUS:
            return PROBLEM_STATUS[cls]
    return 400
