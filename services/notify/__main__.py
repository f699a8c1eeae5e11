"""`python -m services.notify`: refuse bad configuration clearly, then serve."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from shared.clock import clock_from_env
from shared.logging import configure_logging
from shared.serve import serve
from shared.settings import SettingsError, describe_validation_error

from .app import create_app
from .config import ChannelsFileError, load_config
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
    try:
        config = load_config(settings.channels_file)
        app = create_app(settings, clock=clock_from_env(settings.clock_file), config=config)
    except ChannelsFileError as exc:
        sys.stderr.write(
            f"notify: cấu hình kênh không hợp lệ / invalid channel configuration: {exc}\n"
        )
        return 2
    except SettingsError as exc:
        sys.stderr.write(f"notify: cấu hình không hợp lệ / invalid configuration: {exc}\n")
        return 2
    serve(app, settings, port=settings.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
