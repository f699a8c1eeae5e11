"""`python -m services.notify`: refuse bad configuration clearly, then serve."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from shared.clock import clock_from_env
from shared.logging import configure_logging
from shared.settings import describe_validation_error

from .app import create_app
from .settings import Settings


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.stderr.write(
            "notify: cấu hình không hợp lệ / invalid configuration: "
            f"{describe_validation_error(exc)}\n"
        )
        return 2
    configure_logging(service="notify", fmt=settings.resolved_log_format, level=settings.log_level)
    app = create_app(settings, clock=clock_from_env(settings.clock_file))
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
