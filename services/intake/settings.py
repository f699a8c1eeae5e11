"""Intake's configuration: `PETITIONS_INTAKE_*` plus what every service reads."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, field_validator, model_validator

from services.intake.throttle import RateLimit, parse_rate_limit
from shared.settings import CommonSettings, normalise_database_url

DEMO_CATALOG = Path(__file__).with_name("demo_catalog.yaml")


class Settings(CommonSettings):
    database_url: str = Field(
        default="sqlite+aiosqlite:///var/intake.db",
        validation_alias="PETITIONS_INTAKE_DATABASE_URL",
    )
    port: int = Field(default=8000, ge=1, le=65535, validation_alias="PETITIONS_INTAKE_PORT")
    # Tracking links sent to residents start with this, so it must be the address they can reach.
    public_url: str = Field(
        default="http://127.0.0.1:8000", validation_alias="PETITIONS_INTAKE_PUBLIC_URL"
    )
    migrate_on_start: bool = Field(default=True, validation_alias="PETITIONS_MIGRATE_ON_START")
    catalog_file: Path = Field(
        default=DEMO_CATALOG, validation_alias="PETITIONS_INTAKE_CATALOG_FILE"
    )
    # Open311's `jurisdiction_id`: a client that names another jurisdiction is refused (404).
    open311_jurisdiction_id: str | None = Field(
        default=None, validation_alias="PETITIONS_INTAKE_OPEN311_JURISDICTION_ID"
    )
    # Every public write (form, JSON API, Open311, the resident's actions, link recovery) from
    # one address, and for one contact, at most this often: `10/minute`, `3/hour`, or `off`
    # (benchmarks and the fault suite, which submit many petitions from one address).
    public_rate_limit: str = Field(
        default="10/minute", validation_alias="PETITIONS_PUBLIC_RATE_LIMIT"
    )
    # A form sent back sooner than this after it was shown is a robot's (a person needs longer
    # to read and type); 0 turns the check off.
    form_min_fill_s: float = Field(
        default=3.0, ge=0, le=600, validation_alias="PETITIONS_INTAKE_FORM_MIN_FILL_S"
    )
    # End-to-end tests move every service's time together through this file.
    clock_file: str | None = Field(default=None, validation_alias="PETITIONS_CLOCK_FILE")

    @field_validator("database_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("public_rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        parse_rate_limit(value)
        return value

    @property
    def rate_limit(self) -> RateLimit | None:
        """The public write limit, None when `off`."""
        return parse_rate_limit(self.public_rate_limit)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("PETITIONS_INTAKE_PUBLIC_URL must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("catalog_file")
    @classmethod
    def _catalog_exists(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"no file at {value}")
        return value

    @model_validator(mode="after")
    def _no_test_clock_in_production(self) -> Self:
        if self.env == "production" and self.clock_file:
            raise ValueError(
                "PETITIONS_CLOCK_FILE: đồng hồ thử nghiệm bị cấm trong production / "
                "the test clock is refused in production"
            )
        return self
