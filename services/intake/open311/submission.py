"""A GeoReport create request as intake's submission: the same data the web form hands to
`validate_submission`, plus what only GeoReport carries (structured location, photo link).

Mapping: `service_code` is the category; `attribute[unit_id]` is the area the resident lives in
(GeoReport has no area tree, so it is a required service attribute); `description` becomes the
description and, cut to its first line, the title; `address_string`, `lat`/`long` and/or
`address_id` become the location; `first_name`/`last_name`, `email`, `phone` become the contact.
`device_id` and `account_id` are accepted and not kept: intake has no accounts.

Consent to processing is implied by the API contract: a client may only send a request the
resident asked it to send, and by doing so it passes on the resident's consent (the web form
asks for it with a checkbox; `validate_submission` refuses a submission without it). A
resident who left an email or phone gets progress messages, as GeoReport clients promise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from services.intake.errors import FieldError
from services.intake.petitions import TITLE_MAX, clean_text

TITLE_FROM_DESCRIPTION = 80
MEDIA_URL_MAX = 2000
ADDRESS_ID_MAX = 100

# Our field → the GeoReport parameter a client sent it as, to name it in errors.
PARAMETERS = {
    "category_id": "service_code",
    "unit_id": "attribute[unit_id]",
    "title": "description",
    "description": "description",
    "location": "address_string",
    "name": "first_name/last_name",
    "phone": "phone",
    "email": "email",
}


@dataclass(frozen=True)
class GeoReportExtra:
    """What a GeoReport request carries beyond a petition, kept for the client that sent it."""

    address_string: str | None
    address_id: str | None
    lat: float | None
    long: float | None
    media_url: str | None


def language(locale: str | None) -> str | None:
    """`vi` or `en` when the client named a locale, None for both (Vietnamese first)."""
    if not locale:
        return None
    return "en" if locale.lower().startswith("en") else "vi"


def title_from(description: str) -> str:
    """A title for a petition that came without one: the description's first line, shortened
    at a word boundary."""
    # Cleaned first: a description of control characters only cleans down to nothing.
    lines = clean_text(description).splitlines()
    first = lines[0] if lines else ""
    if len(first) <= TITLE_FROM_DESCRIPTION:
        return first
    cut = first[: TITLE_FROM_DESCRIPTION - 1].rsplit(" ", 1)[0]
    return cut[: TITLE_MAX - 1] + "…"


def _coordinate(raw: str | None, name: str, limit: float, errors: list[str]) -> float | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        errors.append(f"{name}: không phải số / not a number")
        return None
    if not math.isfinite(value) or abs(value) > limit:
        errors.append(f"{name}: ngoài phạm vi / out of range")
        return None
    return value


def _media_url(raw: str | None, errors: list[str]) -> str | None:
    value = clean_text(raw or "")
    if not value:
        return None
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or len(value) > MEDIA_URL_MAX
        or any(c.isspace() for c in value)
    ):
        errors.append(
            f"media_url: cần địa chỉ http(s) tối đa {MEDIA_URL_MAX} ký tự / "
            f"must be an http(s) URL of at most {MEDIA_URL_MAX} characters"
        )
        return None
    return value


def _extra(form: Mapping[str, str], errors: list[str]) -> GeoReportExtra:
    lat = _coordinate(form.get("lat"), "lat", 90, errors)
    long = _coordinate(form.get("long"), "long", 180, errors)
    if (lat is None) != (long is None) and not errors:
        errors.append("lat/long: cần cả hai / both are needed")
    address_id = clean_text(form.get("address_id", "")) or None
    if address_id is not None and len(address_id) > ADDRESS_ID_MAX:
        errors.append(f"address_id: tối đa / at most {ADDRESS_ID_MAX}")
    return GeoReportExtra(
        address_string=clean_text(form.get("address_string", "")) or None,
        address_id=address_id,
        lat=lat if long is not None else None,
        long=long if lat is not None else None,
        media_url=_media_url(form.get("media_url"), errors),
    )


def _location(extra: GeoReportExtra) -> str:
    """The location as staff read it: the address, the coordinates, and the client's address
    id when nothing else names the place."""
    where = extra.address_string or ""
    if extra.lat is not None and extra.long is not None:
        where = f"{where} ({extra.lat:.6f}, {extra.long:.6f})".strip()
    if not where and extra.address_id:
        where = f"address_id {extra.address_id}"
    return where


def submission_from(form: Mapping[str, str]) -> tuple[dict[str, Any], GeoReportExtra, list[str]]:
    """A GeoReport create request as our submission's data and GeoReport's extra fields, or
    the errors that prevent it (GeoReport requires a location: lat/long, address_string or
    address_id)."""
    errors: list[str] = []
    extra = _extra(form, errors)
    where = _location(extra)
    if not where and not errors:
        errors.append("address_string, lat/long, address_id: cần địa điểm / a location is required")
    description = form.get("description", "")
    names = [clean_text(form.get(k, "")) for k in ("first_name", "last_name")]
    data: dict[str, Any] = {
        "unit_id": form.get("attribute[unit_id]"),
        "category_id": form.get("service_code"),
        "title": title_from(description),
        "description": description,
        "location": where or None,
        "name": " ".join(n for n in names if n) or None,
        "phone": form.get("phone") or None,
        "email": form.get("email") or None,
        "notify": True,
        # Implied by the API contract (module docstring, docs/intake.md).
        "consent": True,
        "language": language(form.get("locale")) or "vi",
        # The point travels with the petition too (the event, the case), not only in the
        # client's GeoReport record.
        "latitude": extra.lat,
        "longitude": extra.long,
    }
    return data, extra, errors


def described(errors: list[FieldError]) -> list[str]:
    """Validation errors named by the GeoReport parameter the client sent."""
    return [f"{PARAMETERS.get(e.field, e.field)}: {e.message_vi} / {e.message_en}" for e in errors]
