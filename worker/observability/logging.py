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
    """Configure structlog and the standard library's logging (idempotent)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
