"""A resident on a phone, in a real Chromium: the form, a server-side error that keeps what was
typed, and the tracking page that follows the case."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.stack import Stack
from tests.support import eventually_sync

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_resident_submits_from_a_phone_and_follows_the_case(
    sqlite_stack: Stack, page: object, tmp_path: Path
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(sqlite_stack.url("intake") + "/")
    expect(page.locator("h1")).to_contain_text("phản ánh", ignore_case=True)

    page.select_option("#unit_id", "my-hoa-hung-my-khanh-2")
    page.select_option("#category_id", "roads_lighting")
    page.fill("#title", "   ")  # passes the browser's `required`, refused by the server
    page.fill("#description", "Đèn đầu hẻm 3 <b>không sáng</b>")
    page.fill("#email", "mai@example.org")
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    # The server's error keeps everything typed.
    expect(page.locator("#title-error")).to_be_visible()
    expect(page.locator("#description")).to_have_value("Đèn đầu hẻm 3 <b>không sáng</b>")
    expect(page.locator("#email")).to_have_value("mai@example.org")

    page.fill("#title", "Đèn đường hẻm 3 không sáng")
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/track/"))
    body = page.locator("body")
    expect(body).to_contain_text("PA-")
    expect(body).to_contain_text("<b>không sáng</b>")  # shown as text, never as HTML
    page.screenshot(path=str(tmp_path / "tracking.png"), full_page=True)

    # Routing assigns it; the tracking page says so on reload.
    def assigned() -> bool:
        page.reload()
        return "Đã giao" in (page.text_content("body") or "")

    eventually_sync(assigned, timeout=30, interval=0.3, what="tracking page shows the assignment")
