"""notify's configuration: its database, port, and how email leaves the machine."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from shared.settings import CommonSettings, normalise_database_url

DEMO_WEBHOOK_SECRET = "petitions-demo-webhook-secret"  # noqa: S105 - refused in production


class Settings(CommonSettings):
    """Without `smtp_host` mail goes to an embedded mailbox (one `.eml` file per message)."""

    database_url: str = Field(
        default="sqlite+aiosqlite:///var/notify.db",
        validation_alias="PETITIONS_NOTIFY_DATABASE_URL",
    )
    port: int = Field(default=8002, ge=1, le=65535, validation_alias="PETITIONS_NOTIFY_PORT")
    migrate_on_start: bool = Field(default=True, validation_alias="PETITIONS_MIGRATE_ON_START")
    smtp_host: str | None = Field(default=None, validation_alias="PETITIONS_SMTP_HOST")
    smtp_port: int = Field(default=25, ge=1, le=65535, validation_alias="PETITIONS_SMTP_PORT")
    smtp_username: str | None = Field(default=None, validation_alias="PETITIONS_SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(
        default=None, validation_alias="PETITIONS_SMTP_PASSWORD"
    )
    smtp_starttls: bool = Field(default=False, validation_alias="PETITIONS_SMTP_STARTTLS")
    smtp_timeout_s: float = Field(default=20.0, gt=0, validation_alias="PETITIONS_SMTP_TIMEOUT_S")
    mail_from: str = Field(
        default="Petitions <no-reply@petitions.local>", validation_alias="PETITIONS_MAIL_FROM"
    )
    mail_dir: Path | None = Field(default=None, validation_alias="PETITIONS_MAIL_DIR")
    delivery_max_attempts: int = Field(
        default=8, ge=1, le=100, validation_alias="PETITIONS_NOTIFY_DELIVERY_MAX_ATTEMPTS"
    )
    # First retry after about this long, doubling each time up to `retry_max_s`.
    retry_base_s: float = Field(
        default=30.0, gt=0, validation_alias="PETITIONS_NOTIFY_RETRY_BASE_S"
    )
    retry_max_s: float = Field(
        default=3600.0, gt=0, validation_alias="PETITIONS_NOTIFY_RETRY_MAX_S"
    )
    # A claimed notification is invisible to other workers this long; a worker that dies while
    # sending lets it come back after the lease.
    delivery_lease_s: float = Field(
        default=120.0, gt=0, validation_alias="PETITIONS_NOTIFY_DELIVERY_LEASE_S"
    )
    # On a normal stop, sends under way get this long to finish and be recorded (a send cut
    # short is set aside as in doubt); messages claimed but not begun are handed back at once.
    delivery_stop_grace_s: float = Field(
        default=8.0, ge=0, validation_alias="PETITIONS_NOTIFY_DELIVERY_STOP_GRACE_S"
    )
    delivery_poll_s: float = Field(
        default=1.0, gt=0, validation_alias="PETITIONS_NOTIFY_DELIVERY_POLL_S"
    )
    # Rows claimed per round (a batch's contacts are asked of intake in one request) and how
    # many of them are sent at once (SMTP connections, webhook calls, mailbox writes).
    delivery_batch_size: int = Field(
        default=100, ge=1, le=1000, validation_alias="PETITIONS_NOTIFY_DELIVERY_BATCH_SIZE"
    )
    delivery_concurrency: int = Field(
        default=20, ge=1, le=500, validation_alias="PETITIONS_NOTIFY_DELIVERY_CONCURRENCY"
    )
    # A look-up that found no directory (intake or routing down or slow) is retried after
    # between half of this and this, doubling each time up to `retry_max_s`, without spending
    # a delivery attempt.
    lookup_retry_s: float = Field(
        default=2.0, gt=0, validation_alias="PETITIONS_NOTIFY_LOOKUP_RETRY_S"
    )
    contact_lookup_timeout_s: float = Field(
        default=2.0, gt=0, validation_alias="PETITIONS_NOTIFY_CONTACT_LOOKUP_TIMEOUT_S"
    )
    # Channels, preferences, quiet hours, batching, meetings; unset means the shipped demo file.
    channels_file: Path | None = Field(
        default=None, validation_alias="PETITIONS_NOTIFY_CHANNELS_FILE"
    )
    # Overrides the channels file's batching window (0: every message at once).
    batch_window_minutes: float | None = Field(
        default=None, ge=0, le=24 * 60, validation_alias="PETITIONS_NOTIFY_BATCH_WINDOW_MINUTES"
    )
    # Signs every webhook (HMAC-SHA256); receivers hold the same secret.
    webhook_secret: SecretStr = Field(
        default=SecretStr(DEMO_WEBHOOK_SECRET), validation_alias="PETITIONS_NOTIFY_WEBHOOK_SECRET"
    )
    # How often the meeting-digest schedule is looked at.
    schedule_poll_s: float = Field(
        default=60.0, gt=0, validation_alias="PETITIONS_NOTIFY_SCHEDULE_POLL_S"
    )
    # End-to-end tests move time forward in every service at once by writing to this file.
    clock_file: str | None = Field(default=None, validation_alias="PETITIONS_CLOCK_FILE")

    @field_validator("database_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_database_url(value)

    @model_validator(mode="after")
    def _production_is_real(self) -> Self:
        if self.env == "production" and self.clock_file:
            raise ValueError(
                "PETITIONS_CLOCK_FILE: đồng hồ thử nghiệm bị cấm trong production / "
                "the test clock is refused in production"
            )
        if self.env == "production" and self.embedded_mailbox:
            # The demo mailbox keeps every message, residents' addresses and tracking links
            # included, in files anyone on the machine reads (and at /mail in development).
            raise ValueError(
                "PETITIONS_SMTP_HOST: production gửi thư qua máy chủ SMTP, không dùng hộp thư "
                "thử nghiệm / production sends mail through an SMTP server; the demo mailbox "
                "is refused"
            )
        return self

    @property
    def webhook_secret_is_weak(self) -> bool:
        """The demo secret or a short one: refused in production when any webhook is configured."""
        secret = self.webhook_secret.get_secret_value()
        return secret == DEMO_WEBHOOK_SECRET or len(secret) < 32

    @property
    def mailbox_dir(self) -> Path:
        """Where the embedded mailbox writes: `PETITIONS_MAIL_DIR`, else `<var_dir>/mail`."""
        return self.mail_dir or self.var_dir / "mail"

    @property
    def embedded_mailbox(self) -> bool:
        return not self.smtp_host
