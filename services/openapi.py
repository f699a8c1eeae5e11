"""The OpenAPI documents of the three services, checked in under `docs/openapi/` so that a
client can be generated without running anything, and kept true to the code by a test.

`python -m services.openapi` rewrites them; `--check` exits 1 when one is stale.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from services.stack import SERVICES

DOCS = Path(__file__).resolve().parent.parent / "docs" / "openapi"


def document(service: str) -> dict[str, Any]:
    """The service's OpenAPI document as its app serves it at `/openapi.json`."""
    settings = importlib.import_module(f"services.{service}.settings").Settings()
    app = importlib.import_module(f"services.{service}.app").create_app(settings)
    schema: dict[str, Any] = app.openapi()
    return schema


def render(service: str) -> str:
    return json.dumps(document(service), indent=2, ensure_ascii=False) + "\n"


def path(service: str) -> Path:
    return DOCS / f"{service}.json"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for service in SERVICES:
        text = render(service)
        target = path(service)
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current == text:
            continue
        stale.append(service)
        if not check:
            DOCS.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    if check and stale:
        sys.stderr.write(f"stale OpenAPI documents: {', '.join(stale)}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
