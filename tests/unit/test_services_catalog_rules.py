"""``CatalogService`` rules and keyword normalisation with repositories mocked (no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.factories import faq_data, faq_fields, product_data
from worker.db.models import FAQ, Product
from worker.errors import FaqNotFound
from worker.services import CatalogService
from worker.services.catalog import join_keywords, split_keywords

pytestmark = pytest.mark.unit

Build = Callable[[type[CatalogService]], Any]


@pytest.mark.parametrize(
    ("keywords", "stored"),
    [
        (["PIN", "  Reset   Code ", "pin", ""], "pin\nreset code"),
        (["b", "a", "B"], "b\na"),
        ([], ""),
        (["   "], ""),
    ],
)
def test_join_keywords_trims_lower_cases_and_deduplicates_in_order(
    keywords: list[str], stored: str
) -> None:
    assert join_keywords(keywords) == stored


def test_split_keywords_reverses_join_keywords() -> None:
    assert split_keywords(join_keywords(["Fees", "overdraft"])) == ["fees", "overdraft"]
    assert split_keywords("") == []


@pytest.fixture
def service(mocked: Build) -> Any:
    """A ``CatalogService`` with mocked repositories."""
    return mocked(CatalogService)


async def test_upsert_faq_with_an_unknown_id_is_rejected(service: Any) -> None:
    service.faqs.find_by_faq_id.return_value = None

    with pytest.raises(FaqNotFound) as caught:
        await service.upsert_faq(**faq_fields(), faq_id="FAQ-404")

    assert caught.value.reason == "faq_not_found"
    service.faqs.update.assert_not_awaited()


async def test_upsert_faq_without_an_id_creates_one_with_a_fresh_id(service: Any) -> None:
    service.faqs.next_faq_id.return_value = "FAQ-000009"
    service.faqs.create.side_effect = lambda **data: FAQ(**data)

    faq = await service.upsert_faq(**faq_fields(keywords=["Card", "card "]))

    assert (faq.faq_id, faq.keywords) == ("FAQ-000009", "card")
    service.faqs.find_by_faq_id.assert_not_awaited()


async def test_upsert_faq_with_a_known_id_updates_that_faq(service: Any) -> None:
    existing = FAQ(**faq_data(id=3, faq_id="FAQ-000003"))
    service.faqs.find_by_faq_id.return_value = existing
    service.faqs.update.return_value = existing

    assert await service.upsert_faq(**faq_fields(), faq_id="FAQ-000003") is existing

    assert service.faqs.update.call_args.args[0] == 3
    service.faqs.create.assert_not_awaited()


async def test_upsert_product_creates_an_unknown_code(service: Any) -> None:
    service.products.find_by_code.return_value = None
    service.products.create.side_effect = lambda **data: Product(**data)
    fields = product_data()

    product, created = await service.upsert_product(**fields)

    assert created is True
    assert product.code == fields["code"]


async def test_upsert_product_replaces_a_known_code(service: Any) -> None:
    existing = Product(**product_data(id=8))
    service.products.find_by_code.return_value = existing
    service.products.update.return_value = existing

    _, created = await service.upsert_product(**product_data(code=existing.code, name="New"))

    assert created is False
    assert service.products.update.call_args.args[0] == 8
    assert service.products.update.call_args.kwargs["name"] == "New"
    service.products.create.assert_not_awaited()


async def test_search_faq_caps_the_limit_at_fifty(service: Any) -> None:
    service.faqs.search_by_keyword.return_value = []

    await service.search_faq("card", limit=500)

    service.faqs.search_by_keyword.assert_awaited_once_with("card", limit=50)
