"""Who prefers which channel, the webhook endpoints, quiet hours, batching and each unit's meeting
schedule: one YAML file (`PETITIONS_NOTIFY_CHANNELS_FILE`, else the shipped demo file), checked
when the service starts so a mistake stops it with a message that says where.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEMO_CHANNELS_FILE = Path(__file__).with_name("demo_channels.yaml")
EMAIL = "email"
IN_APP = "in_app"
BUILTIN_CHANNELS = (EMAIL, IN_APP)


class ChannelsFileError(ValueError):
    """A channels file the service must refuse to start with."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Webhook(_Strict):
    """A JSON endpoint (an SMS or Zalo gateway, a city system). `needs_phone`: it can only reach
    someone whose phone number is known (an SMS gateway reaches residents, not members)."""

    url: str
    needs_phone: bool = False
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value


class QuietHours(_Strict):
    """Between `start` and `end` (local time, may span midnight) nothing leaves on `channels`;
    it is held until `end`."""

    start: time = time(21, 0)
    end: time = time(7, 0)
    channels: tuple[str, ...] = ("sms",)


class Meeting(_Strict):
    """A unit's regular meeting: monthly on `day_of_month` (clamped to the month's last day) or
    weekly on `weekday` (0 = Monday), at `at` local time; the digest goes out `digest_hours_before`."""

    name: str | None = None
    day_of_month: int | None = Field(default=None, ge=1, le=31)
    weekday: int | None = Field(default=None, ge=0, le=6)
    at: time
    digest_hours_before: float = Field(default=24.0, gt=0, le=24 * 14)

    @model_validator(mode="after")
    def _one_rule(self) -> Meeting:
        if (self.day_of_month is None) == (self.weekday is None):
            raise ValueError("give exactly one of day_of_month or weekday")
        return self


class Preferences(_Strict):
    """Channels in order of preference; the next is tried when one fails for good."""

    residents: tuple[str, ...] = (EMAIL,)
    members: tuple[str, ...] = (EMAIL,)
    member_overrides: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class QuietHoursConfig(_Strict):
    default: QuietHours = QuietHours()
    members: dict[str, QuietHours] = Field(default_factory=dict)


class Batching(_Strict):
    """Messages of these templates to one person on one channel within `window_minutes` of the
    first go out as one message at the end of the window."""

    window_minutes: float = Field(default=5.0, ge=0, le=24 * 60)
    templates: tuple[str, ...] = ("case_assigned",)


class NotifyConfig(_Strict):
    timezone: str = "Asia/Ho_Chi_Minh"
    webhooks: dict[str, Webhook] = Field(default_factory=dict)
    preferences: Preferences = Preferences()
    quiet_hours: QuietHoursConfig = QuietHoursConfig()
    batching: Batching = Batching()
    meetings: dict[str, Meeting] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'") from None
        return value

    @model_validator(mode="after")
    def _channels_exist(self) -> NotifyConfig:
        for name in self.webhooks:
            if name in BUILTIN_CHANNELS:
                raise ValueError(f"webhook name '{name}' is reserved")
        known = set(BUILTIN_CHANNELS) | set(self.webhooks)
        prefs = self.preferences
        lists: dict[str, tuple[str, ...]] = {
            "preferences.residents": prefs.residents,
            "preferences.members": prefs.members,
            **{f"preferences.member_overrides.{k}": v for k, v in prefs.member_overrides.items()},
        }
        for where, channels in lists.items():
            for channel in channels:
                if channel not in known:
                    raise ValueError(
                        f"{where}: unknown channel '{channel}' (known: {', '.join(sorted(known))})"
                    )
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def resident_channels(self) -> tuple[str, ...]:
        return tuple(c for c in self.preferences.residents if c != IN_APP)

    def member_channels(self, member_id: str) -> tuple[str, ...]:
        """A member's push channels; the in-app inbox always gets a copy besides."""
        chosen = self.preferences.member_overrides.get(member_id, self.preferences.members)
        return tuple(c for c in chosen if c != IN_APP)

    def quiet_hours_for(self, recipient_kind: str, recipient_ref: str) -> QuietHours:
        if recipient_kind == "member":
            return self.quiet_hours.members.get(recipient_ref, self.quiet_hours.default)
        return self.quiet_hours.default


def refuse_unsafe(config: NotifyConfig, *, production: bool, weak_webhook_secret: bool) -> None:
    """Production signs webhooks with a real secret; without webhooks none is needed."""
    if production and config.webhooks and weak_webhook_secret:
        raise ChannelsFileError(
            "PETITIONS_NOTIFY_WEBHOOK_SECRET: production cần khóa ngẫu nhiên ít nhất 32 ký tự "
            "để ký webhook / production needs a random secret of at least 32 characters, not "
            "the demo one, to sign webhooks"
        )


def parse_config(data: Any, *, source: str = "<config>") -> NotifyConfig:
    try:
        return NotifyConfig.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise ChannelsFileError(f"{source}: {problems}") from None


def load_config(path: Path | None) -> NotifyConfig:
    """The channels file at `path`, or the shipped demo file."""
    source = path or DEMO_CHANNELS_FILE
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ChannelsFileError(f"{source}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else str(source)
        raise ChannelsFileError(f"{where}: not valid YAML") from None
    return parse_config(data, source=str(source))
