"""Texts of notify's pages (dashboard, timeline, digests, demo mailbox), Vietnamese first,
merged over the kit's shared ones. A page speaks one language, with a switch to the other."""

from __future__ import annotations

from shared.webkit.i18n import Catalogue, Texts

TEXTS: Texts = {
    "site_title": ("Phản ánh, kiến nghị – Lãnh đạo", "Petitions – Leadership"),
    "overview": ("Tổng quan", "Overview"),
    "mailbox": ("Hộp thư", "Mailbox"),
    "dashboard_title": ("Bảng điều khiển", "Dashboard"),
    "dashboard_heading": ("Bảng điều khiển lãnh đạo", "Leadership dashboard"),
    "by_unit": ("Kết quả giải quyết theo đơn vị", "Resolution by unit"),
    "from": ("Từ", "From"),
    "to": ("Đến", "To"),
    "with_below": ("Gồm cả đơn vị cấp dưới", "With the units below"),
    "unit_alone": ("Chỉ riêng đơn vị", "The unit alone"),
    "show": ("Xem", "Show"),
    "col_unit": ("Đơn vị", "Unit"),
    "col_received": ("Tiếp nhận", "Received"),
    "col_assigned": ("Được giao", "Assigned"),
    "col_resolved": ("Đã giải quyết", "Resolved"),
    "col_on_time": ("Đúng hạn", "On time"),
    "col_escalated": ("Chuyển cấp", "Escalated"),
    "col_reopened": ("Mở lại", "Reopened"),
    "col_first_response": ("Phản hồi đầu TB", "Avg first response"),
    "col_resolution": ("Giải quyết TB", "Avg resolution"),
    "col_satisfied": ("Hài lòng", "Satisfied"),
    "on_time_explain": (
        "Đúng hạn = giải quyết trong hạn / (đã giải quyết + chuyển cấp vì quá hạn).",
        "On time = resolved within the deadline / (resolved + escalated because the deadline "
        "passed).",
    ),
    "rows_include_below": (
        "Mỗi dòng gồm cả các đơn vị cấp dưới.",
        "Each row includes the units below it.",
    ),
    "no_figures": ("Chưa có số liệu trong khoảng này.", "No figures in this range yet."),
    "notifications": ("Thông báo", "Notifications"),
    "undeliverable": ("Không gửi được", "Undeliverable"),
    "undeliverable_where": ("Xem và gửi lại tại", "Listed and retried at"),
    "in_doubt": (
        "Có thể đã gửi (không rõ kết quả, không tự gửi lại)",
        "May have been sent (outcome unknown, not resent automatically)",
    ),
    "meetings": ("Họp chi bộ", "Meetings"),
    "current_digest": ("bản tổng hợp hiện tại", "current digest"),
    "recent": ("Phản ánh gần đây", "Recent petitions"),
    "col_ref": ("Mã", "Ref."),
    "col_title": ("Nội dung", "Title"),
    "col_status": ("Trạng thái", "Status"),
    "col_updated": ("Cập nhật", "Updated"),
    "no_petitions": ("Chưa có phản ánh nào.", "No petitions yet."),
    "timeline": ("Dòng thời gian", "Timeline"),
    "col_when": ("Lúc", "When"),
    "col_event": ("Sự kiện", "Event"),
    "delivery_log": ("Nhật ký gửi thông báo", "Delivery log"),
    "col_recipient": ("Người nhận", "Recipient"),
    "col_channel": ("Kênh", "Channel"),
    "col_template": ("Mẫu", "Template"),
    "col_attempts": ("Lần thử", "Attempts"),
    "col_last_error": ("Lỗi gần nhất", "Last error"),
    "col_sent": ("Gửi lúc", "Sent"),
    "digest_title": ("Tổng hợp trước cuộc họp", "Meeting digest"),
    "digest_heading": ("tổng hợp trước cuộc họp", "digest before the meeting"),
    "meeting": ("Cuộc họp", "Meeting"),
    "since_last": ("Từ cuộc họp trước", "Since the last meeting"),
    "made": ("Lập lúc", "Made"),
    "preview": ("xem trước", "preview"),
    "open": ("Đang xử lý", "Open"),
    "overdue": ("Quá hạn", "Overdue"),
    "escalated": ("Đã chuyển cấp", "Escalated"),
    "resolved": ("Đã giải quyết", "Resolved"),
    "late": ("trễ hạn", "late"),
    "rung": ("cấp", "rung"),
    "col_state": ("Tình trạng", "State"),
    "col_due_or_when": ("Hạn / thời điểm", "Due or when"),
    "print_hint": (
        "Để in, dùng lệnh In của trình duyệt; trang in không có thanh điều hướng.",
        "To print, use the browser's Print command; the printout leaves out the navigation.",
    ),
    "mailbox_heading": ("Hộp thư thử nghiệm", "Demo mailbox"),
    "mailbox_intro": (
        "Thư hệ thống đã gửi, khi chưa cấu hình máy chủ SMTP.",
        "Mail the system sent while no SMTP server is configured.",
    ),
    "mailbox_open": (
        "Chỉ dùng khi chạy thử: trang này mở cho mọi người, không cần đăng nhập, và không bao "
        "giờ có trong production.",
        "Development only: this page is open to anyone without signing in, and never exists "
        "in production.",
    ),
    "mailbox_empty": ("Hộp thư trống.", "The mailbox is empty."),
    "message_note": (
        "Hộp thư thử nghiệm, mở cho mọi người, chỉ khi chạy thử.",
        "Demo mailbox, open to anyone, development only.",
    ),
    "col_from": ("Từ", "From"),
    "col_to": ("Người nhận", "To"),
    "col_subject": ("Tiêu đề", "Subject"),
    "col_date": ("Ngày", "Date"),
    "download_eml": ("Tải tệp .eml", "Download the .eml file"),
    "no_petition": ("Không có phản ánh này.", "No such petition."),
    "no_digest": ("Không có bản tổng hợp này.", "No such digest."),
    "no_meeting": ("Đơn vị chưa có lịch họp.", "No meeting schedule for this unit."),
    "no_mailbox": ("Không có hộp thư.", "There is no mailbox."),
    "no_message": ("Không có thư này.", "No such message."),
    "back_to_overview": ("Về trang tổng quan", "Back to the overview"),
}


def catalogue() -> Catalogue:
    return Catalogue(TEXTS)
