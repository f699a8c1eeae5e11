"""`python -m services.routing`: read settings, refuse bad ones clearly, serve."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from services.routing.app import create_app
from services.routing.settings import Settings
from shared.logging import configure_logging
from shared.serve import serve
from shared.settings import SettingsError, describe_validation_error


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.stderr.write(
            "routing: cấu hình không hợp lệ / invalid configuration: "
            f"{describe_validation_error(exc)}\n"
        )
        return 2
    configure_logging(service="routing", fmt=settings.resolved_log_format, level=settings.log_level)
    try:
        app = create_app(settings)
    except SettingsError as exc:
        sys.stderr.write(f"routing: cấu hình không hợp lệ / invalid configuration: {exc}\n")
        return 2
    serve(app, settings, port=settings.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
