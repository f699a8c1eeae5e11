"""`python -m services.intake`: refuse bad configuration with a clear message, then serve."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from services.intake.app import create_app
from services.intake.catalog import CatalogError
from services.intake.settings import Settings
from shared.logging import configure_logging
from shared.serve import serve
from shared.settings import SettingsError, describe_validation_error


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.stderr.write(
            "intake: cấu hình không hợp lệ / invalid configuration: "
            f"{describe_validation_error(exc)}\n"
        )
        return 2
    configure_logging(service="intake", fmt=settings.resolved_log_format, level=settings.log_level)
    try:
        app = create_app(settings)
    except CatalogError as exc:
        sys.stderr.write(f"intake: danh mục không hợp lệ / invalid catalog: {exc}\n")
        return 2
    except SettingsError as exc:
        sys.stderr.write(f"intake: cấu hình không hợp lệ / invalid configuration: {exc}\n")
        return 2
    serve(app, settings, port=settings.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
