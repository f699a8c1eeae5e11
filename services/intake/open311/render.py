"""One serializer for every GeoReport answer: the same pydantic models as JSON or as XML.

XML is built with ElementTree, which escapes every text; characters XML 1.0 cannot carry at
all are dropped first (they never come from our validated data, but a 500 is worse)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from services.intake.open311.schemas import Format, GeoReportError

XML_MEDIA_TYPE = "text/xml"
# The element of one item inside each list GeoReport names in the plural.
_ITEM = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _fill(element: ET.Element, value: Any) -> None:
    """`value` (JSON-ready data) as the content of `element`."""
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(ET.SubElement(element, key), child)
    elif isinstance(value, list):
        item = _ITEM.get(element.tag, "item")
        for child in value:
            _fill(ET.SubElement(element, item), child)
    else:
        element.text = _text(value)


def to_xml(root: str, data: Any) -> bytes:
    element = ET.Element(root)
    _fill(element, data)
    # The specification asks for this declaration, double quotes and all.
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        + ET.tostring(element, encoding="unicode").encode()
    )


def respond(
    fmt: Format,
    root: str,
    payload: BaseModel | Sequence[BaseModel],
    *,
    status: int = 200,
) -> Response:
    """The answer in the format the client named by its suffix. `root` is the XML root
    element (`services`, `service_requests`, `service_definition`); a list of models becomes
    that root's items."""
    data: Any = (
        payload.model_dump(mode="json")
        if isinstance(payload, BaseModel)
        else [m.model_dump(mode="json") for m in payload]
    )
    if fmt == "xml":
        return Response(
            to_xml(root, data), status_code=status, media_type=f"{XML_MEDIA_TYPE}; charset=utf-8"
        )
    return JSONResponse(data, status_code=status)


def errors(fmt: Format, status: int, descriptions: Sequence[str]) -> Response:
    """GeoReport's error list: `[{"code", "description"}]` or `<errors><error>…`, with the
    HTTP status equal to each code."""
    items = [GeoReportError(code=status, description=d) for d in dict.fromkeys(descriptions)]
    response = respond(fmt, "errors", items, status=status)
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response
