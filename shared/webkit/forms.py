"""Reading a page's form, and CSRF for signed-in forms.

A signed-in form carries a CSRF token derived from the session token with the service secret,
and its Origin (or Referer), when sent, must be one of the configured service URLs. A form
without a session (a resident's) is protected by what it needs to know instead (the tracking
token in its URL), so it is only read, not guarded.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request

CSRF_FIELD = "csrf"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


class FormRefused(Exception):
    """A form post the page cannot read: too large (413) or not urlencoded (415). The page
    answers with a friendly message (`message_key` in the page's catalogue)."""

    def __init__(self, status: int, message_key: str) -> None:
        super().__init__(message_key)
        self.status = status
        self.message_key = message_key


def parse_form(body: bytes) -> dict[str, str]:
    """A urlencoded body as a dict (the first value of each field; blanks kept)."""
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


async def read_form(request: Request, *, max_bytes: int) -> dict[str, str]:
    """A urlencoded form of at most `max_bytes`, refused without reading the rest; an empty
    body (a form with no fields) needs no content type."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FormRefused(413, "too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise FormRefused(413, "too_large")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != FORM_MEDIA_TYPE and (media or body):
        raise FormRefused(415, "wrong_media")
    return parse_form(bytes(body))


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Guard:
    """Where a signed-in request may come from, and where sign-in may send the browser."""

    def __init__(self, *, secret: str, service_urls: Iterable[str]) -> None:
        self._secret = secret.encode()
        self.bases = [u.rstrip("/") for u in service_urls]
        self.origins = frozenset(origin_of(u) for u in self.bases)

    def csrf(self, session_token: str) -> str:
        """A per-session token: forging it needs the service secret, reading it needs the page."""
        return hmac.new(self._secret, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()

    def same_site(self, request: Request) -> bool:
        """The Origin (else the Referer), when the browser sends one, is one of our services.
        A browser sends `Origin: null` for opaque origins: that is foreign too."""
        origin = request.headers.get("origin")
        if origin is not None:
            return origin.lower() in self.origins
        referer = request.headers.get("referer")
        if referer is not None:
            return origin_of(referer) in self.origins
        return True

    def check(self, request: Request, form: Mapping[str, str], session_token: str) -> bool:
        """A signed-in form post is ours: same site, and the session's CSRF token."""
        sent = form.get(CSRF_FIELD, "")
        # Bytes: `compare_digest` refuses text that is not ASCII (a TypeError, i.e. a 500).
        expected = self.csrf(session_token).encode()
        return self.same_site(request) and hmac.compare_digest(sent.encode(), expected)

    def safe_next(self, value: str | None) -> str | None:
        """A relative path on this service, or a URL on one of the configured services; never
        anything else (no open redirect)."""
        if not value or any(c in value for c in "\\\r\n\t") or len(value) > 2000:
            return None
        parts = urlsplit(value)
        if not parts.scheme and not parts.netloc:
            return value if value.startswith("/") and not value.startswith("//") else None
        for base in self.bases:
            b = urlsplit(base)
            if (
                parts.scheme.lower() == b.scheme.lower()
                and parts.netloc.lower() == b.netloc.lower()
                and parts.path.startswith(b.path)
            ):
                return value
        return None
