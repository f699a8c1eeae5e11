"""notify's side of a one-time account link: it asks routing for the link as it sends, puts it
in one email (Vietnamese first, English second) to the member's work address, and sends
nothing for a link that is used or expired. Nothing of it goes to notify's database: the
handler is given no connection it writes to."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.notify.accounts import when_account_link_requested_email_it
from services.notify.channels import Outgoing, template_environment
from shared.events import AccountLinkRequested, account_petition_id
from shared.rpc import AccountLinkReply

URL = "http://127.0.0.1:8001/account/link/abc.secret-token"


class FakeDirectory:
    def __init__(self, reply: AccountLinkReply) -> None:
        self.reply = reply
        self.asked: list[str] = []

    async def account_link(self, link_id: str) -> AccountLinkReply:
        self.asked.append(link_id)
        return self.reply


class FakeEmail:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> None:
        self.sent.append(message)


class NoDatabase:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the account handler touched the database ({name})")


def event(kind: str = "reset") -> AccountLinkRequested:
    link_id = uuid.uuid4().hex
    return AccountLinkRequested.new(
        producer="routing",
        petition_id=account_petition_id(link_id),
        link_id=link_id,
        member_id="buihoangluc",
        kind=kind,
        expires_at=datetime.now(UTC) + timedelta(hours=24),
        requested_by="admin",
    )


async def test_the_link_is_asked_for_and_emailed_once_in_both_languages() -> None:
    expires = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    directory = FakeDirectory(
        AccountLinkReply(
            found=True,
            kind="reset",
            url=URL,
            username="buihoangluc",
            name="Bùi Hoàng Lực",
            email="buihoangluc@example.org",
            expires_at=expires.isoformat(),
        )
    )
    email = FakeEmail()
    handle = when_account_link_requested_email_it(
        directory,  # type: ignore[arg-type]
        template_environment(),
        email,
    )
    happened = event()
    await handle(NoDatabase(), happened)  # type: ignore[arg-type]
    assert directory.asked == [happened.link_id]
    (message,) = email.sent
    assert message.recipient.email == "buihoangluc@example.org"
    assert message.content.subject.startswith("Đặt lại mật khẩu")
    text = message.content.text
    assert text.index("Kính gửi Bùi Hoàng Lực") < text.index("Dear Bùi Hoàng Lực")
    assert text.count(URL) == 2
    assert "02/12/2026 10:00" in text  # Vietnam time
    assert message.name.endswith("-account_reset")


async def test_a_used_or_expired_link_is_not_sent() -> None:
    email = FakeEmail()
    handle = when_account_link_requested_email_it(
        FakeDirectory(AccountLinkReply(found=False)),  # type: ignore[arg-type]
        template_environment(),
        email,
    )
    await handle(NoDatabase(), event("invite"))  # type: ignore[arg-type]
    assert email.sent == []
