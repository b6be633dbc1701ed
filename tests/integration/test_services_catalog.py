"""``CatalogService`` rules against a real database: product and FAQ upserts, FAQ search."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import insert

from tests.factories import faq_data, faq_fields, product_data
from worker.db.models import FAQ
from worker.db.session import SessionFactory
from worker.errors import FaqNotFound
from worker.repositories import ProductRepository
from worker.services import CatalogService

pytestmark = pytest.mark.integration


async def test_upsert_product_creates_then_replaces_by_code(
    session_factory: SessionFactory,
) -> None:
    fields = product_data(interest_rate=Decimal("3.1000"))
    async with CatalogService(session_factory) as service:
        created, is_new = await service.upsert_product(**fields)
        await service.commit()

    changed = fields | {"name": "Renamed", "interest_rate": None, "is_active": False}
    async with CatalogService(session_factory) as service:
        updated, again_new = await service.upsert_product(**changed)
        await service.commit()

    assert (is_new, again_new) == (True, False)
    assert updated.id == created.id
    assert (updated.name, updated.interest_rate, updated.is_active) == ("Renamed", None, False)
    async with session_factory() as session:
        reloaded = await ProductRepository(session).find_by_code(fields["code"])
    assert reloaded is not None
    assert reloaded.name == "Renamed"


async def test_upsert_faq_creates_one_with_a_fresh_id_and_normalised_keywords(
    session_factory: SessionFactory,
) -> None:
    async with CatalogService(session_factory) as service:
        faq = await service.upsert_faq(**faq_fields(keywords=["PIN", "  Reset  code ", "pin"]))
        await service.commit()

    assert re.fullmatch(r"FAQ-\d{6}", faq.faq_id)
    assert faq.keywords == "pin\nreset code"


async def test_upsert_faq_with_an_id_replaces_that_faq(session_factory: SessionFactory) -> None:
    async with CatalogService(session_factory) as service:
        faq = await service.upsert_faq(**faq_fields())
        await service.commit()

    async with CatalogService(session_factory) as service:
        updated = await service.upsert_faq(
            **faq_fields(question="Changed?", keywords=["New"]), faq_id=faq.faq_id
        )
        await service.commit()

    assert (updated.id, updated.faq_id) == (faq.id, faq.faq_id)
    assert (updated.question, updated.keywords) == ("Changed?", "new")


async def test_upsert_faq_with_an_unknown_id_is_rejected(session_factory: SessionFactory) -> None:
    async with CatalogService(session_factory) as service:
        with pytest.raises(FaqNotFound):
            await service.upsert_faq(**faq_fields(), faq_id="FAQ-999999")


async def test_search_faq_finds_by_keyword_and_caps_the_limit(
    session_factory: SessionFactory,
) -> None:
    async with session_factory() as session, session.begin():
        await session.execute(insert(FAQ), [faq_data(keywords="mortgage") for _ in range(60)])
        await session.execute(insert(FAQ), [faq_data(question="Lost CARD?", keywords="")])

    async with CatalogService(session_factory) as service:
        cards = await service.search_faq("card")
        assert [f.question for f in cards] == ["Lost CARD?"]
        assert len(await service.search_faq("MORTGAGE", limit=500)) == 50
        assert len(await service.search_faq("mortgage", limit=3)) == 3
