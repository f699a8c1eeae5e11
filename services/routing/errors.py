"""Routing's refusals, as domain types: each says in Vietnamese and English why a request was
refused. They know nothing of HTTP; `services.routing.problems` maps them to status codes at
the edge, and the pages show the sentence on the same page."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

Lang = Literal["vi", "en"]


class ActionError(Exception):
    """A refused request, said in Vietnamese and English."""

    default_type: ClassVar[str] = "about:blank"

    def __init__(self, vi: str, en: str, *, type_: str | None = None, **extra: Any) -> None:
        super().__init__(f"{vi} / {en}")
        self.vi = vi
        self.en = en
        # A URN naming the kind of refusal, for clients (`type` in the problem details).
        self.problem_type = type_ or self.default_type
        self.extra = extra

    @property
    def bilingual(self) -> str:
        return f"{self.vi} / {self.en}"

    def text(self, lang: Lang) -> str:
        return self.en if lang == "en" else self.vi


class CaseNotFound(ActionError):
    """No such case, or one the caller may not see (whether it exists is not theirs to know)."""


class MemberNotFound(ActionError):
    """No such member."""


class NotPermitted(ActionError):
    """The caller's place towards the case does not allow the action."""


class Refused(ActionError):
    """The case's state does not allow the action now."""

    default_type = "urn:petitions:problem:illegal-transition"


class InvalidInput(ActionError):
    default_type = "urn:petitions:problem:validation"


class BadCredentials(ActionError):
    default_type = "urn:petitions:problem:bad-credentials"


class WeakPassword(InvalidInput):
    """A new password the policy refuses (`reason`: too_short, too_long, personal, breached)."""

    default_type = "urn:petitions:problem:weak-password"


class WrongPassword(ActionError):
    """The current password given to change it is not the person's."""

    default_type = "urn:petitions:problem:wrong-password"


class LinkInvalid(ActionError):
    """A one-time link that is unknown, used already or expired."""

    default_type = "urn:petitions:problem:link-invalid"


class SessionEnded(ActionError):
    """A refresh token whose session is unknown, expired or revoked."""

    default_type = "urn:petitions:problem:session-ended"


class TooManyAttempts(ActionError):
    """Too many failed sign-ins lately; `retry_after` seconds until the next try is heard."""

    default_type = "urn:petitions:problem:too-many-attempts"

    def __init__(self, vi: str, en: str, *, retry_after: int) -> None:
        super().__init__(vi, en, retry_after=retry_after)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}
