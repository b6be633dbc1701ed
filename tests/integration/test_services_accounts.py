"""``AccountService`` rules against a real database: opening, freezing, moving money."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from tests.integration.ledger import ledger_balance, running_balance_gaps
from worker.db.models import Account, Customer, Transaction
from worker.db.session import SessionFactory
from worker.errors import (
    AccountFrozen,
    AccountNotFound,
    AccountsNotFound,
    BalanceLimitExceeded,
    CustomerNotFound,
    DuplicateReference,
    InsufficientFunds,
)
from worker.repositories import AccountRepository
from worker.services import AccountService, CustomerService
from worker.services.accounts import Provenance

if TYPE_CHECKING:
    from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration

MakeCustomer = Callable[..., Awaitable[Customer]]
OpenAccount = Callable[..., Awaitable[Account]]


@pytest.fixture
def open_account(session_factory: SessionFactory, make_customer: MakeCustomer) -> OpenAccount:
    """Open (and commit) an account for a new customer."""

    async def open_(**kwargs: str) -> Account:
        customer = await make_customer()
        async with AccountService(session_factory) as service:
            account, _ = await service.open_account(
                customer_id=customer.customer_id, account_type="current", **kwargs
            )
            await service.commit()
        return account

    return open_


async def _move(
    factory: SessionFactory, account_number: str, direction: str, amount: str, reference: str
) -> tuple[Transaction, Account]:
    async with AccountService(factory) as service:
        result = await service.record_transaction(
            account_number=account_number,
            amount=Decimal(amount),
            direction=direction,
            description=f"{direction} {amount}",
            reference=reference,
        )
        await service.commit()
    return result


async def _account(factory: SessionFactory, account_number: str) -> Account:
    async with factory() as session:
        account = await AccountRepository(session).find_by_account_number(account_number)
    assert account is not None
    return account


async def test_open_account_gives_a_fresh_active_empty_account(
    session_factory: SessionFactory, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()

    async with AccountService(session_factory) as service:
        account, owner = await service.open_account(
            customer_id=customer.customer_id, account_type="savings", currency="EUR"
        )
        await service.commit()

    assert owner == customer.customer_id
    assert re.fullmatch(r"\d{8}", account.account_number)
    assert (account.status, account.balance, account.currency) == ("active", Decimal("0"), "EUR")
    assert account.customer_id == customer.id


async def test_open_account_takes_one_statement_on_postgresql(
    backend: Backend, session_factory: SessionFactory, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()
    statements = backend.capture()

    async with AccountService(session_factory) as service:
        account, owner = await service.open_account(
            customer_id=customer.customer_id, account_type="current"
        )
        await service.commit()

    verbs = [s.split()[0].upper() for s in statements]
    if backend.name == "postgresql":  # the customer lookup and the number inside the INSERT
        assert verbs == ["INSERT"]
    else:  # no sequences: find the customer, count on, insert
        assert verbs == ["SELECT", "INSERT", "UPDATE", "INSERT"]
    assert owner == customer.customer_id
    stored = await _account(session_factory, account.account_number)
    assert (stored.id, stored.customer_id, stored.balance) == (account.id, customer.id, Decimal(0))
    assert (account.status, account.currency, account.created_at) == (
        "active",
        "GBP",
        stored.created_at,
    )


@pytest.mark.parametrize("deleted", [False, True], ids=["missing", "deleted"])
async def test_open_account_for_an_unknown_or_deleted_customer_is_rejected(
    backend: Backend, session_factory: SessionFactory, make_customer: MakeCustomer, deleted: bool
) -> None:
    customer_id = "CUST-999999"
    if deleted:
        customer_id = (await make_customer()).customer_id
        async with CustomerService(session_factory) as customers:
            await customers.delete_customer(customer_id)
            await customers.commit()
    statements = backend.capture()

    async with AccountService(session_factory) as service:
        with pytest.raises(CustomerNotFound) as caught:
            await service.open_account(customer_id=customer_id, account_type="current")

    assert (caught.value.reason, caught.value.detail) == (
        "customer_not_found",
        f"no customer {customer_id}",
    )
    if backend.name == "postgresql":  # the INSERT inserted nothing; the lookup says why
        assert [s.split()[0].upper() for s in statements] == ["INSERT", "SELECT"]
    async with session_factory() as session:
        assert await AccountRepository(session).count() == 0


async def test_freeze_accounts_freezes_existing_ones_in_a_single_update(
    backend: Backend,
    session_factory: SessionFactory,
    open_account: OpenAccount,
) -> None:
    first, second, untouched = [await open_account() for _ in range(3)]
    statements = backend.capture()

    async with AccountService(session_factory) as service:
        frozen = await service.freeze_accounts(
            [second.account_number, "99999999", first.account_number, first.account_number],
            reason="Suspected fraud",
        )
        await service.commit()

    assert frozen == sorted([first.account_number, second.account_number])
    assert sum(s.lstrip().upper().startswith("UPDATE") for s in statements) == 1
    assert (await _account(session_factory, first.account_number)).status == "frozen"
    assert (await _account(session_factory, untouched.account_number)).status == "active"


async def test_freeze_accounts_of_already_frozen_accounts_freezes_nothing_more(
    session_factory: SessionFactory, open_account: OpenAccount
) -> None:
    account = await open_account()
    for expected in ([account.account_number], []):
        async with AccountService(session_factory) as service:
            frozen = await service.freeze_accounts([account.account_number], reason="Fraud")
            assert frozen == expected
            await service.commit()


async def test_freezing_and_unfreezing_keep_a_history_of_reasons_actors_and_commands(
    session_factory: SessionFactory, open_account: OpenAccount
) -> None:
    account, other = await open_account(), await open_account()
    numbers = [account.account_number, other.account_number]
    changes = [
        ("freeze_accounts", "Suspected fraud", Provenance("agent:1", "m-1"), numbers),
        ("freeze_accounts", "Again", Provenance("agent:2", "m-2"), numbers),  # changes nothing
        ("unfreeze_accounts", "Cleared", Provenance(None, "m-3"), [account.account_number]),
    ]
    for method, reason, by, asked in changes:
        async with AccountService(session_factory) as service:
            await getattr(service, method)(asked, reason=reason, by=by)
            await service.commit()

    async with session_factory() as session:
        history = await AccountRepository(session).status_history(account.account_number)
        others = await AccountRepository(session).status_history(other.account_number)

    assert [(h.status, h.reason, h.actor, h.message_id) for h in history] == [
        ("frozen", "Suspected fraud", "agent:1", "m-1"),
        ("active", "Cleared", None, "m-3"),
    ]
    assert [(h.status, h.message_id) for h in others] == [("frozen", "m-1")]
    assert all(h.changed_at.tzinfo is not None for h in history)


async def test_freeze_accounts_when_none_exist_is_rejected(
    session_factory: SessionFactory, open_account: OpenAccount
) -> None:
    await open_account()

    async with AccountService(session_factory) as service:
        with pytest.raises(AccountsNotFound):
            await service.freeze_accounts(["11111111", "22222222"], reason="Fraud")


async def test_record_transaction_credits_and_debits_with_exact_balances(
    session_factory: SessionFactory, open_account: OpenAccount
) -> None:
    number = (await open_account()).account_number

    first, after_first = await _move(session_factory, number, "credit", "0.10", "r1")
    second, _ = await _move(session_factory, number, "credit", "0.20", "r2")
    debit, after_debit = await _move(session_factory, number, "debit", "0.05", "r3")

    assert first.balance_after == after_first.balance == Decimal("0.10")
    assert second.balance_after == Decimal("0.30")
    assert (debit.direction, debit.amount) == ("debit", Decimal("0.05"))
    assert debit.balance_after == after_debit.balance == Decimal("0.25")
    stored = await _account(session_factory, number)
    assert stored.balance == Decimal("0.25")
    assert isinstance(stored.balance, Decimal)
    async with session_factory() as session:
        assert await ledger_balance(session, stored.id) == Decimal("0.25")
        assert await running_balance_gaps(session, stored.id) == []


async def test_record_transaction_takes_one_statement_on_postgresql(
    backend: Backend, session_factory: SessionFactory, open_account: OpenAccount
) -> None:
    number = (await open_account()).account_number
    await _move(session_factory, number, "credit", "5.00", "in")
    statements = backend.capture()

    transaction, account = await _move(session_factory, number, "debit", "2.00", "out")

    verbs = [s.split()[0].upper() for s in statements]
    if backend.name == "postgresql":  # the insert and the balance update as CTEs
        assert verbs == ["WITH"]
    else:  # money is text: read the account and the reference, insert, set the balance
        assert verbs == ["SELECT", "SELECT", "INSERT", "UPDATE"]
    assert transaction.balance_after == account.balance == Decimal("3.00")
    assert (await _account(session_factory, number)).balance == Decimal("3.00")


async def test_record_transaction_may_take_the_balance_to_exactly_zero(
    session_factory: SessionFactory, open_account: OpenAccount
) -> None:
    number = (await open_account()).account_number
    await _move(session_factory, number, "credit", "12.34", "in")

    _, account = await _move(session_factory, number, "debit", "12.34", "out")

    assert account.balance == Decimal("0.00")


async def test_record_transaction_refuses_a_debit_beyond_the_balance(
    session_factory: SessionFactory, open_account: OpenAccount
) -> None:
    number = (await open_account()).account_number
    await _move(session_factory, number, "credit", "10.00", "in")

    with pytest.raises(InsufficientFunds):
        await _move(session_factory, number, "debit", "10.01", "out")

    account = await _account(session_factory, number)
    assert account.balance == Decimal("10.00")
    async with AccountService(session_factory) as service:
        assert len(await service.recent_transactions(number)) == 1


@pytest.mark.parametrize("status", ["frozen", "closed"])
async def test_record_transaction_on_a_frozen_or_closed_account_is_rejected(
    session_factory: SessionFactory,
    open_account: OpenAccount,
    status: str,
) -> None:
    account = await open_account()
    async with session_factory() as session, session.begin():
        await AccountRepository(session).update(account.id, status=status)

    with pytest.raises(AccountFrozen):
        await _move(session_factory, account.account_number, "credit", "1.00", "r")


async def test_record_transaction_on_an_unknown_account_is_rejected(
    session_factory: SessionFactory,
) -> None:
    with pytest.raises(AccountNotFound):
        await _move(session_factory, "00000000", "credit", "1.00", "r")


async def test_record_transaction_refuses_a_reference_the_account_already_used(
    session_factory: SessionFactory, open_account: OpenAccount
) -> None:
    mine, other = (await open_account()).account_number, (await open_account()).account_number
    await _move(session_factory, mine, "credit", "5.00", "INV-7")

    with pytest.raises(DuplicateReference):
        await _move(session_factory, mine, "credit", "5.00", "INV-7")
    _, account = await _move(session_factory, other, "credit", "5.00", "INV-7")

    assert account.balance == Decimal("5.00")
    assert (await _account(session_factory, mine)).balance == Decimal("5.00")


async def test_recent_transactions_lists_newest_first(
    session_factory: SessionFactory, open_account: OpenAccount
) -> None:
    number = (await open_account()).account_number
    for i in range(4):
        await _move(session_factory, number, "credit", "1.00", f"r{i}")

    async with AccountService(session_factory) as service:
        recent = await service.recent_transactions(number, limit=3)
        # Read-only: leaving the block rolls back and expires what it loaded.
        assert [t.reference for t in recent] == ["r3", "r2", "r1"]
        with pytest.raises(AccountNotFound):
            await service.recent_transactions("00000000")


async def test_customer_accounts_lists_a_customers_accounts(
    session_factory: SessionFactory, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()
    async with AccountService(session_factory) as service:
        opened = [
            (await service.open_account(customer_id=customer.customer_id, account_type=t))[0]
            for t in ("current", "savings")
        ]
        await service.commit()

    async with AccountService(session_factory) as service:
        listed = await service.customer_accounts(customer.customer_id)
        assert {a.account_number for a in listed} == {a.account_number for a in opened}
        with pytest.raises(CustomerNotFound):
            await service.customer_accounts("CUST-999999")


async def test_record_transaction_refuses_to_pass_the_balance_limit_but_reaches_it_exactly(
    session_factory: SessionFactory, open_account: OpenAccount
) -> None:
    number = (await open_account()).account_number
    await _move(session_factory, number, "credit", "999999999999999.00", "in")

    with pytest.raises(BalanceLimitExceeded):
        await _move(session_factory, number, "credit", "1.00", "over")
    _, account = await _move(session_factory, number, "credit", "0.99", "top")

    assert account.balance == Decimal("999999999999999.99")


@pytest.mark.parametrize(
    ("frozen", "amount", "expected"),
    [
        (False, "99.00", DuplicateReference),  # a used reference goes before the balance
        (True, "1.00", AccountFrozen),  # the status goes before the reference
    ],
)
async def test_record_transaction_names_the_first_rule_that_refuses(
    session_factory: SessionFactory,
    open_account: OpenAccount,
    frozen: bool,
    amount: str,
    expected: type[Exception],
) -> None:
    account = await open_account()
    await _move(session_factory, account.account_number, "credit", "5.00", "USED")
    if frozen:
        async with session_factory() as session, session.begin():
            await AccountRepository(session).update(account.id, status="frozen")

    with pytest.raises(expected):
        await _move(session_factory, account.account_number, "debit", amount, "USED")


@pytest.mark.parametrize(
    ("number", "direction", "amount", "reference", "refusal"),
    [
        ("00000000", "credit", "1.00", "new", AccountNotFound),
        (None, "debit", "5.01", "new", InsufficientFunds),
        (None, "credit", "1.00", "USED", DuplicateReference),
    ],
)
async def test_a_refused_transaction_writes_nothing_even_if_the_caller_commits(
    session_factory: SessionFactory,
    open_account: OpenAccount,
    number: str | None,
    direction: str,
    amount: str,
    reference: str,
    refusal: type[Exception],
) -> None:
    account = await open_account()
    await _move(session_factory, account.account_number, "credit", "5.00", "USED")

    async with AccountService(session_factory) as service:
        with pytest.raises(refusal):
            await service.record_transaction(
                account_number=number or account.account_number,
                amount=Decimal(amount),
                direction=direction,
                description="refused",
                reference=reference,
            )
        await service.commit()

    assert (await _account(session_factory, account.account_number)).balance == Decimal("5.00")
    async with AccountService(session_factory) as service:
        assert len(await service.recent_transactions(account.account_number)) == 1


async def test_transactions_in_one_unit_of_work_chain_their_balances_and_keep_loaded_copies_fresh(
    session_factory: SessionFactory, open_account: OpenAccount
) -> None:
    number = (await open_account()).account_number

    async with AccountService(session_factory) as service:
        loaded = await service.accounts.find_by_account_number(number)
        assert loaded is not None
        first, _ = await service.record_transaction(
            account_number=number,
            amount=Decimal("3.00"),
            direction="credit",
            description="a",
            reference="a",
        )
        second, account = await service.record_transaction(
            account_number=number,
            amount=Decimal("1.25"),
            direction="debit",
            description="b",
            reference="b",
        )
        assert await service.accounts.find_by_account_number(number) is loaded
        assert loaded.balance == Decimal("1.75")
        await service.commit()

    assert (first.balance_after, second.balance_after) == (Decimal("3.00"), Decimal("1.75"))
    assert account.balance == Decimal("1.75")
    assert (await _account(session_factory, number)).balance == Decimal("1.75")
