"""Workspace texts, Vietnamese first, merged over the kit's shared ones. A page speaks one
language; refusals show the other language's sentence beneath, as the staff API's problems
carry both."""

from __future__ import annotations

from shared.webkit.i18n import Catalogue, Lang, Texts, pick

TEXTS: Texts = {
    "site_title": ("Cán bộ – Phản ánh, kiến nghị", "Staff – Petitions"),
    "signin_heading": ("Đăng nhập cho cán bộ", "Staff sign-in"),
    "username": ("Tên đăng nhập", "Username"),
    "password": ("Mật khẩu", "Password"),
    "signin": ("Đăng nhập", "Sign in"),
    "signout": ("Đăng xuất", "Sign out"),
    "my_cases": ("Hồ sơ của tôi", "My cases"),
    "unit_cases": ("Hồ sơ của đơn vị", "Unit's cases"),
    "all_cases": ("Tất cả hồ sơ", "All cases"),
    "absence": ("Vắng mặt", "Away"),
    "filter": ("Lọc", "Filter"),
    "status_open": ("Đang mở", "Open"),
    "status_all": ("Tất cả", "All"),
    "no_cases": ("Không có hồ sơ nào.", "No cases."),
    "overdue": ("Quá hạn", "Overdue"),
    "due": ("Hạn xử lý", "Due by"),
    "ack_due": ("Hạn nhận", "Accept by"),
    "no_due": ("Đang tạm dừng hoặc không có hạn", "Paused or no deadline"),
    "reference": ("Mã số", "Reference"),
    "status": ("Trạng thái", "Status"),
    "rung": ("Cấp xử lý", "Level"),
    "holder": ("Người đang giữ", "Held by"),
    "nobody": ("Chưa có ai", "Nobody"),
    "unit": ("Địa bàn", "Area"),
    "category": ("Lĩnh vực", "Category"),
    "opened": ("Ngày gửi", "Submitted"),
    "description": ("Nội dung", "Description"),
    "location": ("Địa điểm", "Location"),
    "point": ("Vị trí trên bản đồ", "On the map"),
    "history": ("Quá trình xử lý", "History"),
    "notes": ("Ghi chú nội bộ", "Internal notes"),
    "no_notes": ("Chưa có ghi chú.", "No notes yet."),
    "actions": ("Thao tác", "Actions"),
    "no_actions": (
        "Bạn không có thao tác nào với hồ sơ này lúc này.",
        "There is nothing for you to do on this case now.",
    ),
    "accept": ("Nhận hồ sơ", "Accept"),
    "note": ("Ghi chú", "Note"),
    "add_note": ("Thêm ghi chú", "Add note"),
    "resolve": ("Báo đã giải quyết", "Resolve"),
    "explanation": (
        "Đã giải quyết thế nào (người dân sẽ đọc)",
        "How it was resolved (the resident reads this)",
    ),
    "resolve_from_assigned": (
        "Báo đã giải quyết cũng đồng thời nhận hồ sơ.",
        "Resolving also accepts the case.",
    ),
    "decline": ("Trả lại hồ sơ", "Decline"),
    "reason": ("Lý do", "Reason"),
    "comment": ("Ghi chú thêm (không bắt buộc)", "Comment (optional)"),
    "ask": ("Hỏi thêm người dân", "Ask the resident"),
    "question": (
        "Câu hỏi (hiện trên trang theo dõi của người dân; hạn xử lý tạm dừng)",
        "Question (shown on the resident's tracking page; the deadline pauses)",
    ),
    "reassign": ("Giao lại", "Reassign"),
    "assignee": ("Giao cho", "Hand to"),
    "no_assignees": ("Không có ai khác để giao.", "Nobody else to hand it to."),
    "escalate": ("Chuyển lên cấp trên", "Escalate"),
    "take_over": ("Tôi trực tiếp xử lý", "Take over"),
    "reject": ("Từ chối xử lý", "Reject"),
    "reject_reason": (
        "Lý do từ chối (người dân sẽ đọc)",
        "Why it is rejected (the resident reads this)",
    ),
    "done_accept": ("Đã nhận hồ sơ.", "Case accepted."),
    "done_note": ("Đã thêm ghi chú.", "Note added."),
    "done_resolve": (
        "Đã báo giải quyết. Người dân sẽ được hỏi xác nhận.",
        "Marked resolved. The resident will be asked to confirm.",
    ),
    "done_decline": (
        "Đã trả lại hồ sơ; hồ sơ được giao cho người khác.",
        "Case declined; it has been handed to someone else.",
    ),
    "done_ask": (
        "Đã gửi câu hỏi cho người dân; hạn xử lý tạm dừng đến khi họ trả lời.",
        "Question sent to the resident; the deadline is paused until they answer.",
    ),
    "done_reassign": ("Đã giao lại hồ sơ.", "Case reassigned."),
    "done_escalate": ("Đã chuyển hồ sơ lên cấp trên.", "Case escalated."),
    "done_take-over": ("Bạn đã trực tiếp nhận xử lý hồ sơ.", "You have taken the case over."),
    "done_reject": ("Đã từ chối xử lý hồ sơ.", "Case rejected."),
    "done_absence": ("Đã lưu thời gian vắng mặt.", "Absence saved."),
    "done_back": ("Đã ghi nhận bạn đã trở lại.", "Welcome back: you are no longer marked away."),
    "absence_heading": ("Thời gian vắng mặt", "Time away"),
    "absence_intro": (
        "Trong thời gian vắng mặt bạn không nhận hồ sơ mới; hồ sơ đang mở được chuyển cho "
        "lãnh đạo đơn vị khi bắt đầu vắng.",
        "While away you get no new cases; your open cases go to the unit leader when the "
        "absence starts.",
    ),
    "away_from": ("Từ ngày", "From"),
    "away_until": ("Đến hết ngày (không bắt buộc)", "Until the end of (optional)"),
    "save": ("Lưu", "Save"),
    "back": ("Tôi đã trở lại", "I am back"),
    "currently_away": ("Đang đặt vắng mặt", "Marked away"),
    "not_away": ("Bạn không đặt vắng mặt.", "You are not marked away."),
    "open_ended": ("chưa hẹn ngày về", "no return date"),
    "bad_date": ("Ngày không hợp lệ.", "Invalid date."),
    "not_found": ("Không tìm thấy hồ sơ.", "No such case."),
    "back_to_cases": ("Về danh sách hồ sơ", "Back to the cases"),
    "by": ("bởi", "by"),
    "account": ("Tài khoản", "Account"),
    "forgot_password": (
        "Quên mật khẩu? Nhờ lãnh đạo đơn vị hoặc quản trị gửi liên kết đặt lại mật khẩu qua "
        "email công việc của bạn.",
        "Forgot your password? Ask your unit leader or an administrator to email you a reset "
        "link at your work address.",
    ),
    "members": ("Cán bộ", "Members"),
    "password_heading": ("Đổi mật khẩu", "Change password"),
    "password_rules": (
        "Mật khẩu mới: từ 12 đến 128 ký tự, được dùng dấu cách (một câu dễ nhớ là tốt nhất); "
        "không bắt buộc chữ hoa, số hay ký hiệu; không được là mật khẩu phổ biến đã bị lộ, "
        "tên đăng nhập hay họ tên của bạn.",
        "New password: 12 to 128 characters, spaces allowed (a sentence you remember works "
        "best); no need for capitals, digits or symbols; not a common breached password, nor "
        "your username or name.",
    ),
    "current_password": ("Mật khẩu hiện tại", "Current password"),
    "new_password": ("Mật khẩu mới", "New password"),
    "repeat_password": ("Nhập lại mật khẩu mới", "New password again"),
    "change_password": ("Đổi mật khẩu", "Change password"),
    "set_password": ("Đặt mật khẩu và đăng nhập", "Set the password and sign in"),
    "password_changed": (
        "Đã đổi mật khẩu. Các phiên đăng nhập khác của bạn đã kết thúc.",
        "Password changed. Your other sessions have ended.",
    ),
    "password_change_note": (
        "Đổi mật khẩu sẽ đăng xuất bạn khỏi mọi thiết bị khác ngay lập tức.",
        "Changing the password signs you out on every other device at once.",
    ),
    "passwords_differ": (
        "Hai lần nhập mật khẩu mới không giống nhau.",
        "The two new passwords are not the same.",
    ),
    "signin_history": ("Lịch sử đăng nhập", "Sign-in history"),
    "signin_history_note": (
        "Mọi lần đăng nhập trong 90 ngày qua, giờ Việt Nam. Nếu có lần bạn không nhận ra, hãy "
        "đổi mật khẩu.",
        "Every sign-in attempt of the last 90 days, in Vietnam time. If you do not recognise "
        "one, change your password.",
    ),
    "when": ("Thời điểm", "When"),
    "outcome": ("Kết quả", "Outcome"),
    "address": ("Địa chỉ", "Address"),
    "user_agent": ("Trình duyệt", "Browser"),
    "no_signins": ("Chưa có lần đăng nhập nào.", "No sign-in attempts."),
    "outcome_success": ("Thành công", "Signed in"),
    "outcome_wrong_password": ("Sai mật khẩu", "Wrong password"),
    "outcome_throttled": ("Bị chặn tạm thời (sai quá nhiều lần)", "Held back (too many failures)"),
    "outcome_deactivated": ("Tài khoản đã ngừng hoạt động", "Account deactivated"),
    "members_heading": ("Tài khoản cán bộ", "Members' accounts"),
    "members_intro": (
        "Gửi liên kết đặt lại mật khẩu qua email công việc của cán bộ (dùng một lần, trong "
        "24 giờ), hoặc xem lịch sử đăng nhập.",
        "Email a member a link to reset their password (once, within 24 hours) to their work "
        "address, or see their sign-in history.",
    ),
    "name": ("Họ tên", "Name"),
    "inactive": ("ngừng hoạt động", "deactivated"),
    "no_email": ("chưa có email", "no email"),
    "send_reset_link": ("Gửi liên kết đặt lại mật khẩu", "Email a password reset link"),
    "link_sent": (
        "Đã gửi liên kết qua email. Liên kết dùng được một lần, trong 24 giờ.",
        "The link is on its way by email. It works once, within 24 hours.",
    ),
    "link_heading": ("Đặt mật khẩu mới", "Set a new password"),
    "link_intro": ("Đặt mật khẩu cho tài khoản", "Set the password of the account"),
    "role_member": ("cán bộ", "member"),
    "role_leader": ("lãnh đạo", "leader"),
    "role_admin": ("quản trị", "administrator"),
}

RUNG_WORDS: tuple[tuple[str, str], ...] = (
    ("Cán bộ phụ trách địa bàn", "Member serving the area"),
    ("Lãnh đạo đơn vị", "Unit leader"),
    ("Lãnh đạo phường, xã", "Ward or commune leadership"),
)

DECLINE_REASONS: Texts = {
    "not_my_area": ("Không thuộc địa bàn tôi phụ trách", "Not my area"),
    "not_my_category": ("Không thuộc lĩnh vực tôi phụ trách", "Not my category"),
    "conflict_of_interest": ("Tôi có xung đột lợi ích", "Conflict of interest"),
    "needs_other_agency": ("Cần cơ quan khác xử lý", "Needs another agency"),
    "away": ("Tôi vắng mặt", "I am away"),
}

HISTORY_WORDS: Texts = {
    "submitted": ("Người dân gửi phản ánh", "Submitted by the resident"),
    "assigned": ("Giao hồ sơ", "Assigned"),
    "accepted": ("Nhận hồ sơ", "Accepted"),
    "note": ("Ghi chú", "Note"),
    "resolved": ("Báo đã giải quyết", "Resolved"),
    "reopened": ("Người dân báo chưa giải quyết; mở lại", "Not resolved, says the resident"),
    "escalated": ("Chuyển lên cấp trên", "Escalated"),
    "closed": ("Đóng hồ sơ", "Closed"),
    "declined": ("Trả lại hồ sơ", "Declined"),
    "question_asked": ("Hỏi thêm người dân", "Question to the resident"),
    "resident_answered": ("Người dân trả lời", "The resident answered"),
    "resumed": ("Tiếp tục tính hạn", "Deadline running again"),
    "rejected": ("Từ chối xử lý", "Rejected"),
    "withdrawn": ("Người dân rút phản ánh", "Withdrawn by the resident"),
    "overdue_at_top": ("Quá hạn ở cấp cao nhất", "Overdue at the top level"),
    "escalation_requested": ("Người dân đề nghị chuyển cấp", "The resident asked to escalate"),
    "reminder_due": ("Nhắc hạn", "Reminder"),
    "redacted": (
        "Người dân đã xoá thông tin; nội dung người dân viết đã được xoá",
        "The resident was erased; what they wrote was removed",
    ),
}


def catalogue() -> Catalogue:
    return Catalogue(TEXTS)


def rung_words(rung: int, lang: Lang) -> str:
    return pick(RUNG_WORDS[min(rung, len(RUNG_WORDS) - 1)], lang)
