"""Reading a request body within a size limit: what the JSON API, the pages and Open311 share."""

from __future__ import annotations

from starlette.requests import Request

from shared.web import ProblemError

MAX_BODY_BYTES = 64 * 1024


async def read_limited_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused with 413 beyond `limit` without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProblemError(413, f"Nội dung vượt quá {limit} byte / Body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProblemError(413, f"Nội dung vượt quá {limit} byte / Body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def is_json(content_type: str | None) -> bool:
    """`application/json` or a `+json` type, whatever its parameters."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
