"""structlog set-up: readable in a terminal, JSON in production; stdlib logs go the same way."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog


def configure_logging(
    *, service: str, fmt: Literal["console", "json"] = "console", level: str = "INFO"
) -> None:
    """Route structlog and stdlib logging through one renderer, with `service` bound."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        # Plain tracebacks: the default pretty one prints every local variable, thousands of lines.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_drop_idle_fetch_timeouts)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Per-message and per-request INFO lines cost a consumer a third of its throughput.
    for noisy in ("uvicorn.access", "faststream", "faststream.access", "aiosqlite", "nats"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def _drop_idle_fetch_timeouts(record: logging.LogRecord) -> bool:
    """Hide FastStream's "task raised an exception, retrying" for an idle pull fetch.

    nats-py raises the builtin TimeoutError when a fetch finds no message; FastStream only
    expects its own TimeoutError there, so it restarts the fetch task and logs a traceback at
    ERROR, though nothing is wrong and nothing is lost. Any other exception still shows.
    """
    exc = record.exc_info[1] if record.exc_info else None
    return not (isinstance(exc, TimeoutError) and "raised an exception" in record.getMessage())
