"""``BaseRepository`` CRUD on every backend, mostly through ``ProductRepository``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import (
    account_data,
    conversation_data,
    customer_data,
    product_data,
    transaction_data,
)
from worker.db.models import Customer, Product
from worker.errors import ConversationExists, DuplicateReference, EmailTaken, UnknownFilterField
from worker.repositories import (
    AccountRepository,
    ConversationRepository,
    CustomerRepository,
    ProductRepository,
    TransactionRepository,
)
from worker.repositories.base import MAX_LIMIT

if TYPE_CHECKING:
    from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration


async def _products(session: AsyncSession, count: int, **overrides: object) -> list[Product]:
    repo = ProductRepository(session)
    return [await repo.create(**product_data(**overrides)) for _ in range(count)]


async def test_create_returns_the_primary_key_and_server_defaults(session: AsyncSession) -> None:
    customer = await CustomerRepository(session).create(**customer_data())
    account = await AccountRepository(session).create(**account_data(customer.id))

    assert isinstance(customer.id, int)
    assert isinstance(customer.created_at, datetime)
    assert customer.created_at.tzinfo is not None
    assert customer.is_vip is False
    assert customer.is_deleted is False
    assert account.balance == Decimal("0.00")
    assert isinstance(account.balance, Decimal)
    assert (account.status, account.currency) == ("active", "GBP")


async def test_create_fetches_server_defaults_in_the_insert_itself(
    backend: Backend, session: AsyncSession
) -> None:
    customer = await CustomerRepository(session).create(**customer_data())
    statements = backend.capture()

    await AccountRepository(session).create(**account_data(customer.id))

    assert len(statements) == 1
    assert statements[0].lstrip().upper().startswith("INSERT")
    assert "RETURNING" in statements[0].upper()


async def test_a_created_row_joins_the_session_as_loaded_and_unchanged(
    backend: Backend, session: AsyncSession
) -> None:
    repo = CustomerRepository(session)
    customer = await repo.create(**customer_data())
    statements = backend.capture()

    assert await repo.get_by_id(customer.id) is customer  # from the identity map
    assert not session.dirty
    assert not session.new
    assert statements == []
    customer.full_name = "Changed Later"  # still tracked: a change is flushed as an UPDATE
    assert session.dirty
    await session.flush()
    assert [s.lstrip().upper().split()[0] for s in statements] == ["UPDATE"]
    session.expunge_all()
    assert (await repo.get_by_id(customer.id)).full_name == "Changed Later"  # type: ignore[union-attr]


async def test_create_rejects_unknown_columns(session: AsyncSession) -> None:
    with pytest.raises(UnknownFilterField):
        await ProductRepository(session).create(**product_data(colour="red"))


async def test_get_by_id_returns_the_row(session: AsyncSession) -> None:
    [product] = await _products(session, 1)

    assert await ProductRepository(session).get_by_id(product.id) is product


async def test_get_by_id_returns_none_when_missing(session: AsyncSession) -> None:
    assert await ProductRepository(session).get_by_id(987_654) is None


async def test_get_all_orders_by_primary_key_and_honours_limit_and_offset(
    session: AsyncSession,
) -> None:
    products = await _products(session, 7)
    repo = ProductRepository(session)

    everything = await repo.get_all()
    page = await repo.get_all(limit=3, offset=2)

    assert [p.id for p in everything] == sorted(p.id for p in products)
    assert [p.id for p in page] == [p.id for p in everything[2:5]]
    assert await repo.get_all(limit=3, offset=7) == []


async def test_get_all_never_returns_more_than_the_hard_maximum(session: AsyncSession) -> None:
    rows = [product_data() for _ in range(MAX_LIMIT + 5)]
    await session.execute(insert(Product), rows)

    page = await ProductRepository(session).get_all(limit=MAX_LIMIT * 10)

    assert len(page) == MAX_LIMIT


async def test_get_by_filters_matches_on_equality(session: AsyncSession) -> None:
    savings = await _products(session, 3, category="savings")
    await _products(session, 2, category="loans")
    await _products(session, 1, category="savings", is_active=False)
    repo = ProductRepository(session)

    found = await repo.get_by_filters(category="savings", is_active=True)

    assert [p.id for p in found] == [p.id for p in savings]
    assert await repo.get_by_filters(category="mortgages") == []


async def test_get_by_filters_honours_the_limit(session: AsyncSession) -> None:
    products = await _products(session, 5, category="cards")

    found = await ProductRepository(session).get_by_filters(limit=2, category="cards")

    assert [p.id for p in found] == [p.id for p in products[:2]]


async def test_get_by_filters_clamps_the_limit_to_the_hard_maximum(session: AsyncSession) -> None:
    await session.execute(insert(Product), [product_data() for _ in range(MAX_LIMIT + 1)])

    found = await ProductRepository(session).get_by_filters(limit=10**6, category="savings")

    assert len(found) == MAX_LIMIT


async def test_get_by_filters_rejects_an_unknown_field(session: AsyncSession) -> None:
    repo = ProductRepository(session)

    with pytest.raises(UnknownFilterField) as caught:
        await repo.get_by_filters(category="savings", metadata=1, __class__=2)

    assert caught.value.fields == ["__class__", "metadata"]


async def test_update_changes_the_row_in_one_round_trip(
    backend: Backend, session: AsyncSession
) -> None:
    [product] = await _products(session, 1, name="Old")
    statements = backend.capture()

    updated = await ProductRepository(session).update(product.id, name="New")

    assert updated is not None
    assert (updated.id, updated.name, updated.code) == (product.id, "New", product.code)
    assert len(statements) == 1
    assert statements[0].lstrip().upper().startswith("UPDATE")


async def test_update_is_visible_to_later_reads(session: AsyncSession) -> None:
    [product] = await _products(session, 1, interest_rate=Decimal("1.0000"))
    repo = ProductRepository(session)

    await repo.update(product.id, interest_rate=Decimal("2.5000"))
    session.expunge_all()

    reloaded = await repo.get_by_id(product.id)
    assert reloaded is not None
    assert reloaded.interest_rate == Decimal("2.5000")


async def test_update_returns_none_for_a_missing_id(session: AsyncSession) -> None:
    assert await ProductRepository(session).update(424_242, name="Nobody") is None


async def test_update_rejects_unknown_columns(session: AsyncSession) -> None:
    [product] = await _products(session, 1)

    with pytest.raises(UnknownFilterField):
        await ProductRepository(session).update(product.id, price=3)


async def test_delete_removes_the_row_and_says_whether_one_matched(session: AsyncSession) -> None:
    [product, other] = await _products(session, 2)
    repo = ProductRepository(session)

    assert await repo.delete(product.id) is True
    assert await repo.delete(product.id) is False
    assert await repo.delete(515_151) is False
    assert [p.id for p in await repo.get_all()] == [other.id]


async def test_count_counts_rows_matching_the_filters(session: AsyncSession) -> None:
    await _products(session, 4, category="savings")
    await _products(session, 2, category="loans", is_active=False)
    repo = ProductRepository(session)

    assert await repo.count() == 6
    assert await repo.count(category="loans") == 2
    assert await repo.count(category="loans", is_active=True) == 0
    with pytest.raises(UnknownFilterField):
        await repo.count(colour="red")


async def test_bulk_update_returns_the_number_of_rows_matched(session: AsyncSession) -> None:
    products = await _products(session, 5, is_active=True)
    repo = ProductRepository(session)
    chosen = [p.id for p in products[:3]]

    matched = await repo.bulk_update([*chosen, 90_001, 90_002], is_active=False)

    assert matched == 3
    assert await repo.count(is_active=False) == 3
    assert await repo.bulk_update([], is_active=False) == 0
    assert await repo.bulk_update([90_003], is_active=False) == 0


async def test_bulk_update_is_a_single_statement(backend: Backend, session: AsyncSession) -> None:
    products = await _products(session, 4)
    statements = backend.capture()

    await ProductRepository(session).bulk_update([p.id for p in products], category="x")

    assert len(statements) == 1


async def test_bulk_update_rejects_unknown_columns(session: AsyncSession) -> None:
    [product] = await _products(session, 1)

    with pytest.raises(UnknownFilterField):
        await ProductRepository(session).bulk_update([product.id], colour="red")


# --- SoftDeleteMixin (customers) ----------------------------------------------------------


async def test_soft_delete_keeps_the_row_but_marks_it_deleted(
    session: AsyncSession, customers: list[Customer]
) -> None:
    repo = CustomerRepository(session)
    target = customers[0]

    assert await repo.delete(target.id) is True

    session.expunge_all()
    row = await session.get(Customer, target.id)
    assert row is not None
    assert row.is_deleted is True


async def test_soft_delete_twice_reports_no_match_the_second_time(
    session: AsyncSession, customers: list[Customer]
) -> None:
    repo = CustomerRepository(session)

    assert await repo.delete(customers[1].id) is True
    assert await repo.delete(customers[1].id) is False
    assert await repo.delete(777_777) is False


async def test_soft_deleted_rows_are_excluded_from_get_all_filters_and_count(
    session: AsyncSession, customers: list[Customer]
) -> None:
    repo = CustomerRepository(session)
    deleted = customers[0]  # a VIP
    await repo.delete(deleted.id)

    listed = await repo.get_all()
    vips = await repo.get_by_filters(is_vip=True)

    assert deleted.id not in [c.id for c in listed]
    assert len(listed) == 9
    assert deleted.id not in [c.id for c in vips]
    assert await repo.get_by_filters(email=deleted.email) == []
    assert await repo.count() == 9
    assert await repo.count(is_vip=True) == sum(c.is_vip for c in customers) - 1


# --- unique violations the contract names ----------------------------------------------------


async def test_create_raises_a_taken_email_as_email_taken(session: AsyncSession) -> None:
    """The race a service's pre-check cannot close: the insert itself must answer."""
    taken = await CustomerRepository(session).create(**customer_data())

    with pytest.raises(EmailTaken) as raised:
        await CustomerRepository(session).create(**customer_data(email=taken.email))

    assert isinstance(raised.value.__cause__, IntegrityError)


async def test_update_raises_a_taken_email_as_email_taken(session: AsyncSession) -> None:
    repo = CustomerRepository(session)
    first, second = await repo.create(**customer_data()), await repo.create(**customer_data())

    with pytest.raises(EmailTaken):
        await repo.update(second.id, email=first.email)


async def test_create_raises_a_reused_reference_as_duplicate_reference(
    session: AsyncSession,
) -> None:
    customer = await CustomerRepository(session).create(**customer_data())
    account = await AccountRepository(session).create(**account_data(customer.id))
    repo = TransactionRepository(session)
    await repo.create(**transaction_data(account.id, reference="INV-1"))

    with pytest.raises(DuplicateReference):
        await repo.create(**transaction_data(account.id, reference="INV-1"))


async def test_create_raises_a_reused_conversation_id_as_conversation_exists(
    session: AsyncSession,
) -> None:
    customer = await CustomerRepository(session).create(**customer_data())
    repo = ConversationRepository(session)
    first = await repo.create(**conversation_data(customer.id))

    with pytest.raises(ConversationExists):
        await repo.create(**conversation_data(customer.id, conversation_id=first.conversation_id))


async def test_other_integrity_errors_are_not_dressed_up_as_rejections(
    session: AsyncSession,
) -> None:
    with pytest.raises(IntegrityError):
        await AccountRepository(session).create(**account_data(999_999))
