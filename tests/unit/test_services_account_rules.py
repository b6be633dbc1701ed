"""``AccountService`` rules with its repositories mocked (no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.factories import account_data, customer_data, transaction_data
from worker.db.models import Account, Customer, Transaction
from worker.errors import (
    AccountFrozen,
    AccountNotFound,
    AccountsNotFound,
    BalanceLimitExceeded,
    CustomerNotFound,
    DuplicateReference,
    InsufficientFunds,
)
from worker.services import AccountService
from worker.services.accounts import Provenance

pytestmark = pytest.mark.unit

Build = Callable[[type[AccountService]], Any]


@pytest.fixture
def service(mocked: Build) -> Any:
    """An ``AccountService`` with mocked repositories; the one-statement record and open
    write nothing, so ``record_transaction`` and ``open_account`` look up each rule in turn."""
    service = mocked(AccountService)
    service.transactions.record_against_balance.return_value = None
    service.accounts.open_for_live_customer.return_value = None
    return service


@pytest.fixture
def account(service: Any) -> Account:
    """An active account holding 10.00 that the row lock returns."""
    account = Account(
        **account_data(3, id=11, account_number="10000011", balance=Decimal("10.00")),
        status="active",
    )
    service.accounts.lock_by_account_number.return_value = account
    service.transactions.find_by_reference.return_value = None
    service.transactions.create.side_effect = lambda **data: Transaction(id=99, **data)
    service.accounts.set_balance.side_effect = lambda pk, balance: Account(
        **{**account_data(3, id=pk, account_number="10000011"), "balance": balance}
    )
    return account


async def _record(service: Any, direction: str, amount: str, **extra: Any) -> Any:
    return await service.record_transaction(
        account_number="10000011",
        amount=Decimal(amount),
        direction=direction,
        description="test",
        reference=extra.get("reference", "REF-1"),
    )


async def test_record_transaction_credits_with_an_exact_balance(
    service: Any, account: Account
) -> None:
    transaction, updated = await _record(service, "credit", "0.30")

    assert transaction.balance_after == Decimal("10.30")
    assert updated.balance == Decimal("10.30")
    service.accounts.set_balance.assert_awaited_once_with(11, Decimal("10.30"))


async def test_record_transaction_debits_down_to_exactly_zero(
    service: Any, account: Account
) -> None:
    transaction, _ = await _record(service, "debit", "10.00")

    assert transaction.balance_after == Decimal("0.00")
    assert transaction.amount == Decimal("10.00")


async def test_record_transaction_refuses_to_go_below_zero(service: Any, account: Account) -> None:
    with pytest.raises(InsufficientFunds) as caught:
        await _record(service, "debit", "10.01")

    assert caught.value.reason == "insufficient_funds"
    service.transactions.create.assert_not_awaited()
    service.accounts.set_balance.assert_not_awaited()


@pytest.mark.parametrize("status", ["frozen", "closed"])
async def test_record_transaction_on_an_inactive_account_is_rejected(
    service: Any, account: Account, status: str
) -> None:
    account.status = status

    with pytest.raises(AccountFrozen):
        await _record(service, "credit", "1.00")

    service.transactions.create.assert_not_awaited()


async def test_record_transaction_on_an_unknown_account_is_rejected(service: Any) -> None:
    service.accounts.lock_by_account_number.return_value = None

    with pytest.raises(AccountNotFound):
        await _record(service, "credit", "1.00")


async def test_record_transaction_refuses_a_used_reference(service: Any, account: Account) -> None:
    used = Transaction(**transaction_data(account.id, id=5, reference="REF-1"))
    service.transactions.find_by_reference.return_value = used

    with pytest.raises(DuplicateReference):
        await _record(service, "credit", "1.00", reference="REF-1")

    service.transactions.find_by_reference.assert_awaited_once_with(account.id, "REF-1")
    service.transactions.create.assert_not_awaited()


@pytest.mark.parametrize(
    ("direction", "delta"), [("credit", Decimal("2.50")), ("debit", Decimal("-2.50"))]
)
async def test_record_transaction_asks_for_one_record_bounded_by_the_rules_and_nothing_else(
    service: Any, direction: str, delta: Decimal
) -> None:
    recorded = Transaction(
        **transaction_data(11, id=7, reference="REF-1", balance_after=Decimal("12.50"))
    )
    account = Account(**account_data(3, id=11, account_number="10000011", balance=Decimal("12.50")))
    service.transactions.record_against_balance.return_value = (recorded, account)

    transaction, updated = await _record(service, direction, "2.499")

    assert transaction is recorded
    assert updated is account
    service.transactions.record_against_balance.assert_awaited_once_with(
        "10000011",
        amount=Decimal("2.50"),
        direction=direction,
        description="test",
        reference="REF-1",
        delta=delta,
        status="active",
        floor=Decimal("0"),
        ceiling=Decimal("999999999999999.99"),
    )
    service.accounts.lock_by_account_number.assert_not_awaited()  # no lookups when allowed
    service.transactions.find_by_reference.assert_not_awaited()
    service.transactions.create.assert_not_awaited()
    service.accounts.set_balance.assert_not_awaited()  # the record set it


async def test_record_transaction_refuses_a_credit_beyond_the_balance_limit(
    service: Any, account: Account
) -> None:
    account.balance = Decimal("999999999999999.00")

    with pytest.raises(BalanceLimitExceeded):
        await _record(service, "credit", "1.00")

    service.accounts.set_balance.assert_not_awaited()


async def test_record_transaction_checks_the_reference_before_the_balance(
    service: Any, account: Account
) -> None:
    used = Transaction(**transaction_data(account.id, id=5, reference="REF-1"))
    service.transactions.find_by_reference.return_value = used

    with pytest.raises(DuplicateReference):
        await _record(service, "debit", "99.00")


async def test_open_account_takes_one_call_when_it_opens(service: Any) -> None:
    opened = Account(**account_data(4, id=1, account_number="10000077"))
    service.accounts.open_for_live_customer.return_value = opened

    account, owner = await service.open_account(
        customer_id="CUST-000004", account_type="isa", currency="EUR"
    )

    assert (account, owner) == (opened, "CUST-000004")
    service.accounts.open_for_live_customer.assert_awaited_once_with(
        "CUST-000004", account_type="isa", currency="EUR"
    )
    service.customers.find_by_business_id.assert_not_awaited()
    service.accounts.create.assert_not_awaited()


async def test_open_account_for_an_unknown_customer_is_rejected(service: Any) -> None:
    service.customers.find_by_business_id.return_value = None

    with pytest.raises(CustomerNotFound):
        await service.open_account(customer_id="CUST-404", account_type="current")

    service.accounts.create.assert_not_awaited()


async def test_open_account_uses_a_fresh_account_number(service: Any) -> None:
    customer = Customer(**customer_data(id=4, customer_id="CUST-000004"))
    service.customers.find_by_business_id.return_value = customer
    service.accounts.next_account_number.return_value = "10000077"
    service.accounts.create.side_effect = lambda **data: Account(id=1, **data)

    account, owner = await service.open_account(customer_id="CUST-000004", account_type="isa")

    assert (account.account_number, account.customer_id, owner) == ("10000077", 4, "CUST-000004")


async def test_freeze_accounts_freezes_each_distinct_number_once_in_one_call(service: Any) -> None:
    service.accounts.change_status.return_value = ["1", "2"]

    assert await service.freeze_accounts(["2", "1", "2", "9"], reason="Fraud") == ["1", "2"]

    service.accounts.change_status.assert_awaited_once_with(
        ["1", "2", "9"], before="active", after="frozen"
    )
    service.accounts.count_existing.assert_not_awaited()


@pytest.mark.parametrize(
    ("method", "status"), [("freeze_accounts", "frozen"), ("unfreeze_accounts", "active")]
)
async def test_a_status_change_records_its_reason_actor_and_command_for_the_changed_accounts(
    service: Any, method: str, status: str
) -> None:
    service.accounts.change_status.return_value = ["1"]
    by = Provenance(actor="agent:7", message_id="m-1")

    await getattr(service, method)(["1", "2"], reason="Checked", by=by)

    service.accounts.record_status_change.assert_awaited_once_with(
        ["1"], status=status, reason="Checked", actor="agent:7", message_id="m-1"
    )


async def test_freeze_accounts_when_none_exist_is_rejected(service: Any) -> None:
    service.accounts.change_status.return_value = []
    service.accounts.count_existing.return_value = 0

    with pytest.raises(AccountsNotFound) as caught:
        await service.freeze_accounts(["8", "9"], reason="Fraud")

    assert caught.value.reason == "accounts_not_found"


async def test_freeze_accounts_that_are_all_frozen_already_is_not_an_error(service: Any) -> None:
    service.accounts.change_status.return_value = []
    service.accounts.count_existing.return_value = 2

    assert await service.freeze_accounts(["1", "2"], reason="Fraud") == []
