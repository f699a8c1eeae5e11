"""What kind of request a resident brings. A petition (phản ánh, kiến nghị) is this system's;
a complaint about an administrative decision (khiếu nại, Luật Khiếu nại 2011) and a
denunciation (tố cáo, Luật Tố cáo 2018) follow their own laws, time limits and offices, so
neither is taken here: nothing is stored, and the resident is told where to file instead.
"""

from __future__ import annotations

from typing import Literal

from services.intake.errors import NotAPetition

RequestKind = Literal["petition", "complaint", "denunciation"]
KINDS: tuple[RequestKind, ...] = ("petition", "complaint", "denunciation")

GUIDANCE: dict[str, tuple[str, str]] = {
    "complaint": (
        "Đây là khiếu nại, không phải phản ánh, kiến nghị, nên hệ thống này không tiếp nhận và "
        "không lưu nội dung bạn đã nhập. Theo Luật Khiếu nại năm 2011, khiếu nại một quyết định "
        "hành chính hoặc hành vi hành chính được gửi trước hết đến chính cơ quan hoặc người đã "
        "ra quyết định hoặc thực hiện hành vi đó. Bạn có thể gửi đơn bằng văn bản, hoặc đến "
        "trình bày trực tiếp tại nơi tiếp công dân của cơ quan đó (ví dụ Ủy ban nhân dân "
        "phường, xã), trong vòng 90 ngày kể từ khi nhận được quyết định hoặc biết về hành vi đó.",
        "This is a complaint, not a petition, so it is not taken here and nothing you typed was "
        "stored. Under the Law on Complaints (2011), a complaint about an administrative "
        "decision or action goes first to the authority or person who made the decision or "
        "took the action. File it in writing, or in person at that authority's citizen "
        "reception office (for example at the ward or commune People's Committee), within 90 "
        "days of receiving the decision or learning of the action.",
    ),
    "denunciation": (
        "Đây là tố cáo, không phải phản ánh, kiến nghị, nên hệ thống này không tiếp nhận và "
        "không lưu nội dung bạn đã nhập. Theo Luật Tố cáo năm 2018, tố cáo hành vi vi phạm pháp "
        "luật của cán bộ, công chức khi thi hành công vụ được gửi đến cơ quan, tổ chức quản lý "
        "người đó; tố cáo hành vi vi phạm pháp luật khác được gửi đến cơ quan nhà nước có thẩm "
        "quyền quản lý lĩnh vực đó. Bạn gửi đơn bằng văn bản hoặc đến tố cáo trực tiếp tại nơi "
        "tiếp công dân của cơ quan đó; đơn cần ghi rõ họ tên, địa chỉ của bạn, và danh tính "
        "người tố cáo được pháp luật giữ bí mật.",
        "This is a denunciation, not a petition, so it is not taken here and nothing you typed "
        "was stored. Under the Law on Denunciations (2018), a denunciation of an official's "
        "wrongdoing in their duties goes to the agency that manages that official; any other "
        "breach of the law goes to the state authority competent for that field. File it in "
        "writing, or in person at that authority's citizen reception office; give your name "
        "and address, which the law keeps confidential.",
    ),
}


def refuse_other_kinds(kind: str | None) -> None:
    """Nothing but a petition goes further: `NotAPetition`, with where to file instead."""
    if kind in GUIDANCE:
        vi, en = GUIDANCE[kind]
        raise NotAPetition(kind, vi, en)
