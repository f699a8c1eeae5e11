"""The demo mailbox: in development without SMTP, whoever runs the demo opens it to see what
residents and members would receive. It needs no sign-in, says so, and never exists in
production (it holds residents' addresses)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from services.notify.channels import mailbox_entries, read_mailbox_text
from services.notify.deps import SettingsDep
from services.notify.web.pages import mailbox_dir, render
from shared.webkit.pages import Pages

router = APIRouter(include_in_schema=False)


@router.get("/mail", response_class=HTMLResponse)
async def mailbox(request: Request, kit: Pages, settings: SettingsDep) -> HTMLResponse:
    entries = mailbox_entries(mailbox_dir(settings))
    return render(kit, request, settings, "mailbox.html", None, entries=entries)


@router.get("/mail/{name}", response_class=HTMLResponse)
async def mail(request: Request, name: str, kit: Pages, settings: SettingsDep) -> HTMLResponse:
    found = read_mailbox_text(mailbox_dir(settings), name)
    if found is None:
        raise HTTPException(404, "Không có thư này / No such message")
    headers, text = found
    return render(
        kit, request, settings, "message.html", None, mail_name=name, headers=headers, text=text
    )


@router.get("/mail/{name}/raw")
async def raw_mail(name: str, settings: SettingsDep) -> FileResponse:
    directory = mailbox_dir(settings)
    if read_mailbox_text(directory, name) is None:
        raise HTTPException(404, "Không có thư này / No such message")
    return FileResponse(directory / name, media_type="message/rfc822", filename=name)
