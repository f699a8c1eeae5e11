"""Routing's configuration: `PETITIONS_ROUTING_*` plus what every service reads."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Self

from pydantic import AliasChoices, Field, field_validator, model_validator

from services.routing.ladder import DEFAULT_LADDER_FILE, load_ladder_file
from services.routing.signin import ThrottleLimits
from shared.settings import CommonSettings, normalise_database_url


class Settings(CommonSettings):
    database_url: str = Field(
        default="sqlite+aiosqlite:///var/routing.db",
        validation_alias=AliasChoices("PETITIONS_ROUTING_DATABASE_URL", "database_url"),
    )
    port: int = Field(
        default=8001,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("PETITIONS_ROUTING_PORT", "port"),
    )
    migrate_on_start: bool = Field(
        default=True,
        validation_alias=AliasChoices("PETITIONS_MIGRATE_ON_START", "migrate_on_start"),
    )
    org_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("PETITIONS_ROUTING_ORG_FILE", "org_file"),
    )
    # None means "the environment decides": the demo organisation is loaded in development only.
    seed_demo: bool | None = Field(
        default=None,
        validation_alias=AliasChoices("PETITIONS_ROUTING_SEED_DEMO", "seed_demo"),
    )
    clock_file: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PETITIONS_CLOCK_FILE", "clock_file"),
    )
    # The escalation ladder, deadlines and calendars (default: the shipped one).
    ladder_file: Path = Field(
        default=DEFAULT_LADDER_FILE,
        validation_alias=AliasChoices("PETITIONS_ROUTING_LADDER_FILE", "ladder_file"),
    )
    # Seconds between escalation sweeps when nothing is due sooner.
    sweep_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        validation_alias=AliasChoices("PETITIONS_ROUTING_SWEEP_INTERVAL_S", "sweep_interval_s"),
    )
    sweep_batch: int = Field(
        default=500,
        ge=1,
        le=10_000,
        validation_alias=AliasChoices("PETITIONS_ROUTING_SWEEP_BATCH", "sweep_batch"),
    )
    # A resolved case the resident says nothing about is closed after this many working days.
    quiet_close_days: float = Field(
        default=7,
        gt=0,
        le=365,
        validation_alias=AliasChoices("PETITIONS_ROUTING_QUIET_CLOSE_DAYS", "quiet_close_days"),
    )

    # Failed sign-ins allowed within the window, per username (from any address) and per
    # client address (for any usernames) before further tries are refused (429).
    signin_max_failures: int = Field(
        default=5,
        ge=1,
        le=100,
        validation_alias=AliasChoices(
            "PETITIONS_ROUTING_SIGNIN_MAX_FAILURES", "signin_max_failures"
        ),
    )
    signin_max_failures_per_address: int = Field(
        default=20,
        ge=1,
        le=10_000,
        validation_alias=AliasChoices(
            "PETITIONS_ROUTING_SIGNIN_MAX_FAILURES_PER_ADDRESS", "signin_max_failures_per_address"
        ),
    )
    signin_window_s: float = Field(
        default=15 * 60,
        ge=1,
        le=24 * 3600,
        validation_alias=AliasChoices("PETITIONS_ROUTING_SIGNIN_WINDOW_S", "signin_window_s"),
    )
    # An access token's life (at most 15 minutes): how stale what it says may be.
    access_token_ttl_s: int = Field(
        default=15 * 60,
        ge=10,
        le=15 * 60,
        validation_alias=AliasChoices("PETITIONS_ACCESS_TOKEN_TTL_S", "access_token_ttl_s"),
    )
    # A sign-in session's life: refreshing mints new access tokens until then.
    session_ttl_h: float = Field(
        default=12,
        gt=0,
        le=24 * 30,
        validation_alias=AliasChoices("PETITIONS_ROUTING_SESSION_TTL_H", "session_ttl_h"),
    )

    @field_validator("database_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("ladder_file")
    @classmethod
    def _ladder_is_valid(cls, value: Path) -> Path:
        # Refuse to start on a ladder with a mistake, naming its line, rather than at the
        # first deadline.
        load_ladder_file(value)
        return value

    @model_validator(mode="after")
    def _production_has_no_demo(self) -> Self:
        if self.env == "production":
            if self.clock_file:
                raise ValueError(
                    "PETITIONS_CLOCK_FILE: đồng hồ thử nghiệm bị cấm trong production / "
                    "the test clock is refused in production"
                )
            if self.seed_demo:
                raise ValueError(
                    "PETITIONS_ROUTING_SEED_DEMO: dữ liệu mẫu bị cấm trong production / "
                    "the demo organisation (password 'demo') is refused in production"
                )
        return self

    @property
    def throttle_limits(self) -> ThrottleLimits:
        return ThrottleLimits(
            per_username=self.signin_max_failures,
            per_address=self.signin_max_failures_per_address,
            window=timedelta(seconds=self.signin_window_s),
        )

    @property
    def should_seed_demo(self) -> bool:
        if self.seed_demo is None:
            return self.env == "development"
        return self.seed_demo
