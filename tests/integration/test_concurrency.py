"""Races on PostgreSQL: many transactions at once through the services, over a real pool.

SQLite serialises every writer, so these tests only mean something on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select

from tests.factories import customer_fields, random_email
from tests.integration.ledger import ledger_balance, running_balance_gaps
from worker.db.models import Account, Transaction
from worker.db.session import SessionFactory, create_engine, create_session_factory
from worker.errors import (
    ConversationClosed,
    ConversationExists,
    DuplicateReference,
    EmailTaken,
    InsufficientFunds,
)
from worker.repositories import AccountRepository, MessageRepository
from worker.services import AccountService, ConversationService, CustomerService

pytestmark = pytest.mark.integration

CONCURRENCY = 50


@pytest.fixture
async def pooled(migrated_postgres_url: str) -> AsyncIterator[SessionFactory]:
    """Sessions on the session's PostgreSQL database through a real 20-connection pool."""
    engine = create_engine(migrated_postgres_url, pool_size=20)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def _open_funded_account(factory: SessionFactory, opening: Decimal) -> Account:
    async with CustomerService(factory) as customers:
        customer = await customers.create_customer(**customer_fields())
        await customers.commit()
    async with AccountService(factory) as accounts:
        account, _ = await accounts.open_account(
            customer_id=customer.customer_id, account_type="current"
        )
        await accounts.record_transaction(
            account_number=account.account_number,
            amount=opening,
            direction="credit",
            description="opening deposit",
            reference="opening",
        )
        await accounts.commit()
    return account


async def test_concurrent_debits_never_overdraw_and_leave_an_exact_balance(
    pooled: SessionFactory,
) -> None:
    account = await _open_funded_account(pooled, Decimal("100.00"))

    async def debit(i: int) -> bool:
        async with AccountService(pooled) as service:
            try:
                await service.record_transaction(
                    account_number=account.account_number,
                    amount=Decimal("3.00"),
                    direction="debit",
                    description="card payment",
                    reference=f"debit-{i}",
                )
            except InsufficientFunds:
                return False
            await service.commit()
            return True

    results = await asyncio.gather(*(debit(i) for i in range(CONCURRENCY)))

    assert results.count(True) == 33
    assert results.count(False) == 17
    async with pooled() as session:
        stored = await AccountRepository(session).find_by_account_number(account.account_number)
        assert stored is not None
        assert stored.balance == Decimal("1.00")
        assert await ledger_balance(session, account.id) == Decimal("1.00")
        assert await running_balance_gaps(session, account.id) == []
        lowest = select(func.min(Transaction.balance_after)).where(
            Transaction.account_id == account.id
        )
        assert await session.scalar(lowest) == Decimal("1.00")


async def test_concurrent_credits_and_debits_add_up_and_each_returns_its_own_balance(
    pooled: SessionFactory,
) -> None:
    account = await _open_funded_account(pooled, Decimal("1000.00"))
    moves = [
        ("debit" if i % 3 else "credit", Decimal(f"{i % 7 + 1}.25")) for i in range(CONCURRENCY)
    ]

    async def move(i: int) -> tuple[Transaction, Account]:
        direction, amount = moves[i]
        async with AccountService(pooled) as service:
            recorded = await service.record_transaction(
                account_number=account.account_number,
                amount=amount,
                direction=direction,
                description="mixed",
                reference=f"move-{i}",
            )
            await service.commit()
            return recorded

    results = await asyncio.gather(*(move(i) for i in range(CONCURRENCY)))

    expected = Decimal("1000.00") + sum(a if d == "credit" else -a for d, a in moves)
    assert all(t.balance_after == a.balance for t, a in results)
    async with pooled() as session:
        stored = await AccountRepository(session).find_by_account_number(account.account_number)
        assert stored is not None
        assert stored.balance == expected
        assert await ledger_balance(session, account.id) == expected
        assert await running_balance_gaps(session, account.id) == []
        last = select(Transaction.balance_after).order_by(Transaction.id.desc()).limit(1)
        assert await session.scalar(last.where(Transaction.account_id == account.id)) == expected


@contextmanager
def _statements(factory: SessionFactory) -> Iterator[list[str]]:
    """The SQL run through ``factory``'s engine inside the block (``BEGIN`` excluded)."""
    engine = factory.kw["bind"].sync_engine
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize(
    ("amount", "outcome"),
    [("3.00", Decimal("1.00")), ("5.00", InsufficientFunds)],
    ids=["allowed", "refused"],
)
async def test_a_transaction_waiting_for_the_account_is_checked_against_the_committed_balance(
    pooled: SessionFactory, amount: str, outcome: Decimal | type[Exception]
) -> None:
    """The waiter's statement starts (and takes its snapshot, balance 10.00) before the
    holder's debit of 6.00 commits: it must wait, then judge and record against 4.00."""
    account = await _open_funded_account(pooled, Decimal("10.00"))
    recorded = asyncio.Event()
    release = asyncio.Event()

    async def move(reference: str, debit: str) -> tuple[Transaction, Account]:
        async with AccountService(pooled) as service:
            result = await service.record_transaction(
                account_number=account.account_number,
                amount=Decimal(debit),
                direction="debit",
                description=reference,
                reference=reference,
            )
            recorded.set()
            await release.wait()
            await service.commit()
            return result

    with _statements(pooled) as statements:
        holder = asyncio.create_task(move("holder", "6.00"))
        await recorded.wait()
        waiter = asyncio.create_task(move("waiter", amount))
        await asyncio.sleep(0.3)
        assert not waiter.done(), "the waiter did not wait for the holder's transaction"
        release.set()
        await holder
        if isinstance(outcome, Decimal):
            transaction, updated = await waiter
            assert transaction.balance_after == updated.balance == outcome
            # Both in one statement each: the waiter did not fall back to the rule lookups.
            assert [s.split()[0].upper() for s in statements] == ["WITH", "WITH"]
        else:
            with pytest.raises(outcome):
                await waiter

    async with pooled() as session:
        stored = await AccountRepository(session).find_by_account_number(account.account_number)
        assert stored is not None
        assert stored.balance == await ledger_balance(session, account.id)
        assert stored.balance == (outcome if isinstance(outcome, Decimal) else Decimal("4.00"))
        assert await running_balance_gaps(session, account.id) == []


async def test_concurrent_transactions_with_one_reference_let_exactly_one_through(
    pooled: SessionFactory,
) -> None:
    account = await _open_funded_account(pooled, Decimal("10.00"))

    async def credit(i: int) -> bool:
        async with AccountService(pooled) as service:
            try:
                await service.record_transaction(
                    account_number=account.account_number,
                    amount=Decimal(f"{i + 1}.00"),
                    direction="credit",
                    description="refund",
                    reference="REFUND-1",
                )
            except DuplicateReference:
                return False
            await service.commit()
            return True

    results = await asyncio.gather(*(credit(i) for i in range(10)))

    assert results.count(True) == 1
    async with pooled() as session:
        stored = await AccountRepository(session).find_by_account_number(account.account_number)
        assert stored is not None
        assert stored.balance == Decimal("10.00") + results.index(True) + 1
        assert await ledger_balance(session, account.id) == stored.balance
        assert await running_balance_gaps(session, account.id) == []


async def test_a_locked_account_makes_the_next_locker_wait_for_the_commit(
    pooled: SessionFactory,
) -> None:
    account = await _open_funded_account(pooled, Decimal("10.00"))
    first_locked = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with pooled() as session, session.begin():
            repo = AccountRepository(session)
            locked = await repo.lock_by_account_number(account.account_number)
            assert locked is not None
            await repo.update(locked.id, balance=Decimal("7.00"))
            first_locked.set()
            await release.wait()

    async def second() -> Decimal:
        await first_locked.wait()
        async with pooled() as session, session.begin():
            locked = await AccountRepository(session).lock_by_account_number(account.account_number)
            assert locked is not None
            return locked.balance

    holder = asyncio.create_task(first())
    waiter = asyncio.create_task(second())
    await first_locked.wait()
    await asyncio.sleep(0.3)
    assert not waiter.done(), "the second lock did not wait for the first transaction"
    release.set()

    await holder
    assert await waiter == Decimal("7.00")


async def test_concurrent_creates_with_one_email_let_exactly_one_win(
    pooled: SessionFactory,
) -> None:
    email = random_email()
    spellings = [email.upper() if i % 2 else email for i in range(10)]

    async def create(spelling: str) -> str | None:
        async with CustomerService(pooled) as service:
            try:
                customer = await service.create_customer(**customer_fields(email=spelling))
            except EmailTaken:
                return None
            await service.commit()
            return customer.customer_id

    results = await asyncio.gather(*(create(s) for s in spellings))

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert results.count(None) == 9


@pytest.mark.parametrize("holder_commits", [True, False], ids=["committed", "rolled-back"])
async def test_a_create_waiting_on_the_same_email_follows_the_holders_outcome(
    pooled: SessionFactory, holder_commits: bool
) -> None:
    """The waiter's INSERT meets the holder's uncommitted row with the same email: it must
    wait, then insert nothing and be rejected by the lookup after it (the holder committed)
    or insert its row (the holder rolled back); never a unique violation."""
    email = random_email()
    created = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with CustomerService(pooled) as service:
            await service.create_customer(**customer_fields(email=email))
            created.set()
            await release.wait()
            if holder_commits:
                await service.commit()

    async def wait() -> str:
        async with CustomerService(pooled) as service:
            customer = await service.create_customer(**customer_fields(email=email.upper()))
            await service.commit()
            return customer.customer_id

    with _statements(pooled) as statements:
        holder = asyncio.create_task(hold())
        await created.wait()
        waiter = asyncio.create_task(wait())
        await asyncio.sleep(0.3)
        assert not waiter.done(), "the waiter did not wait for the holder's transaction"
        release.set()
        await holder
        if holder_commits:
            with pytest.raises(EmailTaken) as caught:
                await waiter
            assert caught.value.detail == "a customer with this email already exists"
            assert [s.split()[0].upper() for s in statements] == ["INSERT", "INSERT", "SELECT"]
        else:
            assert re.fullmatch(r"CUST-\d{6}", await waiter)
            assert [s.split()[0].upper() for s in statements] == ["INSERT", "INSERT"]

    async with CustomerService(pooled) as service:
        assert (await service.get_customer(email=email)).email == email


async def test_concurrent_starts_with_one_uuid_let_exactly_one_win(pooled: SessionFactory) -> None:
    async with CustomerService(pooled) as customers:
        customer = await customers.create_customer(**customer_fields())
        await customers.commit()
    chosen = uuid.uuid4()

    async def start() -> bool:
        async with ConversationService(pooled) as service:
            try:
                await service.start_conversation(
                    customer_id=customer.customer_id, channel="chat", conversation_id=chosen
                )
            except ConversationExists:
                return False
            await service.commit()
            return True

    results = await asyncio.gather(*(start() for _ in range(10)))

    assert results.count(True) == 1
    async with ConversationService(pooled) as service:
        page = await service.customer_conversations(customer.customer_id)
    assert [v.conversation_id for v in page.items] == [chosen]


async def test_concurrent_creates_get_unique_business_ids(pooled: SessionFactory) -> None:
    async def create() -> str:
        async with CustomerService(pooled) as service:
            customer = await service.create_customer(**customer_fields())
            await service.commit()
            return customer.customer_id

    ids = await asyncio.gather(*(create() for _ in range(30)))

    assert len(set(ids)) == 30
    assert all(re.fullmatch(r"CUST-\d{6}", i) for i in ids)


async def test_concurrent_messages_are_numbered_without_gaps_or_duplicates(
    pooled: SessionFactory,
) -> None:
    async with CustomerService(pooled) as customers:
        customer = await customers.create_customer(**customer_fields())
        await customers.commit()
    conversation_id = uuid.uuid4()
    async with ConversationService(pooled) as service:
        conversation, _ = await service.start_conversation(
            customer_id=customer.customer_id, channel="chat", conversation_id=conversation_id
        )
        await service.commit()

    async def append(i: int) -> int:
        async with ConversationService(pooled) as service:
            message = await service.append_message(
                conversation_id=conversation_id, role="customer", content=f"message {i}"
            )
            await service.commit()
            return message.sequence

    sequences = await asyncio.gather(*(append(i) for i in range(20)))

    assert sorted(sequences) == list(range(1, 21))
    async with pooled() as session:
        listed = await MessageRepository(session).list_for_conversation(conversation.id)
    assert [m.sequence for m in listed] == list(range(1, 21))


async def _started_conversation(pooled: SessionFactory) -> uuid.UUID:
    async with CustomerService(pooled) as customers:
        customer = await customers.create_customer(**customer_fields())
        await customers.commit()
    async with ConversationService(pooled) as service:
        conversation, _ = await service.start_conversation(
            customer_id=customer.customer_id, channel="chat"
        )
        await service.commit()
    return conversation.conversation_id


async def _append(pooled: SessionFactory, conversation_id: uuid.UUID) -> int:
    async with ConversationService(pooled) as service:
        message = await service.append_message(
            conversation_id=conversation_id, role="customer", content="hello"
        )
        await service.commit()
        return message.sequence


async def test_an_append_waits_for_the_transaction_holding_the_conversation_and_numbers_after_it(
    pooled: SessionFactory,
) -> None:
    conversation_id = await _started_conversation(pooled)
    first_appended = asyncio.Event()
    release = asyncio.Event()

    async def first() -> list[int]:
        async with ConversationService(pooled) as service:
            numbers = [
                (
                    await service.append_message(conversation_id=conversation_id, role=r, content=r)
                ).sequence
                for r in ("customer", "agent")
            ]
            first_appended.set()
            await release.wait()
            await service.commit()
            return numbers

    holder = asyncio.create_task(first())
    await first_appended.wait()
    waiter = asyncio.create_task(_append(pooled, conversation_id))
    await asyncio.sleep(0.3)
    assert not waiter.done(), "the second append did not wait for the first transaction"
    release.set()

    assert await holder == [1, 2]
    assert await waiter == 3


async def test_an_append_waiting_on_a_resolution_is_rejected_as_closed(
    pooled: SessionFactory,
) -> None:
    conversation_id = await _started_conversation(pooled)
    resolving = asyncio.Event()
    release = asyncio.Event()

    async def resolve() -> None:
        async with ConversationService(pooled) as service:
            await service.resolve(resolution="done", conversation_id=conversation_id)
            resolving.set()
            await release.wait()
            await service.commit()

    holder = asyncio.create_task(resolve())
    await resolving.wait()
    waiter = asyncio.create_task(_append(pooled, conversation_id))
    await asyncio.sleep(0.3)
    assert not waiter.done(), "the append did not wait for the resolution"
    release.set()
    await holder

    with pytest.raises(ConversationClosed):
        await waiter


async def test_concurrent_escalations_get_unique_ticket_ids(pooled: SessionFactory) -> None:
    async with CustomerService(pooled) as customers:
        customer = await customers.create_customer(**customer_fields())
        await customers.commit()
    async with ConversationService(pooled) as service:
        started = [
            (await service.start_conversation(customer_id=customer.customer_id, channel="chat"))[0]
            for _ in range(15)
        ]
        await service.commit()

    async def escalate(conversation_id: uuid.UUID) -> str | None:
        async with ConversationService(pooled) as service:
            ticket = await service.escalate(conversation_id=conversation_id, reason="help")
            await service.commit()
            return ticket.escalation_id

    ids = await asyncio.gather(*(escalate(c.conversation_id) for c in started))

    assert len(set(ids)) == 15
    assert None not in ids
