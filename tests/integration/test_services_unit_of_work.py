"""The unit of work (``BaseService``): commit to keep, anything else rolls back."""

from __future__ import annotations

import pytest

from tests.factories import customer_fields
from worker.db.session import SessionFactory
from worker.repositories import CustomerRepository
from worker.services import CustomerService

pytestmark = pytest.mark.integration


class Boom(Exception):
    """Raised inside a unit of work to abandon it."""


async def _exists(factory: SessionFactory, email: str) -> bool:
    async with factory() as session:
        return await CustomerRepository(session).find_by_email(email) is not None


async def test_rolls_back_uncommitted_work_by_default(session_factory: SessionFactory) -> None:
    fields = customer_fields()

    async with CustomerService(session_factory) as service:
        await service.create_customer(**fields)

    assert not await _exists(session_factory, fields["email"])


async def test_keeps_committed_work(session_factory: SessionFactory) -> None:
    fields = customer_fields()

    async with CustomerService(session_factory) as service:
        await service.create_customer(**fields)
        await service.commit()

    assert await _exists(session_factory, fields["email"])


async def test_rolls_back_when_an_exception_escapes_the_block(
    session_factory: SessionFactory,
) -> None:
    fields = customer_fields()

    async def abandon() -> None:
        async with CustomerService(session_factory) as service:
            await service.create_customer(**fields)
            raise Boom

    with pytest.raises(Boom):
        await abandon()

    assert not await _exists(session_factory, fields["email"])


async def test_closes_the_session_when_leaving_the_block(session_factory: SessionFactory) -> None:
    async with CustomerService(session_factory) as service:
        session = service.session
        await service.create_customer(**customer_fields())

    assert not session.in_transaction()


async def test_a_used_service_cannot_be_entered_again(session_factory: SessionFactory) -> None:
    service = CustomerService(session_factory)
    async with service:
        pass

    with pytest.raises(RuntimeError, match="already in use"):
        async with service:
            pass


async def test_a_service_in_use_cannot_be_entered_twice(session_factory: SessionFactory) -> None:
    async with CustomerService(session_factory) as service:
        with pytest.raises(RuntimeError, match="already in use"):
            await service.__aenter__()


async def test_the_session_is_only_available_inside_the_block(
    session_factory: SessionFactory,
) -> None:
    service = CustomerService(session_factory)

    with pytest.raises(RuntimeError, match="async with"):
        _ = service.session
