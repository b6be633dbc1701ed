"""Keep personal data and secrets out of the logs.

A structlog processor that masks values under sensitive keys (names, contact details,
free text, credentials) and scrubs every other string for things that look like an
email address, a phone number, a card/account-like digit run, or a URL/DSN password.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

MASK = "[redacted]"

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

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # user:password@ in URLs and DSNs
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s/]*@"), r"\1:***@"),
    # key=value or key: value secrets
    (
        re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key)\b\s*[=:]\s*\S+"),
        r"\1=***",
    ),
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "[email]"),
)

# Phone numbers and card-like digit runs; dates, times and IP addresses are left alone.
_NUMBER = re.compile(r"(?<![\w.:-])\+?\d[\d ().-]{7,}\d(?![\w.:-])")
_NOT_PERSONAL = re.compile(r"\d{4}-\d{2}-\d{2}.*|\d{1,3}(\.\d{1,3}){3}")
MIN_PHONE_DIGITS = 9


def _mask_number(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    if digits < MIN_PHONE_DIGITS or _NOT_PERSONAL.fullmatch(text.strip()):
        return text
    return "[number]"


def scrub(text: str) -> str:
    """Mask anything in free text that looks like personal data or a secret."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _NUMBER.sub(_mask_number, text)


def _clean(key: str, value: Any) -> Any:
    if key.lower() in SENSITIVE_KEYS and value is not None:
        return MASK
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {str(k): _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(key, v) for v in value]
    return value


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask sensitive keys, scrub the rest (ids are left alone)."""
    for key, value in list(event_dict.items()):
        if key in {"message_id", "correlation_id", "causation_id", "type", "timestamp"}:
            continue
        event_dict[key] = _clean(key, value)
    return event_dict
