"""The demo mailbox: in development without SMTP, whoever runs the demo opens it to see what
residents and members would receive. It needs no sign-in, says so, and never exists in
production (it holds residents' addresses)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from services.notify.channels import mailbox_entries, read_mailbox_text
from services.notify.deps import SettingsDep
from services.notify.web.pages import mailbox_dir, not_found, render
from shared.webkit.pages import Pages

router = APIRouter(include_in_schema=False)


@router.get("/mail", response_class=HTMLResponse)
async def mailbox(request: Request, kit: Pages, settings: SettingsDep) -> HTMLResponse:
    directory = mailbox_dir(settings)
    if directory is None:
        return not_found(kit, request, settings, None, "no_mailbox")
    entries = mailbox_entries(directory)
    return render(kit, request, settings, "mailbox.html", None, entries=entries)


@router.get("/mail/{name}", response_class=HTMLResponse)
async def mail(request: Request, name: str, kit: Pages, settings: SettingsDep) -> HTMLResponse:
    directory = mailbox_dir(settings)
    found = read_mailbox_text(directory, name) if directory else None
    if found is None:
        return not_found(kit, request, settings, None, "no_message")
    headers, text = found
    return render(
        kit, request, settings, "message.html", None, mail_name=name, headers=headers, text=text
    )


@router.get("/mail/{name}/raw")
async def raw_mail(request: Request, name: str, kit: Pages, settings: SettingsDep) -> Response:
    directory = mailbox_dir(settings)
    if directory is None or read_mailbox_text(directory, name) is None:
        return not_found(kit, request, settings, None, "no_message")
    return FileResponse(directory / name, media_type="message/rfc822", filename=name)
