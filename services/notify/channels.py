"""Email: the bilingual messages and the two ways they leave, an embedded mailbox (a folder of
`.eml` files a demo user can open) or an SMTP server."""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TEMPLATES_DIR = Path(__file__).parent / "templates"
MAILBOX_NAME = re.compile(r"^[0-9]{8}-[a-z_]+\.eml$")

SUBJECTS: dict[str, tuple[str, str]] = {
    "case_assigned": ("Phản ánh mới giao cho bạn", "New case assigned to you"),
    "case_resolved": ("Đã được giải quyết", "Resolved"),
}


def local_time(value: datetime | str | None) -> str:
    """`dd/mm/yyyy HH:MM` in Asia/Ho_Chi_Minh, how people here read a time."""
    if value is None:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M")


def template_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        # HTML parts escape everything; a resident's or member's text is never markup.
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["local_time"] = local_time
    return env


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


def render_email(env: Environment, template: str, context: dict[str, Any]) -> EmailContent:
    """Vietnamese first, English second, as plain text and HTML."""
    vi, en = SUBJECTS[template]
    subject = f"[Phản ánh {context['reference']}] {vi} / {en}"
    return EmailContent(
        subject=subject,
        text=env.get_template(f"email/{template}.txt").render(context),
        html=env.get_template(f"email/{template}.html").render(context),
    )


def build_message(
    content: EmailContent, *, sender: str, to: str, message_id: str, now: datetime
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = content.subject
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["Content-Language"] = "vi, en"
    msg.set_content(content.text)
    msg.add_alternative(content.html, subtype="html")
    return msg


class EmailChannel(Protocol):
    async def send(self, message: EmailMessage, *, name: str) -> None:
        """Deliver `message`; `name` identifies it stably across retries. Raises on failure."""


class MailboxChannel:
    """Writes each message to `<dir>/<name>.eml`. The name is the notification's, so a retry
    after a crash overwrites the same file instead of adding a second copy."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: EmailMessage, *, name: str) -> None:
        await asyncio.to_thread(self._write, bytes(message), f"{name}.eml")

    def _write(self, data: bytes, filename: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / filename
        tmp = self.directory / f".{filename}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # Readers see the whole message or none of it.
        os.replace(tmp, final)


class SmtpChannel:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        starttls: bool,
        timeout_s: float,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout_s = timeout_s

    async def send(self, message: EmailMessage, *, name: str) -> None:
        await aiosmtplib.send(
            message,
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            start_tls=self._starttls,
            use_tls=False,
            timeout=self._timeout_s,
        )


def mailbox_entries(directory: Path, *, limit: int = 200) -> list[dict[str, str]]:
    """The embedded mailbox, newest first: file name and the headers a reader scans for."""
    from email import policy
    from email.parser import BytesHeaderParser

    if not directory.is_dir():
        return []
    files = sorted(
        (p for p in directory.iterdir() if MAILBOX_NAME.match(p.name)),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )[:limit]
    parser = BytesHeaderParser(policy=policy.default)
    entries = []
    for path in files:
        headers = parser.parsebytes(path.read_bytes())
        entries.append(
            {
                "name": path.name,
                "to": str(headers.get("To", "")),
                "subject": str(headers.get("Subject", "")),
                "date": str(headers.get("Date", "")),
            }
        )
    return entries


def read_mailbox_text(directory: Path, name: str) -> tuple[dict[str, str], str] | None:
    """Headers and the plain-text body of one mailbox file; None for an unknown or unsafe name."""
    from email import policy
    from email.parser import BytesParser

    if not MAILBOX_NAME.match(name):
        return None
    path = directory / name
    if not path.is_file():
        return None
    msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    body = msg.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    headers = {k: str(msg.get(k, "")) for k in ("From", "To", "Subject", "Date", "Message-ID")}
    return headers, str(text)
