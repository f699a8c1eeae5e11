"""How messages are worded and how they leave: Vietnamese and English templates, email (an
embedded mailbox of `.eml` files or an SMTP server, HTML and text), and signed JSON webhooks for
an SMS or Zalo gateway or a city system. The in-app inbox is written by `inbox.py`.

A channel raises `Unreachable` when the person has no address on it, `PermanentDeliveryError`
when retrying cannot help (a 4xx from a webhook, a mailbox that does not exist), `MaybeDelivered`
when the message was handed over and the receiver's answer never came (it may have arrived: a
retry could send it twice), and anything else for a failure worth retrying.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import aiosmtplib
import httpx
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import Default
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape
from markupsafe import escape

from shared.webkit.times import format_local, format_local_date

TEMPLATES_DIR = Path(__file__).parent / "templates"
MAILBOX_NAME = re.compile(r"^[0-9]{8}-[a-z_]+\.eml$")
LANGUAGES = ("vi", "en")
EMAIL_CHANNEL = "email"
SIGNATURE_HEADER = "X-Petitions-Signature"
TIMESTAMP_HEADER = "X-Petitions-Timestamp"
DELIVERY_HEADER = "X-Petitions-Delivery"
# A receiver refuses a webhook whose timestamp is further than this from its own clock.
SIGNATURE_TOLERANCE_S = 300
_URL = re.compile(r"https?://[^\s<>\"]+")


class Unreachable(Exception):
    """This person has no address on this channel; the next channel may reach them."""


class PermanentDeliveryError(Exception):
    """The channel refused the message in a way a retry cannot change."""


class MaybeDelivered(Exception):
    """The whole message went to the receiver, whose answer never came (a timeout, a dropped
    connection): it may have been accepted, so it is not retried on its own."""


def _environment(*, html: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        # The HTML environment escapes everything: a resident's or member's text is never markup.
        autoescape=select_autoescape(enabled_extensions=(), default=html, default_for_string=html),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # The messages' templates say `local_time`; the format is the pages' one.
    env.filters["local_time"] = format_local
    env.filters["local_date"] = format_local_date
    return env


@dataclass(frozen=True)
class Templates:
    text: Environment
    html: Environment


def template_environment() -> Templates:
    return Templates(text=_environment(html=False), html=_environment(html=True))


@dataclass(frozen=True)
class Localised:
    subject: str
    body: str
    short: str
    html: str


@dataclass(frozen=True)
class Content:
    """One message in both languages; Vietnamese first wherever both are shown."""

    template: str
    reference: str | None
    vi: Localised
    en: Localised

    def lang(self, language: str) -> Localised:
        return self.en if language == "en" else self.vi

    @property
    def subject(self) -> str:
        both = f"{self.vi.subject} / {self.en.subject}"
        return f"[Phản ánh {self.reference}] {both}" if self.reference else both

    @property
    def text(self) -> str:
        return f"{self.vi.body}\n\n---\n\n{self.en.body}\n\n-- \nPetitions\n"

    @property
    def html(self) -> str:
        return (
            '<!doctype html>\n<html lang="vi">\n'
            '<body style="font-family: sans-serif; line-height: 1.5">\n'
            f'{self.vi.html}\n<hr>\n<div lang="en">\n{self.en.html}\n</div>\n'
            "</body>\n</html>\n"
        )


def _block(template: Template, name: str, context: Mapping[str, Any]) -> str:
    ctx = template.new_context(dict(context))
    return "".join(template.blocks[name](ctx)).strip()


def text_to_html(text: str) -> str:
    """Paragraphs of escaped text, links made clickable: the HTML part of a plain message."""
    paragraphs = []
    for para in re.split(r"\n\s*\n", text.strip()):
        escaped = str(escape(para))
        linked = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    return "\n".join(paragraphs)


def render(templates: Templates, template: str, context: Mapping[str, Any]) -> Content:
    """Render `messages/<lang>/<template>.j2` (blocks `subject`, `body`, `short`, optional
    `html`) in Vietnamese and English."""
    parts: dict[str, Localised] = {}
    for language in LANGUAGES:
        path = f"messages/{language}/{template}.j2"
        text_t = templates.text.get_template(path)
        body = _block(text_t, "body", context)
        if "html" in text_t.blocks:
            html = _block(templates.html.get_template(path), "html", context)
        else:
            html = text_to_html(body)
        parts[language] = Localised(
            subject=_block(text_t, "subject", context),
            body=body,
            short=_block(text_t, "short", context),
            html=html,
        )
    reference = context.get("reference")
    return Content(
        template=template,
        reference=str(reference) if reference else None,
        vi=parts["vi"],
        en=parts["en"],
    )


@dataclass(frozen=True)
class Recipient:
    """Who a message is for, with the addresses known for this one delivery (a resident's come
    from intake just before sending and are forgotten afterwards)."""

    kind: str
    ref: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    language: str = "vi"


@dataclass(frozen=True)
class Outgoing:
    """One message on one channel. `key` is stable across retries (the idempotency key, or the
    batch's), so receivers can recognise a repeat."""

    key: str
    name: str
    recipient: Recipient
    content: Content
    petition_id: str | None
    references: tuple[str, ...]


class Channel(Protocol):
    async def send(self, message: Outgoing) -> None:
        """Deliver or raise (`Unreachable`, `PermanentDeliveryError`, or anything transient)."""


def message_id(key: str, *, domain: str = "petitions.local") -> str:
    """A stable Message-ID, so a mail that is sent twice (crash between send and commit) can be
    recognised as one by the receiving side."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    return f"<{digest}@{domain}>"


def build_message(
    content: Content, *, sender: str, to: str, message_id: str, now: datetime
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


class MailTransport(Protocol):
    async def send(self, message: EmailMessage, *, name: str) -> None: ...


class MailboxTransport:
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


class _Smtp(aiosmtplib.SMTP):
    """An SMTP client that says when a failure came after the message's content was handed
    over (the DATA command's final answer lost): the server may have queued it. A failure
    before that (no 354 to DATA) is an ordinary, retryable one."""

    async def data(
        self,
        message: str | bytes,
        /,
        *,
        timeout: float | Literal[Default.token] | None = Default.token,
    ) -> SMTPResponse:
        protocol = self.protocol
        writes = 0
        if protocol is not None:
            write = protocol.write

            def counted(data: bytes) -> None:
                nonlocal writes
                writes += 1
                write(data)

            # The DATA command is the first write, the content the second.
            protocol.write = counted  # type: ignore[method-assign]
        try:
            return await super().data(message, timeout=timeout)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
            if writes < 2:
                raise
            raise MaybeDelivered(
                f"SMTP: {type(exc).__name__} sau khi gửi nội dung / after the content was sent"
            ) from exc
        finally:
            if protocol is not None:
                protocol.write = write  # type: ignore[method-assign]


class SmtpTransport:
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
        client = _Smtp(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            start_tls=self._starttls,
            use_tls=False,
            timeout=self._timeout_s,
        )
        try:
            async with client:
                await client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # 5xx for every recipient: the mailbox does not exist; 4xx is worth another try.
            if all(500 <= r.code < 600 for r in exc.recipients):
                raise PermanentDeliveryError(
                    f"SMTP từ chối người nhận / recipient refused ({exc.recipients[0].code})"
                ) from None
            raise


class EmailChannel:
    def __init__(
        self, transport: MailTransport, *, sender: str, clock_now: Callable[[], datetime]
    ) -> None:
        self.transport = transport
        self._sender = sender
        self._now = clock_now

    async def send(self, message: Outgoing) -> None:
        if not message.recipient.email:
            raise Unreachable("không có địa chỉ email / no email address")
        mail = build_message(
            message.content,
            sender=self._sender,
            to=message.recipient.email,
            message_id=message_id(message.key),
            now=self._now(),
        )
        await self.transport.send(mail, name=message.name)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=<hex>`: HMAC-SHA256 over `<timestamp>.<body>`, so a captured request cannot be
    replayed later with a new timestamp."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify_signature(
    secret: str,
    *,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float,
    tolerance_s: float = SIGNATURE_TOLERANCE_S,
) -> bool:
    """What a receiver checks: a fresh timestamp and a matching signature."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


class WebhookChannel:
    """POSTs the message as JSON, signed and timestamped. 2xx is delivered; 408, 429, 5xx and
    network errors are retried; any other answer is permanent."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        secret: str,
        needs_phone: bool,
        timeout_s: float,
        wall_clock: Callable[[], float] = time.time,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = name
        self._url = url
        self._secret = secret
        self._needs_phone = needs_phone
        self._timeout_s = timeout_s
        # Real time, not the service's (injectable) clock: the receiver checks freshness
        # against its own wall clock.
        self._wall_clock = wall_clock
        self._client = client

    def payload(self, message: Outgoing) -> dict[str, Any]:
        r = message.recipient
        local = message.content.lang(r.language)
        recipient: dict[str, Any] = {"kind": r.kind, "language": r.language}
        if r.kind == "member":
            recipient["member_id"] = r.ref
            recipient["name"] = r.name
        if self._needs_phone:
            recipient["phone"] = r.phone
        return {
            "id": message.key,
            "channel": self.name,
            "template": message.content.template,
            "petition_id": message.petition_id,
            "references": list(message.references),
            "recipient": recipient,
            "subject": local.subject,
            "text": local.short,
            "text_vi": message.content.vi.short,
            "text_en": message.content.en.short,
        }

    async def send(self, message: Outgoing) -> None:
        if self._needs_phone and not message.recipient.phone:
            raise Unreachable("không có số điện thoại / no phone number")
        body = json.dumps(self.payload(message), ensure_ascii=False).encode()
        timestamp = int(self._wall_clock())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            DELIVERY_HEADER: hashlib.sha256(message.key.encode()).hexdigest()[:40],
            "User-Agent": "petitions-notify/1",
        }
        try:
            if self._client is not None:
                response = await self._client.post(
                    self._url, content=body, headers=headers, timeout=self._timeout_s
                )
            else:
                async with httpx.AsyncClient() as client:
                    response = await client.post(
                        self._url, content=body, headers=headers, timeout=self._timeout_s
                    )
        except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError) as exc:
            # The request was written; the answer never came: the receiver may have acted.
            raise MaybeDelivered(
                f"webhook {self.name}: {type(exc).__name__} sau khi gửi / after the request was sent"
            ) from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        reason = f"webhook {self.name} trả lời / answered HTTP {status}"
        if status in (408, 429) or status >= 500:
            raise RuntimeError(reason)
        raise PermanentDeliveryError(reason)


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
