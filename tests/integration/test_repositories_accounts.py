"""``AccountRepository`` and ``TransactionRepository`` finders."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import account_data, moments, transaction_data
from worker.db.models import Account, Customer, Transaction
from worker.repositories import AccountRepository, CustomerRepository, TransactionRepository

pytestmark = pytest.mark.integration


@pytest.fixture
async def accounts(session: AsyncSession, customers: list[Customer]) -> list[Account]:
    """Four accounts of the first customer (opened a minute apart) and one of the second."""
    repo = AccountRepository(session)
    owned = [await repo.create(**account_data(customers[0].id, created_at=at)) for at in moments(4)]
    return [*owned, await repo.create(**account_data(customers[1].id))]


async def test_find_by_account_number_returns_the_account(
    session: AsyncSession, accounts: list[Account]
) -> None:
    found = await AccountRepository(session).find_by_account_number(accounts[2].account_number)

    assert found is accounts[2]


async def test_find_by_account_number_returns_none_when_missing(
    session: AsyncSession, accounts: list[Account]
) -> None:
    assert await AccountRepository(session).find_by_account_number("000") is None


async def test_list_by_customer_returns_newest_first(
    session: AsyncSession, accounts: list[Account], customers: list[Customer]
) -> None:
    listed = await AccountRepository(session).list_by_customer(customers[0].id)

    assert [a.id for a in listed] == [a.id for a in reversed(accounts[:4])]
    assert await AccountRepository(session).list_by_customer(customers[5].id) == []


async def test_list_by_customer_honours_the_limit(
    session: AsyncSession, accounts: list[Account], customers: list[Customer]
) -> None:
    listed = await AccountRepository(session).list_by_customer(customers[0].id, limit=2)

    assert [a.id for a in listed] == [accounts[3].id, accounts[2].id]


async def test_lock_by_account_number_reads_the_current_row_not_a_stale_copy(
    session: AsyncSession, accounts: list[Account]
) -> None:
    account = accounts[0]
    assert account.balance == Decimal("0.00")
    await session.execute(
        update(Account)
        .where(Account.id == account.id)
        .values(balance=Decimal("12.34"))
        .execution_options(synchronize_session=False)
    )

    locked = await AccountRepository(session).lock_by_account_number(account.account_number)

    assert locked is account
    assert locked.balance == Decimal("12.34")


async def test_lock_by_account_number_returns_none_when_missing(session: AsyncSession) -> None:
    assert await AccountRepository(session).lock_by_account_number("404") is None


async def test_change_status_moves_only_existing_accounts_in_the_given_status(
    session: AsyncSession, accounts: list[Account]
) -> None:
    repo = AccountRepository(session)
    await repo.update(accounts[1].id, status="closed")
    asked = [accounts[3].account_number, accounts[0].account_number]
    asked += [accounts[1].account_number, "missing-1"]

    frozen = await repo.change_status(asked, before="active", after="frozen")

    assert frozen == sorted([accounts[0].account_number, accounts[3].account_number])
    assert await repo.change_status(asked, before="active", after="frozen") == []
    session.expunge_all()
    statuses = {a.account_number: a.status for a in await repo.get_all()}
    assert statuses[accounts[0].account_number] == "frozen"
    assert statuses[accounts[1].account_number] == "closed"
    assert statuses[accounts[2].account_number] == "active"
    unfrozen = await repo.change_status(asked, before="frozen", after="active")
    assert unfrozen == frozen


async def test_count_existing_counts_only_known_numbers(
    session: AsyncSession, accounts: list[Account]
) -> None:
    repo = AccountRepository(session)
    numbers = [a.account_number for a in accounts[:3]]

    assert await repo.count_existing([*numbers, "nope"]) == 3
    assert await repo.count_existing(["nope"]) == 0


async def test_next_account_number_is_unique_and_eight_digits(session: AsyncSession) -> None:
    repo = AccountRepository(session)

    numbers = [await repo.next_account_number() for _ in range(10)]

    assert len(set(numbers)) == 10
    assert all(re.fullmatch(r"\d{8}", n) for n in numbers)


# --- the OpenAccount hot path ----------------------------------------------------------------


async def test_open_for_live_customer_returns_a_fully_populated_account_held_by_the_session(
    session: AsyncSession, customers: list[Customer]
) -> None:
    repo = AccountRepository(session)

    account = await repo.open_for_live_customer(
        customers[0].customer_id, account_type="savings", currency="EUR"
    )

    assert account is not None
    assert re.fullmatch(r"\d{8}", account.account_number)
    assert (account.customer_id, account.account_type, account.currency) == (
        customers[0].id,
        "savings",
        "EUR",
    )
    assert (account.balance, account.status) == (Decimal("0.00"), "active")
    assert isinstance(account.balance, Decimal)
    assert isinstance(account.id, int)
    assert account.created_at.tzinfo is not None
    assert await repo.find_by_account_number(account.account_number) is account


@pytest.mark.parametrize("case", ["missing", "deleted"])
async def test_open_for_live_customer_opens_nothing_and_takes_no_number_without_one(
    session: AsyncSession, customers: list[Customer], case: str
) -> None:
    repo = AccountRepository(session)
    if case == "deleted":
        await CustomerRepository(session).delete(customers[1].id)
    customer_id = "CUST-404404" if case == "missing" else customers[1].customer_id
    live = customers[0].customer_id

    before = await repo.open_for_live_customer(live, account_type="current", currency="GBP")
    refused = await repo.open_for_live_customer(customer_id, account_type="current", currency="GBP")
    after = await repo.open_for_live_customer(live, account_type="current", currency="GBP")

    assert refused is None
    assert before is not None
    assert after is not None
    assert int(after.account_number) == int(before.account_number) + 1
    assert await repo.count() == 2


# --- transactions ------------------------------------------------------------------------


async def test_find_recent_transactions_returns_newest_first_within_the_limit(
    session: AsyncSession, accounts: list[Account]
) -> None:
    repo = TransactionRepository(session)
    account, other = accounts[0], accounts[4]
    created = [
        await repo.create(**transaction_data(account.id, created_at=at)) for at in moments(6)
    ]
    await repo.create(**transaction_data(other.id))

    recent = await repo.find_recent_transactions(account.id, limit=4)

    assert [t.id for t in recent] == [t.id for t in reversed(created)][:4]
    assert len(await repo.find_recent_transactions(account.id)) == 6
    assert await repo.find_recent_transactions(accounts[2].id) == []


async def test_find_recent_transactions_breaks_timestamp_ties_by_id(
    session: AsyncSession, accounts: list[Account]
) -> None:
    repo = TransactionRepository(session)
    [at] = moments(1)
    created = [await repo.create(**transaction_data(accounts[0].id, created_at=at)) for _ in "abc"]

    recent = await repo.find_recent_transactions(accounts[0].id)

    assert [t.id for t in recent] == [t.id for t in reversed(created)]


async def test_find_by_reference_finds_only_the_accounts_own_reference(
    session: AsyncSession, accounts: list[Account]
) -> None:
    repo = TransactionRepository(session)
    mine = await repo.create(**transaction_data(accounts[0].id, reference="INV-1"))

    assert await repo.find_by_reference(accounts[0].id, "INV-1") is mine
    assert await repo.find_by_reference(accounts[1].id, "INV-1") is None
    assert await repo.find_by_reference(accounts[0].id, "INV-2") is None


# --- the RecordTransaction hot path ----------------------------------------------------------

BOUNDS = {"status": "active", "floor": Decimal("0"), "ceiling": Decimal("100.00")}


async def _record(
    session: AsyncSession, number: str, delta: str, reference: str = "R-1", **rules: object
) -> tuple[Transaction, Account] | None:
    return await TransactionRepository(session).record_against_balance(
        number,
        amount=abs(Decimal(delta)),
        direction="credit" if Decimal(delta) > 0 else "debit",
        description="test",
        reference=reference,
        delta=Decimal(delta),
        **(BOUNDS | rules),  # type: ignore[arg-type]
    )


async def _stored_balance(session: AsyncSession, account_pk: int) -> Decimal | None:
    return await session.scalar(select(Account.balance).where(Account.id == account_pk))


async def test_record_against_balance_records_the_balance_after_and_sets_the_balance(
    session: AsyncSession, accounts: list[Account]
) -> None:
    account = accounts[0]
    await AccountRepository(session).set_balance(account.id, Decimal("10.00"))

    recorded = await _record(session, account.account_number, "-2.50")

    assert recorded is not None
    transaction, updated = recorded
    assert (transaction.account_id, transaction.balance_after) == (account.id, Decimal("7.50"))
    assert (transaction.amount, transaction.direction, transaction.reference) == (
        Decimal("2.50"),
        "debit",
        "R-1",
    )
    assert isinstance(transaction.id, int)
    assert transaction.created_at.tzinfo is not None
    assert await TransactionRepository(session).find_by_reference(account.id, "R-1") is transaction
    assert updated is account  # the session's copy, refreshed
    assert (updated.balance, updated.status) == (Decimal("7.50"), "active")
    assert updated.created_at.tzinfo is not None
    assert await _stored_balance(session, account.id) == Decimal("7.50")


@pytest.mark.parametrize(
    ("case", "delta", "rules"),
    [
        ("missing", "1.00", {}),
        ("frozen", "1.00", {"status": "frozen_only"}),
        ("below the floor", "-10.01", {}),
        ("above the ceiling", "90.01", {}),
        ("used reference", "1.00", {}),
    ],
)
async def test_record_against_balance_writes_nothing_when_a_condition_fails(
    session: AsyncSession, accounts: list[Account], case: str, delta: str, rules: dict[str, object]
) -> None:
    account = accounts[1]
    await AccountRepository(session).set_balance(account.id, Decimal("10.00"))
    await TransactionRepository(session).create(**transaction_data(account.id, reference="USED"))
    number = "404" if case == "missing" else account.account_number
    reference = "USED" if case == "used reference" else "NEW"

    assert await _record(session, number, delta, reference, **rules) is None

    assert await TransactionRepository(session).find_by_reference(account.id, "NEW") is None
    assert await TransactionRepository(session).count(account_id=account.id) == 1
    assert await _stored_balance(session, account.id) == Decimal("10.00")


async def test_record_against_balance_accepts_the_exact_bounds_and_chains_the_balance(
    session: AsyncSession, accounts: list[Account]
) -> None:
    number = accounts[2].account_number

    top = await _record(session, number, "100.00", "top")
    bottom = await _record(session, number, "-100.00", "bottom")

    assert top is not None
    assert bottom is not None
    assert (top[0].balance_after, bottom[0].balance_after) == (Decimal("100.00"), Decimal("0.00"))
    assert bottom[1].balance == await _stored_balance(session, accounts[2].id) == Decimal("0.00")


async def test_set_balance_returns_the_account_and_refreshes_the_sessions_copy(
    session: AsyncSession, accounts: list[Account]
) -> None:
    repo = AccountRepository(session)
    loaded = await repo.find_by_account_number(accounts[3].account_number)
    assert loaded is not None

    updated = await repo.set_balance(loaded.id, Decimal("42.10"))

    assert updated is loaded
    assert loaded.balance == Decimal("42.10")
    assert (updated.account_number, updated.status) == (accounts[3].account_number, "active")
