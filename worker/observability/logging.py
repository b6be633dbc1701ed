"""structlog configuration: JSON lines in production, readable output in a terminal.

The standard library's loggers (aio-pika, SQLAlchemy, Alembic) are routed through the
same processors, so every line has one format and passes the same redaction. An exception
given to a stdlib logger as an argument (``log.error("failed: %s", exc)``) is described
before it is interpolated; warnings and uncaught exceptions are logged, not printed raw.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TextIO

import structlog

from worker.observability.redaction import redact_processor
from worker.observability.tracebacks import describe, format_exc_info
from worker.observability.tracing import add_trace_ids

NOISY_LOGGERS = ("aio_pika", "aiormq", "sqlalchemy", "alembic", "asyncio")


def shared_processors() -> list[Any]:
    """The processors every line passes, ours and the standard library's, before rendering."""
    return [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Tracebacks become text first, each exception described without the values it
        # quotes (asyncpg's DETAIL, pydantic's input_value); the redaction below scrubs them.
        structlog.processors.ExceptionRenderer(format_exc_info),
        redact_processor,
    ]


def stdlib_handler(stream: TextIO, renderer: Any) -> logging.Handler:
    """A handler that puts the standard library's records through :func:`shared_processors`."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared_processors()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(_describe_exception_arguments)
    return handler


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Configure structlog and the standard library's logging (idempotent).

    Our own lines take structlog's native path (a filtering logger writing straight to
    stderr): it is several times cheaper than going through ``logging``, and one line is
    written per handled message. Foreign (stdlib) records get the same processors.
    """
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[*shared_processors(), renderer],
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    root.handlers[:] = [stdlib_handler(sys.stderr, renderer)]
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    logging.captureWarnings(True)  # warnings too: one format, the same redaction
    sys.excepthook = log_uncaught


def log_uncaught(cls: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """``sys.excepthook``: a crash becomes one redacted log line, not Python's raw traceback."""
    if issubclass(cls, KeyboardInterrupt):
        sys.__excepthook__(cls, exc, tb)
        return
    structlog.get_logger("worker").critical("worker.crashed", exc_info=(cls, exc, tb))


def _describe_exception_arguments(record: logging.LogRecord) -> bool:
    """A stdlib record's exception arguments, described without the values they quote."""
    if isinstance(record.msg, BaseException):
        record.msg = describe(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_described(a) for a in record.args)
    elif isinstance(record.args, Mapping):
        record.args = {k: _described(v) for k, v in record.args.items()}
    return True


def _described(value: object) -> object:
    return describe(value) if isinstance(value, BaseException) else value
