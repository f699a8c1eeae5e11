"""Language choice and message catalogues: Vietnamese first, English second.

A page speaks one language. It is chosen by `?lang=` (remembered in a cookie), then that
cookie, then the browser's `Accept-Language`, and Vietnamese when nothing says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from starlette.requests import Request

Lang = Literal["vi", "en"]
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600

Texts = Mapping[str, tuple[str, str]]

# What every service's pages say the same way.
SHARED_TEXTS: Texts = {
    "switch_lang": ("English", "Tiếng Việt"),
    "time_zone_note": ("Giờ Việt Nam (UTC+7)", "Vietnam time (UTC+7)"),
    "too_large": ("Nội dung gửi quá lớn.", "What was sent is too large."),
    "wrong_media": (
        "Trình duyệt đã gửi biểu mẫu theo cách không được hỗ trợ. Vui lòng quay lại và gửi lại.",
        "Your browser sent the form in a way we do not support. Please go back and send again.",
    ),
    "forbidden": (
        "Yêu cầu bị từ chối: phiên làm việc đã hết hạn hoặc trang gửi từ nơi khác. Hãy tải "
        "lại trang và thử lại.",
        "Request refused: the session has expired or the form came from elsewhere. Reload "
        "the page and try again.",
    ),
}


def pick(pair: tuple[str, str], lang: Lang) -> str:
    """The sentence of a (Vietnamese, English) pair in this language."""
    return pair[1] if lang == "en" else pair[0]


class Catalogue:
    """A service's texts merged over the shared ones (the service's wording wins)."""

    def __init__(self, *parts: Texts) -> None:
        self._texts: dict[str, tuple[str, str]] = dict(SHARED_TEXTS)
        for part in parts:
            self._texts.update(part)

    def text(self, key: str, lang: Lang) -> str:
        return pick(self._texts[key], lang)


def from_accept_language(header: str) -> Lang | None:
    """The first of our languages the browser prefers, by its quality values."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, index, tag.strip().lower().split("-", 1)[0]))
    for negative_quality, _, primary in sorted(ranked):
        if negative_quality < 0 and primary in ("vi", "en"):
            return "en" if primary == "en" else "vi"
    return None


def choose_language(request: Request) -> tuple[Lang, bool]:
    """The page's language, and whether to remember it (it was asked for by `?lang=`)."""
    asked = request.query_params.get("lang")
    if asked in ("vi", "en"):
        return ("en" if asked == "en" else "vi"), True
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in ("vi", "en"):
        return ("en" if cookie == "en" else "vi"), False
    return from_accept_language(request.headers.get("accept-language", "")) or "vi", False
