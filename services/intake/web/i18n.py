"""Page texts, Vietnamese first, merged over the kit's shared ones. A page speaks one language,
its errors included; only the JSON API's problems carry both."""

from __future__ import annotations

from shared.webkit.i18n import Catalogue, Lang, Texts, pick

TEXTS: Texts = {
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
    "location_display": ("Địa điểm", "Location"),
    "holder": ("Người đang xử lý", "Handled by"),
    "resolution_heading": ("Kết quả xử lý", "How it was resolved"),
    "rejection_heading": ("Lý do không tiếp nhận", "Why it was not taken up"),
    "question_heading": ("Cán bộ cần bạn bổ sung thông tin", "The member needs more information"),
    "answer": ("Câu trả lời của bạn", "Your answer"),
    "send_answer": ("Gửi câu trả lời", "Send answer"),
    "answered": ("Đã gửi câu trả lời của bạn.", "Your answer was sent."),
    "answer_refused": (
        "Câu hỏi này không còn chờ trả lời.",
        "This question is no longer waiting for an answer.",
    ),
    "escalate_heading": ("Phản ánh đã quá hạn xử lý", "The petition is overdue"),
    "escalate": ("Yêu cầu chuyển lên cấp trên", "Ask to escalate"),
    "escalated_notice": (
        "Đã gửi đề nghị chuyển lên cấp trên.",
        "Your request to escalate was sent.",
    ),
    "escalate_again_at": (
        "Bạn có thể đề nghị chuyển lên cấp trên lần nữa sau",
        "You can ask to escalate again after",
    ),
    "escalate_refused": (
        "Hiện chưa thể đề nghị chuyển lên cấp trên.",
        "Escalation cannot be asked for now.",
    ),
    "your_options": ("Lựa chọn của bạn", "Your options"),
    "withdraw": ("Rút phản ánh", "Withdraw the petition"),
    "withdraw_explain": (
        "Phản ánh sẽ không được xử lý tiếp và không thể mở lại. Bạn có chắc không?",
        "The petition will no longer be handled and cannot be reopened. Are you sure?",
    ),
    "withdraw_confirm": ("Có, rút phản ánh", "Yes, withdraw it"),
    "withdraw_reason": ("Lý do (không bắt buộc)", "Reason (optional)"),
    "withdrawn_notice": ("Bạn đã rút phản ánh.", "You withdrew the petition."),
    "stop_updates": ("Ngừng nhận thông báo", "Stop progress messages"),
    "stopped_notice": (
        "Bạn sẽ không nhận thêm thông báo về phản ánh này.",
        "You will get no more messages about this petition.",
    ),
    "erase": ("Xoá thông tin liên hệ của tôi", "Erase my contact details"),
    "erase_explain": (
        "Họ tên, số điện thoại và email của bạn sẽ bị xoá vĩnh viễn; nội dung phản ánh vẫn được "
        "giữ lại, không kèm thông tin của bạn. Bạn vẫn theo dõi được bằng liên kết này, nhưng "
        "sẽ không ai liên hệ được với bạn nữa.",
        "Your name, phone and email will be deleted for good; the petition stays, without "
        "them. You can still follow it with this link, but nobody will be able to contact you.",
    ),
    "erase_confirm": ("Có, xoá thông tin liên hệ", "Yes, erase my details"),
    "erased_notice": (
        "Thông tin liên hệ của bạn đã được xoá.",
        "Your contact details were erased.",
    ),
    "cancel": ("Quay lại", "Go back"),
    "not_allowed": (
        "Trạng thái hiện tại của phản ánh không cho phép việc này.",
        "The petition's current status does not allow this.",
    ),
    "error_heading": ("Không gửi được", "Could not send"),
    "too_large": (
        "Nội dung quá dài. Vui lòng rút gọn rồi gửi lại.",
        "What you sent is too long. Please shorten it and send again.",
    ),
    "unavailable": (
        "Hệ thống đang tạm thời gián đoạn nên chưa lưu được phản ánh. Nội dung bạn nhập vẫn "
        "còn bên dưới; vui lòng bấm gửi lại sau ít phút.",
        "The system is briefly unavailable, so your petition was not saved yet. What you typed "
        "is kept below; please send again in a few minutes.",
    ),
    "unavailable_short": (
        "Hệ thống đang tạm thời gián đoạn. Vui lòng thử lại sau ít phút.",
        "The system is briefly unavailable. Please try again in a few minutes.",
    ),
    "already_sent": (
        "Phản ánh này đã được gửi trước đó.",
        "This petition was already sent.",
    ),
}

# Short names of the form's fields, for the error summary ("Tiêu đề: không được để trống").
FIELD_LABELS: Texts = {
    "unit_id": ("Nơi bạn sống", "Where you live"),
    "category_id": ("Lĩnh vực", "Category"),
    "title": ("Tiêu đề", "Title"),
    "description": ("Nội dung", "Description"),
    "location": ("Địa điểm", "Location"),
    "name": ("Họ tên", "Name"),
    "phone": ("Số điện thoại", "Phone"),
    "email": ("Email", "Email"),
    "notify": ("Báo tiến triển", "Progress messages"),
    "consent": ("Đồng ý xử lý", "Consent"),
    "language": ("Ngôn ngữ", "Language"),
    "comment": ("Ý kiến", "Comment"),
    "answer": ("Câu trả lời", "Answer"),
    "reason": ("Lý do", "Reason"),
}


def catalogue() -> Catalogue:
    return Catalogue(TEXTS)


def field_label(field: str, lang: Lang) -> str:
    return pick(FIELD_LABELS.get(field, (field, field)), lang)
