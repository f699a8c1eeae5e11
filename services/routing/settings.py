"""Routing's configuration: `PETITIONS_ROUTING_*` plus what every service reads."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import AliasChoices, Field, field_validator, model_validator

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

    @field_validator("database_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_database_url(value)

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
    def should_seed_demo(self) -> bool:
        if self.seed_demo is None:
            return self.env == "development"
        return self.seed_demo
