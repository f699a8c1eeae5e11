"""structlog set-up: readable in a terminal, JSON in production; stdlib logs go the same way."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Literal

import structlog

# A resident's tracking token is in the tracking page's path (`/track/{token}`, and the API's
# `/api/v1/track/{token}`), and an Open311 client's key may be in a query string (`api_key=`):
# whoever reads a log must not be able to open the page or speak for the client.
_SECRET_IN_TEXT = re.compile(r"(/track/|/account/link/|api_key=)[^/?&#\s\"'\\<>]+")


def scrub_secrets(text: str) -> str:
    """The text with every tracking token, one-time account link and Open311 key replaced by
    a placeholder."""
    return _SECRET_IN_TEXT.sub(r"\1[redacted]", text)


def _scrub_values(_: Any, __: str, event_dict: structlog.types.EventDict) -> Any:
    """A structlog processor: the same for every text value of the event, before rendering."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = scrub_secrets(value)
    return event_dict


class _ScrubbingFormatter(structlog.stdlib.ProcessorFormatter):
    """Scrubs the rendered line too: a traceback, or a value that was not text (a URL object in an
    exception's arguments, say), is only text once rendered."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub_secrets(super().format(record))


def warn_running_open(reasons: list[str]) -> None:
    """One loud line per thing that leaves a development process open (demo secret, accounts,
    mailbox): whoever starts it sees it is not fit to hold residents' data."""
    log = structlog.get_logger("petitions.open")
    for reason in reasons:
        log.warning("running_open_for_development", reason=reason)


def configure_logging(
    *, service: str, fmt: Literal["console", "json"] = "console", level: str = "INFO"
) -> None:
    """Route structlog and stdlib logging through one renderer, with `service` bound; no line
    carries a tracking token or an Open311 key (`scrub_secrets`), whichever logger wrote it
    (ours, uvicorn's access and error logs, FastStream's, a traceback)."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        _scrub_values,
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
    formatter = _ScrubbingFormatter(
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
