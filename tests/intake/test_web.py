"""The resident's pages: Vietnamese first, no JavaScript needed, input kept on error, nothing a
resident wrote rendered as HTML."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from services.intake.models import petitions
from shared.events import CaseResolved
from tests.intake.conftest import VALID, Intake
from tests.intake.test_status_view import assigned, case_fields, wait_for

FORM = {
    "unit_id": "my-hoa-hung-my-khanh-2",
    "category_id": "environment_sanitation",
    "title": "Rác ở đầu hẻm",
    "description": "Rác tồn đọng ba ngày.",
    "consent": "on",
}


async def count(intake: Intake) -> int:
    async with intake.runtime.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(petitions)) or 0)


async def test_form_is_vietnamese_first_with_an_english_switch(intake: Intake) -> None:
    vi = await intake.client.get("/")
    assert vi.status_code == 200
    assert '<html lang="vi">' in vi.text
    assert "Gửi phản ánh, kiến nghị" in vi.text
    assert "Ấp Mỹ Khánh 2" in vi.text
    # One script, from this origin, and only to offer "use my location" (the form works
    # without it: tests/intake/test_residents_guard.py, the browser tests run with JS off).
    assert vi.text.count("<script") == 1
    assert '<script src="/static/locate.js" defer></script>' in vi.text
    assert "script-src 'self'" in vi.headers["content-security-policy"]

    en = await intake.client.get("/?lang=en")
    assert "Send a petition" in en.text
    assert en.cookies.get("lang") == "en"
    # The cookie remembers the choice.
    again = await intake.client.get("/")
    assert "Send a petition" in again.text
    intake.client.cookies.clear()


async def test_form_error_keeps_input_and_stores_nothing(intake: Intake) -> None:
    data = {**FORM, "title": "", "description": "Mô tả của tôi", "name": "Lê C"}
    del data["consent"]

    response = await intake.client.post("/", data=data)

    assert response.status_code == 422
    assert "Mô tả của tôi</textarea>" in response.text
    assert 'value="Lê C"' in response.text
    assert 'value="my-hoa-hung-my-khanh-2" selected' in response.text
    # Each summary line names its field and links to it, in the page's language only.
    assert '<a href="#title">Tiêu đề: không được để trống</a>' in response.text
    assert '<a href="#consent">Đồng ý xử lý: cần đồng ý để phản ánh được xử lý</a>' in response.text
    assert "is required" not in response.text
    assert "consent is required" not in response.text
    assert 'aria-invalid="true" aria-describedby="title-error"' in response.text
    assert 'id="title-error"' in response.text
    assert re.search(
        r'id="consent"[^>]*aria-invalid="true" aria-describedby="consent-error"', response.text
    )
    assert 'aria-describedby="description-error"' not in response.text
    assert await count(intake) == 0

    english = await intake.client.post("/?lang=en", data=data)
    assert '<a href="#title">Title: is required</a>' in english.text
    assert "không được để trống" not in english.text
    intake.client.cookies.clear()


async def test_oversized_or_foreign_form_posts_get_a_page_not_json(intake: Intake) -> None:
    too_large = await intake.client.post("/", data={**FORM, "description": "x" * 70_000})
    assert too_large.status_code == 413
    assert too_large.headers["content-type"].startswith("text/html")
    assert "Nội dung quá dài" in too_large.text

    multipart = await intake.client.post("/", files={"title": (None, "x")})
    assert multipart.status_code == 415
    assert multipart.headers["content-type"].startswith("text/html")
    assert "Vui lòng quay lại và gửi lại" in multipart.text
    assert await count(intake) == 0


async def test_submission_shows_reference_and_link_and_escapes_what_was_written(
    intake: Intake,
) -> None:
    data = {**FORM, "title": "<script>alert(1)</script>", "description": "<b>đậm</b>"}

    response = await intake.client.post("/", data=data)

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/track/")
    page = await intake.client.get(location)
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&lt;b&gt;đậm&lt;/b&gt;" in page.text
    assert re.search(r"PA-[0-9A-Z]{4}-[0-9A-Z]{4}", page.text)
    assert "http://intake.test/track/" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert await count(intake) == 1


async def test_tracking_page_shows_local_times_and_takes_feedback(intake: Intake) -> None:
    body = await intake.submit()
    token = body["tracking_token"]
    at = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    event = CaseResolved.new(
        **case_fields(body["petition_id"], at), member_id="m1", explanation="<i>xong</i>"
    )
    await intake.publish(event)
    await wait_for(intake, token, "resolved", 2)

    page = await intake.client.get(f"/track/{token}")
    # 03:04 UTC is 10:04 in Asia/Ho_Chi_Minh.
    assert "02/01/2030 10:04" in page.text
    assert page.text.count("Giờ Việt Nam (UTC+7)") == 1
    assert "&lt;i&gt;xong&lt;/i&gt;" in page.text
    # The explanation comes first, then the question about it; "resolved" is the positive button.
    feedback_form = page.text.split('action="/track/')[1]
    assert feedback_form.index("&lt;i&gt;xong&lt;/i&gt;") < feedback_form.index(
        "Vấn đề của bạn đã được giải quyết chưa?"
    )
    assert 'value="yes" class="primary">Đã giải quyết' in page.text
    assert 'value="no" class="secondary">Chưa giải quyết' in page.text

    answer = await intake.client.post(
        f"/track/{token}/feedback", data={"resolved": "yes", "comment": "Cảm ơn"}
    )
    assert answer.status_code == 303
    after = await intake.client.get(answer.headers["location"])
    assert "Cảm ơn bạn đã cho ý kiến." in after.text
    assert 'name="resolved"' not in after.text

    twice = await intake.client.post(f"/track/{token}/feedback", data={"resolved": "yes"})
    assert twice.status_code == 409


async def test_tracking_page_uses_display_labels_and_plain_words(intake: Intake) -> None:
    body = await intake.submit()
    token = body["tracking_token"]
    page = await intake.client.get(f"/track/{token}")
    assert "Địa điểm: Trước nhà số 12" in page.text
    assert "không bắt buộc" not in page.text.split("<h1")[1].split("<form")[0]
    unit_line = page.text.split("Tổ dân phố 2")[1].split("</small>")[0]
    assert "Giờ Việt Nam" not in unit_line

    at = datetime.now(UTC) + timedelta(seconds=1)
    await intake.publish(assigned(body["petition_id"], at, rung=1))
    await wait_for(intake, token, "assigned", 2)
    page = await intake.client.get(f"/track/{token}")
    assert "Phản ánh đã được giao cho trưởng/bí thư đơn vị." in page.text
    assert "Người đang xử lý: trưởng/bí thư đơn vị" in page.text
    assert "cấp xử lý" not in page.text
    assert "Trần Thị B" not in page.text
    english = await intake.client.get(f"/track/{token}?lang=en")
    assert "Location: Trước nhà số 12" in english.text
    assert "The petition was assigned to the unit&#39;s leader." in english.text
    assert "Vietnam time (UTC+7)" in english.text
    intake.client.cookies.clear()


async def test_unknown_tracking_link_is_a_friendly_404(intake: Intake) -> None:
    page = await intake.client.get("/track/whatever")
    assert page.status_code == 404
    assert "Không tìm thấy phản ánh" in page.text


async def test_api_submission_and_page_agree(intake: Intake) -> None:
    body = await intake.submit()
    page = await intake.client.get(f"/track/{body['tracking_token']}?lang=en")
    assert body["reference"] in page.text
    assert str(VALID["title"]) in page.text
    assert "Submitted" in page.text
    assert (datetime.now(UTC) + timedelta(hours=7)).strftime("%d/%m/%Y") in page.text
    intake.client.cookies.clear()
