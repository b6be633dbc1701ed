"""Conversations and their messages."""

from __future__ import annotations

import uuid
from typing import cast

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    Table,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.dml import Update

from worker.db.models import Conversation, Customer, Message
from worker.repositories.base import (
    BaseRepository,
    Page,
    clamp_limit,
    decode_sequence_cursor,
    encode_sequence_cursor,
    keyset_page,
)
from worker.repositories.customers import ERASED, CustomerRepository, live_customer
from worker.repositories.sequences import next_number

_BY_UUID = select(Conversation).where(Conversation.conversation_id == bindparam("uuid")).limit(1)
_LOCK_BY_UUID = _BY_UUID.with_for_update().execution_options(populate_existing=True)
_NEXT_SEQUENCE = select(func.coalesce(func.max(Message.sequence), 0) + 1).where(
    Message.conversation_id == bindparam("conversation_pk")
)


def _erased(column: SQLColumnExpression[str | None]) -> ColumnElement[str | None]:
    """``column`` replaced by the erased marker, where it held anything."""
    return case((column.is_(None), None), else_=literal(ERASED))


_TOUCH = (
    update(Conversation)
    .where(Conversation.id == bindparam("pk"))
    .values(updated_at=func.now())
    .execution_options(synchronize_session=False)
)

# The hot path of AppendMessage, in Core on the tables (no ORM compile or flush), built once.
_CONVERSATIONS = cast(Table, Conversation.__table__)
_MESSAGES = cast(Table, Message.__table__)
_TOUCH_IF_OPEN: dict[tuple[str, ...], Update] = {}
_APPEND = (
    insert(_MESSAGES)
    .values(
        conversation_id=bindparam("pk"),
        sequence=select(func.coalesce(func.max(_MESSAGES.c.sequence), 0) + 1)
        .where(_MESSAGES.c.conversation_id == bindparam("pk"))
        .scalar_subquery(),
        role=bindparam("message_role"),
        content=bindparam("message_content"),
    )
    .returning(_MESSAGES.c.id, _MESSAGES.c.sequence, _MESSAGES.c.created_at)
)


# StartConversation's hot path on PostgreSQL, in Core, built once: one INSERT … SELECT from
# the live customer's row (none: nothing inserted) that also inserts nothing if the UUID is
# taken. ``ON CONFLICT (conversation_id)`` names its unique constraint; a concurrent start
# with the same UUID makes this statement wait for that transaction and, if it commits,
# insert nothing (no row, no unique violation).
_CUSTOMERS = cast(Table, Customer.__table__)
_GIVEN = ("conversation_id", "channel", "subject")
_START_FOR_LIVE_CUSTOMER = (
    postgresql.insert(_CONVERSATIONS)
    .from_select(
        ["customer_id", *_GIVEN],
        select(
            _CUSTOMERS.c.id,
            *(bindparam(f"new_{name}", type_=_CONVERSATIONS.c[name].type) for name in _GIVEN),
        ).where(live_customer(bindparam("owner", type_=_CUSTOMERS.c.customer_id.type))),
        include_defaults=False,  # the server defaults apply, as RETURNING reports them
    )
    .on_conflict_do_nothing(index_elements=["conversation_id"])
    .returning(*(c for c in _CONVERSATIONS.c if c.key not in _GIVEN))
)


def _touch_if_open(finished: tuple[str, ...]) -> Update:
    """``UPDATE conversations SET updated_at = now() WHERE conversation_id = :uuid AND
    status NOT IN (finished) RETURNING id, updated_at``, built once per ``finished``."""
    stmt = _TOUCH_IF_OPEN.get(finished)
    if stmt is None:
        c = _CONVERSATIONS.c
        stmt = (
            update(_CONVERSATIONS)
            .where(c.conversation_id == bindparam("uuid"), *(c.status != s for s in finished))
            .values(updated_at=func.now())
            .returning(c.id, c.updated_at)
        )
        _TOUCH_IF_OPEN[finished] = stmt
    return stmt


class ConversationRepository(BaseRepository[Conversation]):
    """Conversations, their escalation tickets and keyset-paged listings."""

    model = Conversation

    async def find_by_conversation_id(
        self, conversation_id: uuid.UUID, *, for_update: bool = False
    ) -> Conversation | None:
        """The conversation with this UUID, optionally locked for this transaction."""
        stmt = _LOCK_BY_UUID if for_update else _BY_UUID
        return await self.session.scalar(stmt, {"uuid": conversation_id})

    async def start_for_live_customer(
        self,
        customer_id: str,
        *,
        channel: str,
        subject: str | None,
        conversation_id: uuid.UUID | None = None,
    ) -> Conversation | None:
        """Start a conversation, under ``conversation_id`` or else a fresh UUID, for the
        live customer with business id ``customer_id``; ``None``, having written nothing,
        if there is no such customer or a conversation has that UUID already.

        PostgreSQL: one ``INSERT … SELECT … FROM customers ON CONFLICT (conversation_id) DO
        NOTHING RETURNING``, the row returned held by the session. SQLite: the finders
        (the UUID's only if the caller chose it), then :meth:`create`.
        """
        given = {
            "conversation_id": conversation_id or uuid.uuid4(),
            "channel": channel,
            "subject": subject,
        }
        if self.session.get_bind().dialect.name != "postgresql":
            customer = await CustomerRepository(self.session).find_by_business_id(customer_id)
            if customer is None or (
                conversation_id is not None
                and await self.find_by_conversation_id(conversation_id) is not None
            ):
                return None
            return await self.create(customer_id=customer.id, **given)
        params = {"owner": customer_id, **{f"new_{k}": v for k, v in given.items()}}
        row = (await self.session.execute(_START_FOR_LIVE_CUSTOMER, params)).first()
        if row is None:
            return None
        return self._adopt({**given, **row._mapping})

    async def find_by_ticket_id(
        self, escalation_id: str, *, for_update: bool = False
    ) -> Conversation | None:
        """The conversation escalated under this ``ESC-…`` id."""
        stmt = select(Conversation).where(Conversation.escalation_id == escalation_id)
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return await self._one(stmt)

    async def find_by_customer(
        self, customer_pk: int, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Conversation]:
        """A customer's conversations, most recently updated first (keyset on updated_at, id)."""
        return await keyset_page(
            self.session,
            select(Conversation).where(Conversation.customer_id == customer_pk),
            time_column=Conversation.updated_at,
            id_column=Conversation.id,
            limit=limit,
            cursor=cursor,
        )

    async def find_escalated(
        self, *, limit: int = 100, cursor: str | None = None
    ) -> Page[Conversation]:
        """Escalated conversations, oldest escalation first (the agents' work queue)."""
        return await keyset_page(
            self.session,
            select(Conversation).where(Conversation.status == "escalated"),
            time_column=Conversation.escalated_at,  # type: ignore[arg-type]
            id_column=Conversation.id,
            limit=limit,
            cursor=cursor,
            descending=False,
        )

    async def erase_for_customer(self, customer_pk: int) -> list[uuid.UUID]:
        """Close the customer's conversations and replace their free text (subject,
        escalation reason, resolution); returns their conversation ids.

        Run it before :meth:`MessageRepository.erase_for_customer`: it locks the rows a
        concurrent append waits on, so no message slips in after the erasure.
        """
        stmt = (
            update(Conversation)
            .where(Conversation.customer_id == customer_pk)
            .values(
                status="closed",
                subject=_erased(Conversation.subject),
                escalation_reason=_erased(Conversation.escalation_reason),
                resolution=_erased(Conversation.resolution),
            )
            .returning(Conversation.conversation_id)
            .execution_options(synchronize_session=False)
        )
        return sorted((await self.session.scalars(stmt)).all())

    async def touch(self, conversation_pk: int) -> None:
        """Mark the conversation as active now (``updated_at``), in one statement built once."""
        await self.session.execute(_TOUCH, {"pk": conversation_pk})

    async def touch_unless(
        self, conversation_id: uuid.UUID, *, finished: tuple[str, ...]
    ) -> int | None:
        """Lock the conversation and mark it active now, unless its status is in
        ``finished``, in one ``UPDATE … RETURNING``; its primary key, or ``None`` if there is
        no such conversation or it is finished (find out which with a finder).

        The UPDATE holds the row lock until the transaction ends (on PostgreSQL; SQLite's
        ``BEGIN IMMEDIATE`` already serialises writers), as ``find_by_conversation_id(...,
        for_update=True)`` would.
        """
        params = {"uuid": conversation_id}
        row = (await self.session.execute(_touch_if_open(finished), params)).first()
        if row is None:
            return None
        self._loaded(row._mapping)
        return int(row.id)

    async def next_escalation_id(self) -> str:
        """A fresh, unique ``ESC-000001``-style ticket id."""
        return f"ESC-{await next_number(self.session, 'escalation'):06d}"


class MessageRepository(BaseRepository[Message]):
    """Messages within a conversation."""

    model = Message

    async def list_for_conversation(self, conversation_pk: int) -> list[Message]:
        """Every message of the conversation, by sequence."""
        stmt = select(Message).where(Message.conversation_id == conversation_pk)
        return await self._all(stmt.order_by(Message.sequence))

    async def transcript_page(
        self, conversation_pk: int, *, limit: int = 100, cursor: str | None = None
    ) -> Page[Message]:
        """The conversation's messages in sequence order, keyset-paged on the sequence."""
        limit = clamp_limit(limit)
        after = decode_sequence_cursor(cursor) if cursor is not None else 0
        stmt = (
            select(Message)
            .where(Message.conversation_id == conversation_pk, Message.sequence > after)
            .order_by(Message.sequence)
            .limit(limit + 1)
        )
        rows = await self._all(stmt)
        if len(rows) <= limit:
            return Page(rows, None)
        return Page(rows[:limit], encode_sequence_cursor(rows[limit - 1].sequence))

    async def append(self, conversation_pk: int, role: str, content: str) -> Message:
        """Insert the conversation's next message; its sequence is computed in the INSERT.

        Call it with the conversation row locked. ``sequence`` is a subquery
        (``max(sequence) + 1``, an index lookup) evaluated by the database and returned with
        RETURNING, so numbering costs no separate round trip. The statement is Core, built
        once.
        """
        params = {"pk": conversation_pk, "message_role": role, "message_content": content}
        row = (await self.session.execute(_APPEND, params)).one()
        return self._adopt(
            {"conversation_id": conversation_pk, "role": role, "content": content, **row._mapping}
        )

    async def erase_for_customer(self, customer_pk: int) -> int:
        """Replace the content of every message in the customer's conversations."""
        theirs = select(Conversation.id).where(Conversation.customer_id == customer_pk)
        stmt = (
            update(Message)
            .where(Message.conversation_id.in_(theirs))
            .values(content=ERASED)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def next_sequence(self, conversation_pk: int) -> int:
        """The next sequence number; call it with the conversation row locked."""
        return int(
            await self.session.scalar(_NEXT_SEQUENCE, {"conversation_pk": conversation_pk}) or 1
        )
