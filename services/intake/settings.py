"""Intake's configuration: `PETITIONS_INTAKE_*` plus what every service reads."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, field_validator, model_validator

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
    # End-to-end tests move every service's time together through this file.
    clock_file: str | None = Field(default=None, validation_alias="PETITIONS_CLOCK_FILE")

    @field_validator("database_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_database_url(value)

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
