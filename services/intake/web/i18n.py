"""Page texts, Vietnamese first. Error messages are always shown in both languages."""

from __future__ import annotations

from typing import Literal

Lang = Literal["vi", "en"]

TEXTS: dict[str, tuple[str, str]] = {
    "site_title": ("Phản ánh, kiến nghị", "Petitions"),
    "form_heading": ("Gửi phản ánh, kiến nghị", "Send a petition"),
    "form_intro": (
        "Gửi ý kiến về những việc cần giải quyết nơi bạn sống. Bạn không cần tài khoản.",
        "Tell us what needs fixing where you live. No account needed.",
    ),
    "unit": ("Nơi bạn sống (khóm/ấp, tổ)", "Where you live (neighbourhood/hamlet, group)"),
    "choose": ("— Chọn —", "— Choose —"),
    "category": ("Lĩnh vực", "Category"),
    "title": ("Tiêu đề", "Title"),
    "description": ("Nội dung", "Description"),
    "location": ("Địa điểm cụ thể (không bắt buộc)", "Exact location (optional)"),
    "contact_heading": ("Liên hệ (không bắt buộc)", "Contact (optional)"),
    "name": ("Họ tên", "Name"),
    "phone": ("Số điện thoại", "Phone"),
    "email": ("Email", "Email"),
    "notify": ("Báo cho tôi khi có tiến triển", "Tell me about progress"),
    "consent": (
        "Tôi đồng ý để cơ quan chức năng xử lý thông tin trong phản ánh này",
        "I agree that the authorities may process the information in this petition",
    ),
    "submit": ("Gửi phản ánh", "Send petition"),
    "errors_heading": ("Vui lòng sửa các lỗi sau:", "Please correct the following:"),
    "switch_lang": ("English", "Tiếng Việt"),
    "submitted_banner": (
        "Đã gửi thành công. Hãy lưu mã số và liên kết này để theo dõi.",
        "Sent. Keep this reference and link to follow your petition.",
    ),
    "reference": ("Mã số", "Reference"),
    "tracking_link": ("Liên kết theo dõi", "Tracking link"),
    "status": ("Trạng thái", "Status"),
    "submitted_at": ("Ngày gửi", "Submitted"),
    "due_at": ("Hạn xử lý", "Due by"),
    "timeline": ("Quá trình xử lý", "Progress"),
    "feedback_heading": ("Vấn đề của bạn đã được giải quyết chưa?", "Is your matter settled?"),
    "comment": ("Ý kiến thêm (không bắt buộc)", "Comment (optional)"),
    "resolved_yes": ("Đã giải quyết", "Resolved"),
    "resolved_no": ("Chưa giải quyết", "Not resolved"),
    "feedback_thanks": ("Cảm ơn bạn đã cho ý kiến.", "Thank you for your answer."),
    "feedback_refused": (
        "Chỉ có thể cho ý kiến một lần sau khi phản ánh được giải quyết.",
        "You can answer only once, after the petition is resolved.",
    ),
    "not_found": (
        "Không tìm thấy phản ánh cho liên kết này.",
        "No petition was found for this link.",
    ),
    "new_petition": ("Gửi phản ánh mới", "Send a new petition"),
    "time_zone_note": ("Giờ Việt Nam", "Vietnam time"),
}


def text(key: str, lang: Lang) -> str:
    vi, en = TEXTS[key]
    return en if lang == "en" else vi
