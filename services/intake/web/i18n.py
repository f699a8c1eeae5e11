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
    "point_heading": ("Vị trí trên bản đồ (không bắt buộc)", "Point on the map (optional)"),
    "point_help": (
        "Nếu điện thoại cho phép, bấm nút để điền vị trí hiện tại; hoặc để trống và ghi địa "
        "điểm bằng lời ở trên.",
        "If your phone allows it, press the button to fill in where you are; or leave this "
        "empty and describe the place in words above.",
    ),
    "use_location": ("Dùng vị trí của tôi", "Use my location"),
    "locate_waiting": ("Đang lấy vị trí…", "Finding your position…"),
    "locate_done": ("Đã điền vị trí của bạn.", "Your position was filled in."),
    "locate_failed": (
        "Không lấy được vị trí. Bạn có thể ghi địa điểm bằng lời.",
        "Your position could not be found. You can describe the place in words.",
    ),
    "latitude": ("Vĩ độ (ví dụ 10.3700)", "Latitude (e.g. 10.3700)"),
    "longitude": ("Kinh độ (ví dụ 105.4300)", "Longitude (e.g. 105.4300)"),
    "point_display": ("Vị trí trên bản đồ", "On the map"),
    "lost_link": ("Mất liên kết theo dõi?", "Lost your tracking link?"),
    "recover_heading": ("Nhận lại liên kết theo dõi", "Get your tracking link again"),
    "recover_intro": (
        "Nhập mã số phản ánh và email hoặc số điện thoại bạn đã ghi khi gửi. Nếu khớp, liên "
        "kết mới sẽ được gửi đến đúng email hoặc số điện thoại đó.",
        "Enter the petition's reference and the email or phone number you gave with it. If "
        "they match, a new link is sent to that email or phone.",
    ),
    "recover_reference": ("Mã số phản ánh (ví dụ PA-7K3M-9QX2)", "Reference (e.g. PA-7K3M-9QX2)"),
    "recover_contact": ("Email hoặc số điện thoại đã ghi", "The email or phone number you gave"),
    "recover_submit": ("Gửi lại liên kết", "Send the link again"),
    "recover_sent_heading": ("Đã nhận yêu cầu", "Request received"),
    "recover_sent": (
        "Nếu mã số và thông tin liên hệ khớp với một phản ánh, chúng tôi sẽ gửi liên kết theo "
        "dõi mới đến email hoặc số điện thoại đó trong ít phút.",
        "If the reference and the contact match a petition, a new tracking link is on its way "
        "to that email or phone within a few minutes.",
    ),
    "recover_missing": (
        "Vui lòng nhập cả mã số và email hoặc số điện thoại.",
        "Please enter both the reference and the email or phone number.",
    ),
    "rate_limited": (
        "Bạn đã gửi quá nhiều yêu cầu trong thời gian ngắn. Vui lòng thử lại sau {minutes} "
        "phút; nội dung bạn nhập vẫn còn bên dưới.",
        "Too many requests in a short time. Please try again in {minutes} minutes; what you "
        "typed is kept below.",
    ),
    "rate_limited_short": (
        "Bạn đã gửi quá nhiều yêu cầu trong thời gian ngắn. Vui lòng thử lại sau {minutes} phút.",
        "Too many requests in a short time. Please try again in {minutes} minutes.",
    ),
    "too_fast": (
        "Phản ánh được gửi quá nhanh sau khi mở trang nên chưa được lưu. Vui lòng kiểm tra lại "
        "nội dung bên dưới rồi bấm gửi lần nữa.",
        "The form was sent too quickly after it was opened, so it was not saved. Please check "
        "what you typed below and send it again.",
    ),
    "honeypot": ("Để trống ô này", "Leave this empty"),
    "received_heading": ("Đã gửi", "Sent"),
    "received": (
        "Cảm ơn bạn, nội dung đã được gửi.",
        "Thank you, it was sent.",
    ),
    "kind": ("Bạn muốn gửi loại yêu cầu nào?", "What kind of request is this?"),
    "kind_petition": (
        "Phản ánh, kiến nghị: báo một việc cần giải quyết hoặc đề xuất nơi bạn sống",
        "A petition: something that needs fixing, or a suggestion, where you live",
    ),
    "kind_complaint": (
        "Khiếu nại: không đồng ý với một quyết định hay việc làm của cơ quan nhà nước đối với bạn",
        "A complaint: you disagree with an authority's decision or action that concerns you",
    ),
    "kind_denunciation": (
        "Tố cáo: báo một hành vi vi phạm pháp luật của người hoặc tổ chức",
        "A denunciation: you report someone's breach of the law",
    ),
    "not_petition_heading": (
        "Yêu cầu này cần gửi đến nơi khác",
        "This request goes somewhere else",
    ),
    "back_to_form": ("Quay lại biểu mẫu", "Back to the form"),
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
    "reference": ("Mã số", "Reference"),
    "contact": ("Email hoặc số điện thoại", "Email or phone"),
    "latitude": ("Vĩ độ", "Latitude"),
    "longitude": ("Kinh độ", "Longitude"),
}


def catalogue() -> Catalogue:
    return Catalogue(TEXTS)


def field_label(field: str, lang: Lang) -> str:
    return pick(FIELD_LABELS.get(field, (field, field)), lang)
