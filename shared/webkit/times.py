"""Times as people here read them: stored in UTC, shown in Asia/Ho_Chi_Minh, day first.

The one place that knows the local zone and the display format; every page and every message
uses `format_local`.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

# Both languages read the day first here (an English reader in Vietnam too); one entry per
# language keeps the choice in this table rather than in templates.
_TIME_FORMATS = {"vi": "%d/%m/%Y %H:%M", "en": "%d/%m/%Y %H:%M"}
_DATE_FORMAT = "%d/%m/%Y"


def format_local(value: datetime | str | None, lang: str = "vi") -> str:
    """`dd/mm/yyyy HH:MM` in local time; an ISO string (from a stored JSON document) is read
    first; nothing shows as an empty string."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(LOCAL_TZ).strftime(_TIME_FORMATS.get(lang, _TIME_FORMATS["vi"]))


def format_local_date(value: datetime | date | str | None) -> str:
    """`dd/mm/yyyy`; a moment is first moved to the local day it fell on."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.astimezone(LOCAL_TZ).date()
    return value.strftime(_DATE_FORMAT)
