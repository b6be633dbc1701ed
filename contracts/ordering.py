"""The ordering key of a request: what a publisher puts in the ``fca-ordering-key`` header.

Commands with the same key are applied, and their events published, in the order they
were sent. The key is ``field:value`` of the first field the command class lists in
``ordering_fields`` that the payload holds:

- ``account_numbers`` counts only when it holds exactly one number, and then gives
  ``account_number:<it>`` (so freezing one account is ordered with its transactions);
- ``email`` is lower-cased; UUIDs are written in canonical lower-case hyphenated form;
- a command with none of its fields present, and every query, is keyed by its message id:
  ``message_id:<the message_id>``.
"""

from __future__ import annotations

from contracts.base import CommandEnvelope, RequestEnvelope

__all__ = ["ordering_key"]


def ordering_key(message: RequestEnvelope) -> str:
    """The ordering key of a command or query (the ``fca-ordering-key`` header value)."""
    if isinstance(message, CommandEnvelope):
        for name in type(message).ordering_fields:
            key = _field_key(name, getattr(message.payload, name, None))
            if key is not None:
                return key
    return f"message_id:{message.message_id}"


def _field_key(name: str, value: object) -> str | None:
    """``name:value`` for one present payload field, or None when it does not count."""
    if value is None:
        return None
    if name == "account_numbers":
        if isinstance(value, tuple | list) and len(value) == 1:
            return f"account_number:{value[0]}"
        return None
    if name == "email" and isinstance(value, str):
        return f"email:{value.lower()}"
    return f"{name}:{value}"  # a UUID's str() is its canonical lower-case hyphenated form
