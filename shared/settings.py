"""Settings shared by every service: read from `PETITIONS_*` environment variables, checked at start."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.streams import DAY_S, DEFAULT_MAX_AGE_S, DEFAULT_MAX_BYTES, StreamLimits

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
    # The service's own NATS user: an nkey seed file, or a .creds file (user JWT and seed) where
    # an operator issues JWTs. Production refuses to start with neither. See docs/security.md.
    nats_nkey_seed: Path | None = None
    nats_creds: Path | None = None
    # TLS to NATS: the CA that signed the servers' certificates, and a client certificate when the
    # servers verify clients.
    nats_tls_ca: Path | None = None
    nats_tls_cert: Path | None = None
    nats_tls_key: Path | None = None
    stream_replicas: int = Field(default=1, ge=1, le=5)
    # Retention of the petitions stream: events older than this many days are dropped, and a
    # stream this full refuses new events (they wait in the outboxes). docs/reliability.md.
    stream_max_age_days: float = Field(default=DEFAULT_MAX_AGE_S / DAY_S, gt=0, le=3650)
    stream_max_bytes: int = Field(default=DEFAULT_MAX_BYTES, ge=1024 * 1024)
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
    # Reverse proxies whose `X-Forwarded-For` names the client (IP addresses or networks,
    # comma-separated). None by default: the client is the TCP peer, whatever a header says,
    # so nobody can pick the address the sign-in throttle counts against.
    trusted_proxies: str = ""
    # The largest request body any endpoint reads; a bigger one is refused (413) unread.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)

    @field_validator("nats_url")
    @classmethod
    def _nats_scheme(cls, value: str) -> str:
        for server in value.split(","):
            if not server.strip().startswith(("nats://", "tls://", "ws://", "wss://")):
                raise ValueError(f"PETITIONS_NATS_URL: '{server}' is not a nats:// URL")
        return value

    @field_validator("nats_nkey_seed", "nats_creds", "nats_tls_ca", "nats_tls_cert", "nats_tls_key")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no file at {value}")
        return value

    @model_validator(mode="after")
    def _nats_credentials(self) -> Self:
        if (self.nats_tls_cert is None) != (self.nats_tls_key is None):
            raise ValueError(
                "PETITIONS_NATS_TLS_CERT and PETITIONS_NATS_TLS_KEY go together / "
                "chứng chỉ và khóa TLS phải đi cùng nhau"
            )
        return self

    @property
    def nats_authenticated(self) -> bool:
        return self.nats_nkey_seed is not None or self.nats_creds is not None

    def check_bus_credentials(self, service: str) -> None:
        """A service refuses to start in production without its NATS user (checked when it
        builds its runtime, not here: migrations and imports never touch the bus)."""
        if self.env == "production" and not self.nats_authenticated:
            raise SettingsError(
                f"{service}: PETITIONS_NATS_NKEY_SEED or PETITIONS_NATS_CREDS is required: "
                "production refuses an unauthenticated bus / production không chạy với NATS "
                "không xác thực"
            )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        for item in _split(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"PETITIONS_TRUSTED_PROXIES: '{item}' không phải địa chỉ IP hay mạng / "
                    "is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
                ) from None
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
    def stream_limits(self) -> StreamLimits:
        return StreamLimits(
            replicas=self.stream_replicas,
            max_age_s=self.stream_max_age_days * DAY_S,
            max_bytes=self.stream_max_bytes,
        )

    @property
    def trusted_proxy_list(self) -> list[str]:
        return _split(self.trusted_proxies)

    @property
    def resolved_log_format(self) -> Literal["console", "json"]:
        if self.log_format:
            return self.log_format
        return "json" if self.env == "production" else "console"


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


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
