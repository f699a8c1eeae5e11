"""A member on a phone, in a real Chromium without JavaScript: the link in their assignment email
leads through sign-in to the case, they accept and resolve it, and the resident's tracking shows
it resolved. The three services run as separate processes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.stack import Stack
from tests.e2e.client import DEMO_PETITION, mails
from tests.support import eventually_sync

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# Screenshots for a person to look at, when asked for.
SHOTS = (
    Path(os.environ["PETITIONS_SCREENSHOTS"]) if os.environ.get("PETITIONS_SCREENSHOTS") else None
)


def test_member_follows_the_email_link_accepts_and_resolves_on_a_phone(
    sqlite_stack: Stack, page: object, tmp_path: Path
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    shots = SHOTS or tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    intake, routing = sqlite_stack.url("intake"), sqlite_stack.url("routing")
    with httpx.Client(timeout=15.0) as http:
        submitted = http.post(
            f"{intake}/api/v1/petitions",
            json={**DEMO_PETITION, "description": "Đèn đầu hẻm 3 <b>không sáng</b>"},
        )
        assert submitted.status_code == 201, submitted.text
        petition = submitted.json()
        token = http.post(
            f"{routing}/api/v1/auth/token", data={"username": "admin", "password": "demo"}
        ).json()["access_token"]

        def assigned_case() -> dict[str, Any] | None:
            cases = http.get(
                f"{routing}/api/v1/cases",
                params={"scope": "unit", "petition_id": petition["petition_id"]},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            return cases[0] if cases and cases[0]["status"] == "assigned" else None

        case = eventually_sync(assigned_case, timeout=30, interval=0.2, what="case assigned")
        link = f"{routing}/cases/{case['id']}"

        def emailed() -> bool:
            return any(
                link in m and petition["reference"] in m for m in mails(sqlite_stack.var_dir)
            )

        eventually_sync(emailed, timeout=30, interval=0.2, what="assignment email with the link")

        # The email's link, signed out: sign-in first, then straight back to the case.
        page.goto(link)
        expect(page).to_have_url(f"{routing}/signin?next=%2Fcases%2F{case['id']}")
        page.fill("#username", case["holder_username"])
        page.fill("#password", "wrong")
        page.click("button[type=submit]")
        expect(page.locator("[role=alert]")).to_contain_text("Sai tên đăng nhập hoặc mật khẩu")
        expect(page.locator("#username")).to_have_value(case["holder_username"])
        page.screenshot(path=str(shots / "1-signin-error.png"), full_page=True)
        page.fill("#password", "demo")
        page.click("button[type=submit]")
        expect(page).to_have_url(link)
        expect(page.locator("#description")).to_have_text("Đèn đầu hẻm 3 <b>không sáng</b>")
        expect(page.locator("#status")).to_contain_text("đã giao, chờ nhận")

        page.goto(f"{routing}/cases")
        expect(page.locator("ul.cases")).to_contain_text(DEMO_PETITION["title"])
        expect(page.locator("ul.cases")).to_contain_text("Hạn nhận")
        page.screenshot(path=str(shots / "3-my-cases.png"), full_page=True)
        page.goto(link)

        page.click("#accept")
        expect(page.locator("[role=status]")).to_contain_text("Đã nhận hồ sơ.")
        expect(page.locator("#status")).to_contain_text("đang xử lý")
        page.screenshot(path=str(shots / "2-case-accepted.png"), full_page=True)

        page.fill("#explanation", "Điện lực đã thay bóng đèn đầu hẻm 3.")
        page.click("#resolve")
        expect(page.locator("[role=status]")).to_contain_text("Đã báo giải quyết.")

        page.goto(f"{routing}/cases?status=resolved")
        expect(page.locator("ul.cases")).to_contain_text(DEMO_PETITION["title"])

        def tracking_resolved() -> bool:
            view = http.get(f"{intake}/api/v1/track/{petition['tracking_token']}").json()
            return bool(view["status"] == "resolved")

        eventually_sync(tracking_resolved, timeout=30, interval=0.2, what="tracking resolved")

        # The same session opens notify's dashboard (cookies do not depend on the port), in
        # Vietnamese first, and its switch turns that page, and the next ones, into English.
        page.goto(f"{sqlite_stack.url('notify')}/")
        expect(page.locator("h1")).to_have_text("Bảng điều khiển lãnh đạo")
        page.click("a.lang")
        expect(page.locator("h1")).to_have_text("Leadership dashboard")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.screenshot(path=str(shots / "4-dashboard-english.png"), full_page=True)
        page.goto(f"{routing}/cases")
        expect(page.locator("h1")).to_have_text("My cases")
