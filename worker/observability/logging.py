"""structlog configuration: JSON lines in production, readable output in a terminal.

The standard library's loggers (aio-pika, SQLAlchemy, Alembic) are routed through the
same processors, so every line has one format and passes the same redaction.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from worker.observability.redaction import redact_processor

NOISY_LOGGERS = ("aio_pika", "aiormq", "sqlalchemy", "alembic", "asyncio")


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Configure structlog and the standard library's logging (idempotent).

    Our own lines take structlog's native path (a filtering logger writing straight to
    stderr): it is several times cheaper than going through ``logging``, and one line is
    written per handled message. Foreign (stdlib) records get the same processors.
    """
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Tracebacks become text first so that the redaction below scrubs them too.
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[*shared, renderer],
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
