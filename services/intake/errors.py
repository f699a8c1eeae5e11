"""What intake's rules refuse, as exceptions the HTTP edge maps to problem details (`app.py`)
and the pages to a message that keeps the resident's input."""


class IntakeError(Exception):
    """A refusal of intake's rules; `problem_type` names it in problem details."""

    problem_type = "about:blank"


class UnknownTrackingLink(IntakeError):
    """No petition has this tracking token (never issued, or mistyped)."""

    def __init__(self) -> None:
        super().__init__(
            "Không tìm thấy phản ánh cho liên kết này / No petition for this tracking link"
        )
