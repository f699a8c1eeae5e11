"""A member on a phone, in a real Chromium without JavaScript: the link in their assignment email
leads through sign-in to the case, they accept and resolve it, and the resident's tracking shows
it resolved. The three services run as separate processes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.stack import Stack
from tests.e2e.client import DEMO_PETITION, mails
from tests.e2e.conftest import make_stack
from tests.support import eventually_sync

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(os.environ.get("PETITIONS_SCREENSHOTS", "/tmp/workspace-shots"))


@pytest.fixture
def sqlite_stack(tmp_path: Path) -> Iterator[Stack]:
    s = make_stack(tmp_path / "var")
    s.start()
    try:
        s.wait_ready(timeout=90)
        yield s
    finally:
        s.stop()


@pytest.fixture
def page() -> Iterator[object]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs it")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, java_script_enabled=False
        )
        yield context.new_page()
        context.close()
        browser.close()


def test_member_follows_the_email_link_accepts_and_resolves_on_a_phone(
    sqlite_stack: Stack, page: object
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    SHOTS.mkdir(parents=True, exist_ok=True)
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
        page.screenshot(path=str(SHOTS / "1-signin-error.png"), full_page=True)
        page.fill("#password", "demo")
        page.click("button[type=submit]")
        expect(page).to_have_url(link)
        expect(page.locator("#description")).to_have_text("Đèn đầu hẻm 3 <b>không sáng</b>")
        expect(page.locator("#status")).to_contain_text("đã giao, chờ nhận")

        page.goto(f"{routing}/cases")
        expect(page.locator("ul.cases")).to_contain_text(DEMO_PETITION["title"])
        expect(page.locator("ul.cases")).to_contain_text("Hạn nhận")
        page.screenshot(path=str(SHOTS / "3-my-cases.png"), full_page=True)
        page.goto(link)

        page.click("#accept")
        expect(page.locator("[role=status]")).to_contain_text("Đã nhận hồ sơ.")
        expect(page.locator("#status")).to_contain_text("đang xử lý")
        page.screenshot(path=str(SHOTS / "2-case-accepted.png"), full_page=True)

        page.fill("#explanation", "Điện lực đã thay bóng đèn đầu hẻm 3.")
        page.click("#resolve")
        expect(page.locator("[role=status]")).to_contain_text("Đã báo giải quyết.")

        page.goto(f"{routing}/cases?status=resolved")
        expect(page.locator("ul.cases")).to_contain_text(DEMO_PETITION["title"])

        def tracking_resolved() -> bool:
            view = http.get(f"{intake}/api/v1/track/{petition['tracking_token']}").json()
            return bool(view["status"] == "resolved")

        eventually_sync(tracking_resolved, timeout=30, interval=0.2, what="tracking resolved")
