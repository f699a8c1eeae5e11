"""Accounts in a real Chromium without JavaScript, the three services as processes: a member
changes their password (their other session ends at once), an administrator emails another
member a reset link, which arrives in the embedded mailbox and, opened there, sets a new
password (the policy applies) and signs the member in, once."""

from __future__ import annotations

import re

import httpx
import pytest

from services.stack import Stack
from tests.e2e.client import mails
from tests.support import eventually_sync

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

NEW = "cầu Ông Chưởng mùa nước nổi"
RESET = "đèn đường hẻm ba sáng lại rồi"


def test_password_change_and_a_reset_link_through_the_mailbox(
    sqlite_stack: Stack, page: object
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    routing, notify = sqlite_stack.url("routing"), sqlite_stack.url("notify")
    with httpx.Client(timeout=15.0) as http:
        elsewhere = http.post(
            f"{routing}/api/v1/auth/token", data={"username": "buihoangluc", "password": "demo"}
        ).json()["access_token"]
        other_device = {"Authorization": f"Bearer {elsewhere}"}
        assert http.get(f"{routing}/api/v1/me", headers=other_device).status_code == 200

        # The member changes their password on the page.
        page.goto(f"{routing}/signin")
        page.fill("#username", "buihoangluc")
        page.fill("#password", "demo")
        page.click("button[type=submit]")
        page.click("a[href='/me/password']")
        expect(page.locator("h1")).to_have_text("Đổi mật khẩu")
        page.fill("#current_password", "demo")
        page.fill("#new_password", "password1234")
        page.fill("#repeat_password", "password1234")
        page.click("button.primary")
        expect(page.locator("[role=alert]")).to_contain_text("mật khẩu phổ biến")
        expect(page.locator("[role=alert]")).to_contain_text("common, breached passwords")
        page.fill("#current_password", "demo")
        page.fill("#new_password", NEW)
        page.fill("#repeat_password", NEW)
        page.click("button.primary")
        expect(page.locator("[role=status]")).to_contain_text("Đã đổi mật khẩu")
        # This session goes on; the other device's ended at once.
        page.goto(f"{routing}/me/signins")
        expect(page.locator("table")).to_contain_text("Thành công")
        assert http.get(f"{routing}/api/v1/me", headers=other_device).status_code == 401
        page.click("form[action='/signout'] button")

        # An administrator emails dangthutai a reset link.
        page.goto(f"{routing}/signin")
        page.fill("#username", "admin")
        page.fill("#password", "demo")
        page.click("button[type=submit]")
        page.click("a[href='/members']")
        page.click("#member-dangthutai form button")
        expect(page.locator("[role=status]")).to_contain_text("Đã gửi liên kết")
        page.click("form[action='/signout'] button")

        def link_mail() -> bool:
            return any(
                "dangthutai@example.org" in m and "/account/link/" in m
                for m in mails(sqlite_stack.var_dir)
            )

        eventually_sync(link_mail, timeout=30, interval=0.2, what="the reset link emailed")

        # The member opens it from the embedded mailbox.
        page.goto(f"{notify}/mail")
        page.click("a[href$='-account_reset.eml']")
        expect(page.locator("h1")).to_contain_text("Đặt lại mật khẩu")
        body = page.locator(".mail-body").inner_text()
        found = re.search(rf"{re.escape(routing)}/account/link/\S+", body)
        assert found, body
        link = found.group(0)
        # The token is in the email and nowhere else: not on the stream (the NATS store), not
        # in any service's database or log; routing keeps its hash.
        secret = link.rsplit(".", 1)[1].encode()
        for path in sqlite_stack.var_dir.rglob("*"):
            if path.is_file() and "mail" not in path.relative_to(sqlite_stack.var_dir).parts:
                assert secret not in path.read_bytes(), path
        page.goto(link)
        expect(page.locator("h1")).to_have_text("Đặt mật khẩu mới")
        expect(page.locator("strong")).to_have_text("dangthutai")
        page.fill("#new_password", "Đặng Thu Tài")
        page.fill("#repeat_password", "Đặng Thu Tài")
        page.click("button.primary")
        expect(page.locator("[role=alert]")).to_contain_text("họ tên")
        page.fill("#new_password", RESET)
        page.fill("#repeat_password", RESET)
        page.click("button.primary")
        expect(page).to_have_url(f"{routing}/cases")
        page.click("form[action='/signout'] button")

        # Once only; the new password signs in.
        page.goto(link)
        expect(page.locator("[role=alert]")).to_contain_text("không còn hiệu lực")
        signed = http.post(
            f"{routing}/api/v1/auth/token", data={"username": "dangthutai", "password": RESET}
        )
        assert signed.status_code == 200, signed.text
