"""Settings shared by every service: read from `PETITIONS_*` environment variables, checked at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_SECRET = "petitions-demo-secret-not-for-production"  # noqa: S105 - refused outside development


class SettingsError(ValueError):
    """Configuration that a service must refuse to start with."""


def normalise_database_url(url: str) -> str:
    """Accept the usual spellings and return the async driver URL SQLAlchemy needs."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise ValueError(
        "chỉ hỗ trợ PostgreSQL (postgresql://…) hoặc SQLite (sqlite:///…) / "
        "only PostgreSQL (postgresql://…) or SQLite (sqlite:///…) URLs are supported"
    )


class CommonSettings(BaseSettings):
    """What every service reads. Subclasses add their own database URL and port."""

    model_config = SettingsConfigDict(
        env_prefix="PETITIONS_", extra="ignore", populate_by_name=True, frozen=True
    )

    env: Literal["development", "test", "production"] = "development"
    nats_url: str = "nats://127.0.0.1:4233"
    stream_replicas: int = Field(default=1, ge=1, le=5)
    secret_key: SecretStr = SecretStr(DEMO_SECRET)
    log_format: Literal["console", "json"] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    var_dir: Path = Path("var")
    host: str = "127.0.0.1"
    # Consumers retry a failing message this many times in all before it is parked.
    max_deliver: int = Field(default=6, ge=1, le=100)
    intake_url: str = "http://127.0.0.1:8000"
    routing_url: str = "http://127.0.0.1:8001"
    notify_url: str = "http://127.0.0.1:8002"

    @field_validator("nats_url")
    @classmethod
    def _nats_scheme(cls, value: str) -> str:
        for server in value.split(","):
            if not server.strip().startswith(("nats://", "tls://", "ws://", "wss://")):
                raise ValueError(f"PETITIONS_NATS_URL: '{server}' is not a nats:// URL")
        return value

    @model_validator(mode="after")
    def _production_is_safe(self) -> Self:
        if self.env == "production":
            secret = self.secret_key.get_secret_value()
            if secret == DEMO_SECRET or len(secret) < 32:
                raise ValueError(
                    "PETITIONS_SECRET_KEY: production needs a secret of at least 32 random "
                    "characters, not the demo one"
                )
        return self

    def running_open(self) -> list[str]:
        """What leaves this process open to anyone outside production (production refuses each
        at start), so that it is said at start, once per line; services add their own."""
        if self.env == "production" or self.secret_key.get_secret_value() != DEMO_SECRET:
            return []
        return ["PETITIONS_SECRET_KEY: khoá mẫu / the demo secret: anyone can sign a staff token"]

    @property
    def nats_servers(self) -> list[str]:
        return [s.strip() for s in self.nats_url.split(",") if s.strip()]

    @property
    def resolved_log_format(self) -> Literal["console", "json"]:
        if self.log_format:
            return self.log_format
        return "json" if self.env == "production" else "console"


def describe_validation_error(exc: Exception) -> str:
    """A short, readable reason why settings were refused (for the start-up message)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for err in errors():
            loc = ".".join(str(p) for p in err.get("loc", ())) or "settings"
            parts.append(f"{loc}: {err.get('msg')}")
        return "; ".join(parts)
    return str(exc)
