"""Outgoing requests: a message filled in, validated, and turned into a body and headers.

The real client and the in-memory double both prepare every message here, so a test against
the double exercises the same envelope, ordering key and trace headers as production.
"""

from __future__ import annotations

import contextlib
import json
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from contracts import (
    HEADER_ORDERING_KEY,
    CommandEnvelope,
    InvalidMessage,
    MessageEnvelope,
    QueryEnvelope,
    RequestEnvelope,
    body_digest_id,
    describe_validation_error,
    dump_message,
    ordering_key,
    parse_message,
    type_name,
)
from fca_client.tracing import trace_headers

__all__ = ["Outgoing", "build", "new_message_id", "prepare", "prepare_raw", "quiet_dump"]

RequestT = TypeVar("RequestT", bound=RequestEnvelope)


def new_message_id() -> str:
    """A fresh message id (a random UUID): the idempotency key of one request."""
    return str(uuid.uuid4())


def build(
    cls: type[RequestT],
    payload: BaseModel | Mapping[str, Any],
    *,
    message_id: str | None = None,
    correlation_id: str | None = None,
    actor: str | None = None,
    occurred_at: datetime | None = None,
) -> RequestT:
    """A validated command or query of ``cls``: a fresh message id and now unless given.

    Raises:
        contracts.InvalidMessage: the payload or an envelope field breaks the contract.
    """
    name = type_name(cls)
    message_id = new_message_id() if message_id is None else message_id
    try:
        return cls.model_validate(
            {
                "message_id": message_id,
                "type": name,
                "correlation_id": correlation_id,
                "occurred_at": datetime.now(UTC) if occurred_at is None else occurred_at,
                "actor": actor,
                "payload": payload,
            }
        )
    except ValidationError as exc:
        reason = describe_validation_error(exc)
        raise InvalidMessage(reason, message_id=message_id, type=name) from None


def quiet_dump(message: MessageEnvelope) -> bytes:
    """:func:`contracts.dump_message` without pydantic's warnings, which quote input values.

    A model made with ``model_construct`` may hold anything; what it holds is refused by
    parsing the body back, never echoed.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dump_message(message)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message ready to publish: its body, headers, and how its answer is recognised."""

    body: bytes
    routing_key: str
    message_id: str
    correlation_id: str | None
    headers: dict[str, str]
    causation_ids: frozenset[str]
    """An answer's ``causation_id`` is one of these (the message id, or the body's digest)."""
    reply_correlation_ids: frozenset[str] | None
    """An answer's AMQP ``correlation_id`` is one of these (None: not checked)."""
    message: RequestEnvelope | None = None
    """The message as the worker will read it (None for a raw body)."""


def prepare(
    message: RequestEnvelope,
    *,
    actor: str | None = None,
    trace: Mapping[str, str] | None = None,
) -> Outgoing:
    """Validate ``message`` as the worker will and compute its headers.

    ``actor`` is used when the message names none. The body is parsed back with
    :func:`contracts.parse_message`, so a message built with ``model_construct`` or
    ``model_copy`` is checked too.

    Raises:
        contracts.InvalidMessage: the message breaks the contract.
        TypeError: ``message`` is not a command or query of the contract.
        ValueError: ``trace`` is malformed.
    """
    if not isinstance(message, CommandEnvelope | QueryEnvelope):
        raise TypeError(f"{type(message).__name__} is not a command or query of the contract")
    if actor is not None and message.actor is None:
        message = message.model_copy(update={"actor": actor})
    body = quiet_dump(message)
    parsed = parse_message(body)
    correlation = parsed.correlation_id
    return Outgoing(
        body=body,
        routing_key=parsed.type,
        message_id=parsed.message_id,
        correlation_id=correlation,
        headers={HEADER_ORDERING_KEY: ordering_key(parsed), **trace_headers(trace)},
        causation_ids=frozenset({parsed.message_id}),
        # The worker sets the answer's correlation_id to the envelope's, which is the
        # request's correlation_id, or its message_id when it had none.
        reply_correlation_ids=frozenset({correlation or parsed.message_id, parsed.message_id}),
        message=parsed,
    )


def prepare_raw(
    body: bytes,
    *,
    routing_key: str,
    message_id: str,
    correlation_id: str | None = None,
    trace: Mapping[str, str] | None = None,
) -> Outgoing:
    """A body published as given (not validated), for tools and tests of bad input.

    The ordering key header is set when the body is a valid request; an answer is recognised
    by ``message_id`` or the body's digest (the worker's name for a body it cannot read).
    """
    headers = trace_headers(trace)
    # An invalid body gets no key: the worker dead-letters it from whichever partition.
    with contextlib.suppress(InvalidMessage):
        headers[HEADER_ORDERING_KEY] = ordering_key(parse_message(body))
    return Outgoing(
        body=body,
        routing_key=routing_key,
        message_id=message_id,
        correlation_id=correlation_id,
        headers=headers,
        causation_ids=frozenset(
            {message_id, body_digest_id(body)} | {i for i in [_body_message_id(body)] if i}
        ),
        reply_correlation_ids=None,
    )


def _body_message_id(body: bytes) -> str | None:
    """The envelope's ``message_id`` of a raw body, if it has a string one."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get("message_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None
