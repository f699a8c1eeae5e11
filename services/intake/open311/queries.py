"""GET requests' arguments as one query, by GeoReport's rules: `service_request_id` (a comma
list) overrides every other argument; otherwise the requests made within `start_date` …
`end_date` (at most 90 days apart; the last 90 days by default), of the `service_code`s and
`status`es named (comma lists), newest first, at most 1000."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.intake.open311.errors import InvalidRequest

WINDOW = timedelta(days=90)
MAX_REQUESTS = 1000
MAX_IDS = 100
STATUSES = frozenset({"open", "closed"})
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RequestQuery:
    ids: list[str] | None
    # None: every service; otherwise the known ones asked for (maybe none: nothing matches).
    service_codes: list[str] | None
    start: datetime
    end: datetime
    statuses: frozenset[str]
    limit: int = MAX_REQUESTS


def comma_list(raw: str | None) -> list[str]:
    return list(dict.fromkeys(p.strip() for p in (raw or "").split(",") if p.strip()))


def _instant(raw: str | None, name: str, errors: list[str]) -> datetime | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        errors.append(
            f"{name}: cần dạng 2010-01-01T00:00:00Z / must look like 2010-01-01T00:00:00Z"
        )
        return None
    if value.tzinfo is None:
        errors.append(f"{name}: cần múi giờ (Z hoặc +07:00) / needs a time zone (Z or +07:00)")
        return None
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    # Room for the 90-day window on either side, so the arithmetic below cannot overflow.
    if utc is None or not _EARLIEST <= utc <= _LATEST:
        errors.append(f"{name}: ngoài phạm vi / out of range")
        return None
    return utc


def _window(
    start: datetime | None, end: datetime | None, now: datetime, errors: list[str]
) -> tuple[datetime, datetime]:
    if start is None and end is None:
        return now - WINDOW, now
    if start is None:
        assert end is not None
        return end - WINDOW, end
    if end is None:
        return start, start + WINDOW
    if end < start:
        errors.append("end_date: trước start_date / is before start_date")
    elif end - start > WINDOW:
        errors.append("start_date, end_date: tối đa 90 ngày / at most 90 days apart")
    return start, end


def parse_query(
    *,
    service_request_id: str | None,
    service_code: str | None,
    start_date: str | None,
    end_date: str | None,
    status: str | None,
    now: datetime,
    known_codes: Collection[str],
) -> RequestQuery:
    """The query these arguments ask for, or `InvalidRequest` listing what is wrong."""
    errors: list[str] = []
    ids = comma_list(service_request_id)
    codes = comma_list(service_code)
    if len(ids) > MAX_IDS:
        errors.append(f"service_request_id: tối đa / at most {MAX_IDS}")
    statuses = frozenset(s.lower() for s in comma_list(status))
    if statuses - STATUSES:
        errors.append("status: chỉ open hoặc closed / only open or closed")
    start = _instant(start_date, "start_date", errors)
    end = _instant(end_date, "end_date", errors)
    window = _window(start, end, now, errors) if not errors else (now, now)
    if errors:
        raise InvalidRequest(*errors)
    return RequestQuery(
        ids=ids or None,
        service_codes=[c for c in codes if c in known_codes] if codes else None,
        start=window[0],
        end=window[1],
        statuses=statuses or STATUSES,
    )
