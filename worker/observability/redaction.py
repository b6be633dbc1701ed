"""Keep personal data and secrets out of the logs: the structlog processor.

Every key of every line, at any depth, goes through one rule:

* **Sensitive keys** (names, contact details, free text, bodies, credentials, URLs): the
  value is replaced by ``[redacted]``.
* **Message ids** (``message_id``, ``causation_id``, ``*_message_id``) stay readable: they are
  the operator's handle on a message (``worker dlq replay --message-id``). A UUID, a 32-digit
  hex id or a ``sha256:`` digest id (all the ids the worker makes) is kept as it is; any other
  id is scrubbed like free text.
* **Correlation ids** (``correlation_id``, ``*_correlation_id``) are the sender's choice and
  often name a session or a person (``chat-jane.doe@…``): a UUID, 32-digit hex or ``sha256:``
  id is kept; anything else becomes ``hashed:<16 hex>``, a keyed BLAKE2b hash whose key is
  random per process. The same value gives the same stand-in for the life of the process, so
  one replica's lines still correlate, but the stand-in cannot be reversed or looked up.
* **Exceptions** are described without the values they quote
  (:mod:`worker.observability.tracebacks`); pydantic models and dataclasses become mappings
  (so their sensitive fields are masked by key); bytes are masked.
* **Every other string** (the event too: a library's log message) is scrubbed
  (:func:`worker.observability.scrubbing.scrub`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
from collections.abc import Mapping, MutableMapping
from typing import Any

from pydantic import BaseModel

from worker.observability.scrubbing import MASK, scrub
from worker.observability.tracebacks import describe

__all__ = ["MASK", "SENSITIVE_KEYS", "is_safe_id", "pseudonym", "redact_processor", "scrub"]

SENSITIVE_KEYS = frozenset(
    {
        "email",
        "phone",
        "full_name",
        "name",
        "first_name",
        "last_name",
        "content",
        "description",
        "subject",
        "reason",
        "resolution",
        "question",
        "answer",
        "body",
        "payload",
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "authorization",
        "amqp_url",
        "database_url",
        "dsn",
        "url",
        "headers",
        "detail",
    }
)

OWN_KEYS = frozenset({"timestamp", "level", "logger", "_record", "_from_structlog"})
"""Keys the logging machinery fills in itself: left alone."""

_SAFE_ID = re.compile(
    r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"  # a UUID
    r"|(?=[0-9]*[a-fA-F])[0-9a-fA-F]{32}"  # a UUID's hex (with a letter: not a digit run)
    r"|sha256:[0-9a-f]{64}"  # contracts.body_digest_id
)
_PSEUDONYM_KEY = secrets.token_bytes(32)
MAX_DEPTH = 8
"""Nesting deeper than this is masked rather than walked."""


def is_safe_id(value: str) -> bool:
    """Whether an id has a shape that cannot carry personal data (UUID, hex, sha256 digest)."""
    return _SAFE_ID.fullmatch(value) is not None


def pseudonym(value: str) -> str:
    """A stand-in for ``value``: stable in this process, irreversible (keyed BLAKE2b)."""
    digest = hashlib.blake2b(value.encode(), key=_PSEUDONYM_KEY, digest_size=8).hexdigest()
    return f"hashed:{digest}"


def _correlation_id(value: Any) -> Any:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if is_safe_id(text) else pseudonym(text)


def _message_id(value: Any) -> Any:
    if isinstance(value, str):
        return value if is_safe_id(value) else scrub(value)
    return _clean("", value)


def _clean(key: str, value: Any, depth: int = 0) -> Any:
    lowered = key.lower()
    if lowered.endswith("correlation_id"):
        return _correlation_id(value)
    if lowered.endswith("message_id") or lowered == "causation_id":
        return _message_id(value)
    if value is None:
        return None
    if lowered in SENSITIVE_KEYS or depth > MAX_DEPTH:
        return MASK
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, BaseException):
        return describe(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return MASK
    if isinstance(value, BaseModel):
        return _clean(key, dict(value), depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _clean(key, fields, depth + 1)
    if isinstance(value, Mapping):
        return {scrub(str(k)): _clean(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(key, v, depth + 1) for v in value]
    return scrub(str(value))


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask sensitive keys, keep or hash ids, scrub everything else."""
    for key, value in list(event_dict.items()):
        if key not in OWN_KEYS:
            event_dict[key] = _clean(key, value)
    return event_dict
