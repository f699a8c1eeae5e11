"""What the Open311 endpoint refuses. Each error carries the HTTP status GeoReport gives it and
its descriptions; `edge.py` turns them into GeoReport's error list in the format asked for."""

from __future__ import annotations


class Open311Error(Exception):
    """A GeoReport error: `status` is both the HTTP status and each error's `code`."""

    status = 400

    def __init__(self, *descriptions: str) -> None:
        super().__init__("; ".join(descriptions))
        self.descriptions = list(descriptions)


class InvalidRequest(Open311Error):
    """Missing or malformed arguments (every problem found is listed)."""


class ApiKeyRefused(Open311Error):
    """No api_key, or one that was never issued or was revoked."""

    status = 403


class UnknownJurisdiction(Open311Error):
    """A jurisdiction_id this endpoint does not serve."""

    status = 404

    def __init__(self, jurisdiction_id: str) -> None:
        super().__init__(
            f"jurisdiction_id {jurisdiction_id}: không phục vụ / not served by this endpoint"
        )


class UnknownService(Open311Error):
    status = 404

    def __init__(self, service_code: str) -> None:
        super().__init__(f"service_code {service_code}: không có / not found")


class UnknownServiceRequest(Open311Error):
    status = 404

    def __init__(self, service_request_id: str) -> None:
        super().__init__(f"service_request_id {service_request_id}: không có / not found")


class UnknownToken(Open311Error):
    status = 404

    def __init__(self, token: str) -> None:
        super().__init__(f"token {token}: không có / not found")


class BodyTooLarge(Open311Error):
    status = 413


class NotFormEncoded(Open311Error):
    status = 415

    def __init__(self) -> None:
        super().__init__("Cần application/x-www-form-urlencoded / Send form-encoded data")


class RateLimited(Open311Error):
    """Too many requests from one address or for one contact (`PETITIONS_PUBLIC_RATE_LIMIT`);
    nothing was stored, the client may retry after `retry_after` seconds."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Quá nhiều yêu cầu, thử lại sau {retry_after} giây / "
            f"Too many requests, retry in {retry_after} seconds"
        )
        self.retry_after = retry_after


class Unavailable(Open311Error):
    """The database cannot be reached; nothing was stored and the client may retry."""

    status = 503

    def __init__(self) -> None:
        super().__init__("Tạm thời không lưu được, hãy thử lại / Unavailable, please retry")
