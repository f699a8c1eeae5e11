"""The password policy of OWASP ASVS 4.0.3 level 2 (§2.1): what a new password must be.

- at least 12 characters, counted after Unicode NFKC normalisation; spaces are allowed and
  kept (a passphrase is welcome);
- at most 128 characters accepted;
- no composition rules (no "one digit, one capital");
- not one of the commonly used or breached passwords: the 30,000 most common passwords that
  the `zxcvbn` package ships offline (its `passwords` frequency list, from real leaks), checked
  without regard to case; nothing is asked of any web service;
- not the person's username or name (nor either with spaces or case changed).

A plain function of the words: no database, no network.
"""

from __future__ import annotations

import unicodedata
from functools import cache

from services.routing.errors import WeakPassword

MIN_LENGTH = 12
MAX_LENGTH = 128


@cache
def common_passwords() -> frozenset[str]:
    """The breached-password list (lower case), loaded once on first use."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

    return frozenset(p.casefold() for p in FREQUENCY_LISTS["passwords"])


def normalise(password: str) -> str:
    """The password as it is hashed and checked: NFKC, so one typed on another keyboard (a
    composed or decomposed "ệ") is the same password."""
    return unicodedata.normalize("NFKC", password)


def _squashed(text: str) -> str:
    return "".join(normalise(text).casefold().split())


def check_new_password(password: str, *, username: str, name: str = "") -> str:
    """The normalised password, or `WeakPassword` saying in both languages what is wrong."""
    value = normalise(password)
    if len(value) < MIN_LENGTH:
        raise WeakPassword(
            f"Mật khẩu mới phải có ít nhất {MIN_LENGTH} ký tự (có thể dùng dấu cách, "
            f"ví dụ một câu dễ nhớ); mật khẩu này có {len(value)}.",
            f"The new password must have at least {MIN_LENGTH} characters (spaces are "
            f"allowed: a sentence you remember works well); this one has {len(value)}.",
            reason="too_short",
        )
    if len(value) > MAX_LENGTH:
        raise WeakPassword(
            f"Mật khẩu mới không được dài quá {MAX_LENGTH} ký tự.",
            f"The new password must not be longer than {MAX_LENGTH} characters.",
            reason="too_long",
        )
    squashed = _squashed(value)
    if squashed in {_squashed(username), _squashed(name)} - {""}:
        raise WeakPassword(
            "Mật khẩu mới không được là tên đăng nhập hoặc họ tên của bạn.",
            "The new password must not be your username or your name.",
            reason="personal",
        )
    if value.casefold() in common_passwords() or squashed in common_passwords():
        raise WeakPassword(
            "Mật khẩu này nằm trong danh sách mật khẩu phổ biến đã bị lộ; hãy chọn mật khẩu khác.",
            "This password is on the list of common, breached passwords; please choose another.",
            reason="breached",
        )
    return value
