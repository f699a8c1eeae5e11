"""Account emails: a one-time link to set a password (an invitation or a reset), sent to the
member's work address when routing says one was asked for.

The event carries no token. Just before sending, notify asks routing for the link
(`rpc.routing.account_link.v1`): routing mints a token for this message and keeps only its
hash. The link is put in the message and nowhere else: no notification row, no timeline, no
log line holds it (the demo mailbox in development is the recipient's inbox). A redelivered
event asks again: routing mints a new token and the earlier one stops working, so at most one
link of a request works; a link already used or expired is not sent at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.events import AccountLinkRequested
from shared.runtime import Runtime

from .channels import Channel, Outgoing, Recipient, Templates, render
from .directory import Directory

log = structlog.get_logger(__name__)


def when_account_link_requested_email_it(
    directory: Directory, templates: Templates, email: Channel
) -> Callable[[AsyncConnection, AccountLinkRequested], Awaitable[None]]:
    async def handle(conn: AsyncConnection, event: AccountLinkRequested) -> None:
        reply = await directory.account_link(event.link_id)
        if not reply.found or not reply.email or not reply.url:
            log.info("account_link_not_sent", link_id=event.link_id, why="used_or_expired")
            return
        content = render(
            templates,
            f"account_{reply.kind or 'reset'}",
            {
                "recipient_name": reply.name,
                "username": reply.username,
                "link": reply.url,
                "expires_at": datetime.fromisoformat(reply.expires_at or "")
                if reply.expires_at
                else event.expires_at,
            },
        )
        await email.send(
            Outgoing(
                key=f"account-link:{event.link_id}",
                # The mailbox's naming (`<8 digits>-<template>`), the digits from the link's id:
                # a redelivery overwrites the same file.
                name=f"{int(event.link_id[:8], 16) % 10**8:08d}-account_{reply.kind or 'reset'}",
                recipient=Recipient(
                    kind="member", ref=event.member_id, name=reply.name, email=reply.email
                ),
                content=content,
                petition_id=None,
                references=(),
            )
        )
        log.info("account_link_sent", link_id=event.link_id, member_id=event.member_id)

    handle.__name__ = "when_account_link_requested_email_it"
    return handle


def register_account_handlers(
    runtime: Runtime, directory: Directory, templates: Templates, email: Channel
) -> None:
    runtime.consumers.add(
        AccountLinkRequested,
        when_account_link_requested_email_it(directory, templates, email),
        name="account-links",
    )
