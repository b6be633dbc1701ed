"""Personal data inside stored event bodies (the outbox), found and replaced for an erasure.

Which stored events carry personal data, and where:

* ``CustomerCreated``: ``payload.email``, ``payload.full_name``;
* ``CustomerUpdated``: ``payload.changes.email`` / ``full_name`` / ``phone`` (earlier values
  too, which the customer row no longer holds);
* ``ConversationResolved``: ``payload.resolution`` (free text).

Replacements keep each body valid against the contract, so an event still unsent is
published scrubbed: names and free text become ``[erased]``, emails
``erased@erased.invalid`` (a reserved domain), phones ``null``. No other event type carries
personal data (``MessageAppended`` has no content, ``ConversationStarted`` no subject,
``ConversationEscalated`` no reason, ``CommandRejected`` details never echo input).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, bindparam, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from worker.db.models import OutboxEvent
from worker.repositories.customers import ERASED

ERASED_EMAIL = "erased@erased.invalid"
_CUSTOMER_FIELDS: dict[str, str | None] = {
    "email": ERASED_EMAIL,
    "full_name": ERASED,
    "phone": None,
}
_CUSTOMER_EVENTS = ("CustomerCreated", "CustomerUpdated")
_CONVERSATION_EVENTS = ("ConversationResolved",)

_OUTBOX: Table = OutboxEvent.__table__  # type: ignore[assignment]
_REWRITE = (
    update(_OUTBOX).where(_OUTBOX.c.id == bindparam("event_pk")).values(body=bindparam("scrubbed"))
)


class StoredEventRepository:
    """Stored outbox bodies that name an erased customer; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def scrub_customer(
        self, customer_id: str, conversation_ids: Collection[uuid.UUID] = ()
    ) -> int:
        """Replace the customer's personal data in every stored event body; returns how many.

        Candidates are found with a ``LIKE`` on the body (a scan of the outbox, which
        retention keeps short) and confirmed on the parsed payload, so a longer id that
        merely contains this one is left alone.
        """
        conversations = {str(c) for c in conversation_ids}
        rows = (await self.session.execute(_candidates(customer_id, conversations))).all()
        rewrites = []
        for pk, event_type, body in rows:
            scrubbed = _scrub(event_type, json.loads(body), customer_id, conversations)
            if scrubbed is not None:
                rewrites.append({"event_pk": pk, "scrubbed": scrubbed})
        if rewrites:
            await self.session.execute(_REWRITE, rewrites)
        return len(rewrites)


def _candidates(customer_id: str, conversations: Collection[str]) -> Any:
    body, kind = _OUTBOX.c.body, _OUTBOX.c.event_type
    by_customer = and_(kind.in_(_CUSTOMER_EVENTS), body.contains(customer_id, autoescape=True))
    by_conversation: ColumnElement[bool] = false()
    if conversations:
        mentions = or_(*(body.contains(c, autoescape=True) for c in sorted(conversations)))
        by_conversation = and_(kind.in_(_CONVERSATION_EVENTS), mentions)
    return (
        select(_OUTBOX.c.id, kind, body)
        .where(or_(by_customer, by_conversation))
        .order_by(_OUTBOX.c.id)
    )


def _scrub(
    event_type: str, event: dict[str, Any], customer_id: str, conversations: Collection[str]
) -> str | None:
    """The body with the personal data replaced, or ``None`` if it is not this customer's."""
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return None
    if event_type in _CUSTOMER_EVENTS:
        if payload.get("customer_id") != customer_id:
            return None
        target = payload.get("changes") if event_type == "CustomerUpdated" else payload
        if isinstance(target, dict):
            for name, replacement in _CUSTOMER_FIELDS.items():
                if name in target:
                    target[name] = replacement
    elif payload.get("conversation_id") in conversations:
        if "resolution" in payload:
            payload["resolution"] = ERASED
    else:
        return None
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)
