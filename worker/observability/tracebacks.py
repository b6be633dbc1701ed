"""Exceptions and tracebacks described without the values they quote.

Python prints ``str(exc)`` for every exception of a chain, and some exceptions quote the data
they failed on: asyncpg appends PostgreSQL's ``DETAIL`` (``Key (email)=(…) already exists``,
``Failing row contains (…)``) and the primary message may quote input (``invalid input
syntax for type uuid: "…"``); pydantic prints every error's ``input_value``. So each
exception is described from its parts instead:

* a PostgreSQL or asyncpg error: its message up to the first quoted text that is not one of
  the error's own identifiers (table, column, constraint, schema, type) or a word of the
  statement, then its SQLSTATE and those identifiers; the detail and context are withheld, and
  so is the whole message of a PL/pgSQL ``RAISE`` (SQLSTATE class P0: a trigger's free text).
  SQLAlchemy's wrappers and its asyncpg adapter are described by the driver error inside
  them, plus the statement (never its parameters);
* a pydantic ``ValidationError``: location, message and error type of each error, never the
  input (nor a key the model does not know, which the sender chose);
* anything else: ``str(exc)``, scrubbed (:func:`worker.observability.scrubbing.scrub`).

Frames are printed as Python prints them: file, line, function and source line, no locals.
"""

from __future__ import annotations

import re
import textwrap
import traceback
from types import TracebackType

import asyncpg
from pydantic import ValidationError
from sqlalchemy.exc import StatementError

from worker.observability.scrubbing import MASK, scrub

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
MAX_GROUP_WIDTH = 15
MAX_GROUP_DEPTH = 10

_DRIVER_ERRORS: tuple[type[BaseException], ...] = (asyncpg.PostgresError, asyncpg.InterfaceError)
_IDENTIFIERS = ("table_name", "column_name", "constraint_name", "schema_name", "data_type_name")
_QUOTE = re.compile(r"[\"']")
_RAISED = "P0"
"""SQLSTATE class of PL/pgSQL ``RAISE``: the message is whatever a trigger wrote."""
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def format_exc_info(exc_info: ExcInfo) -> str:
    """A structlog exception formatter: :func:`format_exception` of ``exc_info``'s exception."""
    return format_exception(exc_info[1])


def format_exception(exc: BaseException, *, _depth: int = 0) -> str:
    """Python's traceback layout (chains and groups), each exception from :func:`describe`."""
    links: list[tuple[BaseException, str]] = []  # newest first, with the line joining its cause
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.__cause__ is not None:
            links.append((current, _CAUSE))
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            links.append((current, _CONTEXT))
            current = current.__context__
        else:
            links.append((current, ""))
            current = None
    parts: list[str] = []
    for exception, joint in reversed(links):
        if parts:
            parts.append(joint)
        parts.append(_one(exception, _depth))
    return "".join(parts)


def _one(exc: BaseException, depth: int) -> str:
    lines = []
    if exc.__traceback__ is not None:
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_tb(exc.__traceback__))
    lines.append(describe(exc) + "\n")
    if isinstance(exc, BaseExceptionGroup) and depth < MAX_GROUP_DEPTH:
        for number, member in enumerate(exc.exceptions[:MAX_GROUP_WIDTH], 1):
            lines.append(f"+---------------- {number} ----------------\n")
            lines.append(textwrap.indent(format_exception(member, _depth=depth + 1), "| "))
        if len(exc.exceptions) > MAX_GROUP_WIDTH:
            lines.append(f"+---- and {len(exc.exceptions) - MAX_GROUP_WIDTH} more ----\n")
    return "".join(lines)


def describe(exc: BaseException) -> str:
    """``module.Type: message`` as Python prints it, the message from :func:`safe_message`."""
    cls = type(exc)
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    message = safe_message(exc)
    text = f"{name}: {message}" if message else name
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        text += "".join(f"\n{scrub(str(note))}" for note in notes)
    return text


def safe_message(exc: BaseException) -> str:
    """``exc``'s message without the values it quotes (see the module's docstring)."""
    if isinstance(exc, StatementError):
        return _statement_message(exc)
    driver = _driver_error(exc)
    if driver is not None:
        return _driver_message(driver)
    if isinstance(exc, ValidationError):
        return _validation_message(exc)
    return scrub(_text(exc))


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a broken __str__ must not lose the log line
        return "<str() failed>"


def _driver_error(exc: BaseException) -> BaseException | None:
    """The asyncpg error ``exc`` is, or re-raises with its message (SQLAlchemy's adapter)."""
    if isinstance(exc, _DRIVER_ERRORS):
        return exc
    cause = exc.__cause__
    if isinstance(cause, _DRIVER_ERRORS) and cause.args and str(cause.args[0]) in _text(exc):
        return cause
    return None


def _driver_message(exc: BaseException, statement: str | None = None) -> str:
    names = {v for f in _IDENTIFIERS if isinstance(v := getattr(exc, f, None), str)}
    if statement:  # our own SQL names relations and columns, never values (they are $n)
        names |= set(_WORD.findall(statement))
    sqlstate = str(getattr(exc, "sqlstate", None) or "")
    raw = str(exc.args[0]) if exc.args else ""
    # A PL/pgSQL RAISE says whatever the trigger's author wrote: free text, withheld.
    message = MASK if sqlstate.startswith(_RAISED) else _up_to_data(raw, names)
    facts = [f"sqlstate {sqlstate}"] if sqlstate else []
    facts += [
        f"{f.removesuffix('_name')} {getattr(exc, f)}"
        for f in _IDENTIFIERS[:3]
        if isinstance(getattr(exc, f, None), str)
    ]
    if getattr(exc, "detail", None):
        facts.append("detail withheld")
    if isinstance(hint := getattr(exc, "hint", None), str) and hint:
        facts.append(f"hint: {_up_to_data(hint, names)}")
    return f"{message} [{'; '.join(facts)}]" if facts else message


def _up_to_data(message: str, names: set[str]) -> str:
    """``message`` up to its first quoted text that is not one of ``names`` (identifiers)."""
    position = 0
    while (quote := _QUOTE.search(message, position)) is not None:
        end = message.find(quote.group(0), quote.end())
        if end < 0 or message[quote.end() : end] not in names:
            return scrub(message[: quote.start()]) + MASK
        position = end + 1
    return scrub(message)


def _statement_message(exc: StatementError) -> str:
    orig = exc.orig
    if isinstance(orig, BaseException):
        driver = _driver_error(orig)
        message = safe_message(orig) if driver is None else _driver_message(driver, exc.statement)
        head = f"({type(orig).__module__}.{type(orig).__qualname__}) {message}"
    else:
        head = scrub(str(exc.args[0])) if exc.args else ""
    return f"{head}\n[SQL: {scrub(exc.statement)}]" if exc.statement else head


def _validation_message(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_context=True, include_input=True)
    lines = [f"{len(errors)} validation error{'s' if len(errors) != 1 else ''} for {exc.title}"]
    for error in errors:
        location = [scrub(str(part)) for part in error["loc"]]
        if error["type"] == "extra_forbidden" and location:
            location[-1] = MASK  # a key the sender chose
        message = error["msg"]
        for echoed in _echoed(error.get("input"), (error.get("ctx") or {}).get("tag")):
            message = message.replace(echoed, MASK)
        lines.append(f"{'.'.join(location)}\n  {scrub(message)} [type={error['type']}]")
    return "\n".join(lines)


def _echoed(*values: object) -> list[str]:
    """How a message may quote these input values (longest first)."""
    found = set()
    for value in values:
        if isinstance(value, str) and value:
            found |= {repr(value), f"'{value}'", f'"{value}"'}
            if len(value) >= 3:  # short ones would mask parts of ordinary words
                found.add(value)
    return sorted(found, key=len, reverse=True)
