"""A resident on a phone, in a real Chromium, with the public rate limit on as in production:
a complaint (khiếu nại) is sent where it belongs and nothing is stored; a lost tracking link is
asked for again by reference and email and arrives by email (the petition carries a point,
typed with JavaScript off, linked to a map); thirty rapid submissions from one address are
refused after the limit."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.stack import Stack
from tests.e2e.client import mails
from tests.e2e.conftest import make_stack
from tests.support import eventually_sync

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

LIMIT = 10


@pytest.fixture
def guarded_stack(tmp_path: Path) -> Iterator[Stack]:
    """The stack on SQLite with the public rate limit at its default, per minute."""
    s = make_stack(tmp_path / "var", env={"PETITIONS_PUBLIC_RATE_LIMIT": f"{LIMIT}/minute"})
    s.start()
    try:
        s.wait_ready(timeout=90)
        yield s
    finally:
        s.stop()


def stored_petitions(stack: Stack) -> int:
    with sqlite3.connect(stack.var_dir / "intake.db") as db:
        return int(db.execute("SELECT count(*) FROM petitions").fetchone()[0])


def test_resident_is_guided_recovers_the_link_and_a_flood_is_refused(
    guarded_stack: Stack, page: object, tmp_path: Path
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    intake = guarded_stack.url("intake")

    # A complaint about a decision: told where to file it, in Vietnamese first; nothing stored.
    page.goto(intake + "/")
    page.check("input[name=kind][value=complaint]")
    page.select_option("#unit_id", "my-hoa-hung-my-khanh-2")
    page.select_option("#category_id", "land_construction")
    page.fill("#title", "Không đồng ý quyết định xử phạt")
    page.fill("#description", "Tôi không đồng ý với quyết định xử phạt hành chính.")
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    guidance = page.locator("[role=alert]")
    expect(guidance).to_contain_text("Luật Khiếu nại năm 2011")
    expect(guidance).to_contain_text("Law on Complaints (2011)")
    page.screenshot(path=str(tmp_path / "complaint.png"), full_page=True)
    assert stored_petitions(guarded_stack) == 0

    # A petition, then the link lost and asked for again from the form's link.
    page.goto(intake + "/")
    page.select_option("#unit_id", "my-hoa-hung-my-khanh-2")
    page.select_option("#category_id", "roads_lighting")
    page.fill("#title", "Đèn đường hẻm 5 không sáng")
    page.fill("#description", "Đèn đầu hẻm 5 tắt đã ba đêm.")
    page.fill("#email", "mai@example.org")
    # No JavaScript here: "use my location" stays hidden, the point can still be typed.
    expect(page.locator("#use-location")).to_be_hidden()
    page.fill("#latitude", "10.3700")
    page.fill("#longitude", "105,4300")
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/track/"))
    expect(page.locator("#map-link")).to_have_attribute(
        "href", re.compile(r"^https://www\.openstreetmap\.org/\?mlat=10\.370000&mlon=105\.430000")
    )
    reference = re.search(r"PA-[0-9A-Z]{4}-[0-9A-Z]{4}", page.text_content("body") or "")
    assert reference is not None
    first_link = page.url

    page.goto(intake + "/")
    page.click("a[href='/track/recover']")
    page.fill("#reference", reference.group(0).lower())
    page.fill("#contact", "MAI@Example.org")
    page.click("button[type=submit]")
    expect(page.locator("[role=status]")).to_contain_text("trong ít phút")
    page.screenshot(path=str(tmp_path / "recover.png"), full_page=True)

    def recovered_link() -> str | None:
        for text in mails(guarded_stack.var_dir):
            if f"Liên kết theo dõi phản ánh {reference.group(0)}" in text:
                found = re.search(r"http://\S+/track/[A-Za-z0-9_-]+", text)
                return found.group(0) if found else None
        return None

    link = eventually_sync(recovered_link, timeout=30, interval=0.3, what="the recovery email")
    assert link != first_link.split("?")[0]
    page.goto(link)
    expect(page.locator("body")).to_contain_text(reference.group(0))
    expect(page.locator("h1")).to_contain_text("Đèn đường hẻm 5 không sáng")

    # Thirty rapid submissions from this address: refused after the limit, with Retry-After
    # (the form and the recovery above counted too).
    statuses: list[int] = []
    retry_after: list[str] = []
    with httpx.Client(timeout=15.0) as http:
        for n in range(30):
            answer = http.post(
                f"{intake}/api/v1/petitions",
                json={
                    "unit_id": "my-hoa-hung-my-khanh-2",
                    "category_id": "roads_lighting",
                    "title": f"Đèn hỏng số {n}",
                    "description": "Đèn không sáng.",
                    "consent": True,
                },
            )
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                retry_after.append(answer.headers["Retry-After"])
    accepted = statuses.count(201)
    assert 1 <= accepted <= LIMIT - 2, statuses
    assert statuses == [201] * accepted + [429] * (30 - accepted), statuses
    assert all(1 <= int(r) <= 60 for r in retry_after)
    assert stored_petitions(guarded_stack) == 1 + accepted
