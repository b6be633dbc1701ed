"""Catalogue commands: products and FAQs."""

from __future__ import annotations

from contracts import (
    FaqUpserted,
    FaqUpsertedPayload,
    ProductUpserted,
    ProductUpsertedPayload,
    RoutedEvent,
    SearchFaq,
    UpsertFaq,
    UpsertProduct,
)
from worker.handlers.registry import HANDLERS, Answer, emit
from worker.services import CatalogService


@HANDLERS.command(UpsertProduct, CatalogService)
async def upsert_product(command: UpsertProduct, service: CatalogService) -> list[RoutedEvent]:
    """Create or replace a product by code."""
    p = command.payload
    product, created = await service.upsert_product(
        code=p.code,
        name=p.name,
        category=p.category,
        description=p.description,
        interest_rate=p.interest_rate,
        is_active=p.is_active,
    )
    payload = ProductUpsertedPayload(
        code=product.code,
        name=product.name,
        category=product.category,
        is_active=product.is_active,
        created=created,
    )
    return [emit(command, ProductUpserted, payload)]


@HANDLERS.command(UpsertFaq, CatalogService)
async def upsert_faq(command: UpsertFaq, service: CatalogService) -> list[RoutedEvent]:
    """Create an FAQ, or replace the one ``faq_id`` names."""
    p = command.payload
    faq = await service.upsert_faq(
        question=p.question,
        answer=p.answer,
        keywords=p.keywords,
        category=p.category,
        faq_id=p.faq_id,
    )
    return [emit(command, FaqUpserted, FaqUpsertedPayload(faq_id=faq.faq_id))]


@HANDLERS.query(SearchFaq, CatalogService)
async def search_faq(query: SearchFaq, service: CatalogService) -> Answer:
    """FAQs matching a keyword."""
    return Answer(await service.search_faq(query.payload.keyword, limit=query.payload.limit))
