"""The signed-in member's in-app inbox: messages newest first, the unread count the workspace
shows, and marking read. Only one's own messages; an account not tied to a member has none.

No `from __future__ import annotations` here: FastAPI must see the `Annotated` dependencies
and pydantic the models as objects rather than strings.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from shared.auth import Staff
from shared.web import AppRuntime, CurrentStaff, problem_responses

from .. import inbox
from ..errors import MessageNotFound, NotAMember
from .notifications import RowId
from .openapi import links, operation_id


class InboxMessage(BaseModel):
    id: int
    petition_id: str | None = Field(description="none for a meeting digest")
    template: str
    title_vi: str
    title_en: str
    body_vi: str
    body_en: str
    link: str | None
    created_at: datetime
    read_at: datetime | None


class Inbox(BaseModel):
    unread: int
    messages: list[InboxMessage]


class UnreadCount(BaseModel):
    unread: int


class InboxQuery(BaseModel):
    """`unread=true` lists only what is not read yet; at most `limit`, newest first."""

    unread: bool = False
    limit: int = Field(default=50, ge=1, le=200)


router = APIRouter(prefix="/api/v1/inbox", tags=["inbox"], generate_unique_id_function=operation_id)


def member_of(staff: Staff) -> str:
    if not staff.member_id:
        raise NotAMember
    return staff.member_id


@router.get(
    "",
    responses={
        **problem_responses(401, 403),
        **links(read=("read_message", {"message_id": "$response.body#/messages/0/id"})),
    },
)
async def my_inbox(
    staff: CurrentStaff, runtime: AppRuntime, query: Annotated[InboxQuery, Query()]
) -> Inbox:
    """The signed-in member's in-app notifications, newest first, and the unread count."""
    member_id = member_of(staff)
    unread, rows = await inbox.messages(
        runtime.engine, member_id, unread_only=query.unread, limit=query.limit
    )
    return Inbox(unread=unread, messages=[InboxMessage.model_validate(row) for row in rows])


@router.get("/unread-count", responses=problem_responses(401, 403))
async def my_unread_count(staff: CurrentStaff, runtime: AppRuntime) -> UnreadCount:
    """How many of the member's messages are not read yet."""
    return UnreadCount(unread=await inbox.unread_count(runtime.engine, member_of(staff)))


@router.post("/{message_id}/read", responses=problem_responses(401, 403, 404))
async def read_message(message_id: RowId, staff: CurrentStaff, runtime: AppRuntime) -> UnreadCount:
    """Mark one of the member's messages read; answers the unread count left."""
    member_id = member_of(staff)
    if not await inbox.owns(runtime.engine, member_id, message_id):
        raise MessageNotFound
    await inbox.mark_read(runtime.engine, member_id, now=runtime.clock.now(), message_id=message_id)
    return UnreadCount(unread=await inbox.unread_count(runtime.engine, member_id))


@router.post("/read-all", responses=problem_responses(401, 403))
async def read_all(staff: CurrentStaff, runtime: AppRuntime) -> UnreadCount:
    """Mark every message of the member read."""
    member_id = member_of(staff)
    await inbox.mark_read(runtime.engine, member_id, now=runtime.clock.now())
    return UnreadCount(unread=0)
