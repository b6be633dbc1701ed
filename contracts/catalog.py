"""The catalogue: products and frequently asked questions, and searching the FAQs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictStr

from contracts.base import (
    CommandEnvelope,
    ContractModel,
    Payload,
    QueryEnvelope,
    ResultPayload,
    RoutedEvent,
)
from contracts.fields import BusinessId, InterestRate, Keyword, multi_line, page_limit, single_line

__all__ = [
    "FaqUpserted",
    "FaqUpsertedPayload",
    "FaqView",
    "ProductUpserted",
    "ProductUpsertedPayload",
    "SearchFaq",
    "SearchFaqPayload",
    "SearchFaqResult",
    "UpsertFaq",
    "UpsertFaqPayload",
    "UpsertProduct",
    "UpsertProductPayload",
]

_FAQ_ID = "FAQ-000007"
_QUESTION = "How do I reset my PIN?"


class FaqView(ContractModel):
    """A frequently asked question."""

    faq_id: BusinessId = Field(description="The FAQ's id.")
    question: StrictStr = Field(description="The question.")
    answer: StrictStr = Field(description="The answer.")
    keywords: tuple[StrictStr, ...] = Field(description="Search keywords.")
    category: StrictStr = Field(description="FAQ category.")


# --- UpsertProduct ----------------------------------------------------------------------------


class ProductUpsertedPayload(Payload):
    """The fields of ProductUpserted."""

    code: BusinessId = Field(description="The product code.")
    name: Annotated[str, single_line(200)] = Field(description="Product name.")
    category: Annotated[str, single_line(100)] = Field(description="Product category.")
    is_active: StrictBool = Field(description="Whether the product is offered.")
    created: StrictBool = Field(description="True if new, false if an existing one was replaced.")


class ProductUpserted(RoutedEvent):
    """A product was created or replaced."""

    routing_key = "product.upserted"
    example = {
        "code": "SAV-EASY",
        "name": "Easy Saver",
        "category": "savings",
        "is_active": True,
        "created": True,
    }
    type: Literal["ProductUpserted"] = "ProductUpserted"
    payload: ProductUpsertedPayload


class UpsertProductPayload(Payload):
    """The fields of UpsertProduct: the whole product, created or replaced by ``code``."""

    code: BusinessId = Field(description="The product code (1..32 chars); the upsert key.")
    name: Annotated[str, single_line(200)] = Field(description="Product name.")
    category: Annotated[str, single_line(100)] = Field(description="Product category.")
    description: Annotated[str, multi_line(5000)] = Field(description="Product description.")
    interest_rate: InterestRate | None = Field(
        default=None, description='Annual rate in percent as a string, e.g. "3.25"; 0..100.'
    )
    is_active: StrictBool = Field(default=True, description="Whether the product is offered.")


class UpsertProduct(CommandEnvelope):
    """Create or replace a product, identified by its code."""

    events = (ProductUpserted,)
    ordering_fields = ("code",)
    rejections = ()
    example = {
        "code": "SAV-EASY",
        "name": "Easy Saver",
        "category": "savings",
        "description": "Instant-access savings.",
        "interest_rate": "3.25",
        "is_active": True,
    }
    type: Literal["UpsertProduct"] = "UpsertProduct"
    payload: UpsertProductPayload


# --- UpsertFaq --------------------------------------------------------------------------------


class FaqUpsertedPayload(Payload):
    """The fields of FaqUpserted."""

    faq_id: BusinessId = Field(description="The FAQ's id (assigned by the worker when new).")


class FaqUpserted(RoutedEvent):
    """An FAQ was created or replaced."""

    routing_key = "faq.upserted"
    example = {"faq_id": _FAQ_ID}
    type: Literal["FaqUpserted"] = "FaqUpserted"
    payload: FaqUpsertedPayload


class UpsertFaqPayload(Payload):
    """The fields of UpsertFaq: without ``faq_id`` a new FAQ, with one a replacement."""

    faq_id: BusinessId | None = Field(
        default=None, description="The FAQ to replace; a new one is created when absent."
    )
    question: Annotated[str, single_line(500)] = Field(description="The question.")
    answer: Annotated[str, multi_line(5000)] = Field(description="The answer.")
    keywords: tuple[Keyword, ...] = Field(
        max_length=50, description="Search keywords (up to 50, each 1..50 chars)."
    )
    category: Annotated[str, single_line(100)] = Field(description="FAQ category.")


class UpsertFaq(CommandEnvelope):
    """Create an FAQ, or replace the one ``faq_id`` names."""

    events = (FaqUpserted,)
    ordering_fields = ("faq_id",)
    rejections = ("faq_not_found",)
    example = {
        "question": _QUESTION,
        "answer": "Use the app: Cards, then Reset PIN.",
        "keywords": ["pin", "card"],
        "category": "cards",
    }
    type: Literal["UpsertFaq"] = "UpsertFaq"
    payload: UpsertFaqPayload


# --- SearchFaq --------------------------------------------------------------------------------


class SearchFaqPayload(Payload):
    """The fields of SearchFaq."""

    keyword: Keyword = Field(description="Matched case-insensitively in questions and keywords.")
    limit: int = page_limit(10, 50)


class SearchFaqResult(ResultPayload):
    """The answer to SearchFaq."""

    example = {
        "items": [
            {
                "faq_id": _FAQ_ID,
                "question": _QUESTION,
                "answer": "Use the app.",
                "keywords": ["pin"],
                "category": "cards",
            }
        ]
    }
    query_type: Literal["SearchFaq"] = Field(description="The query answered.")
    items: tuple[FaqView, ...] = Field(max_length=50, description="Matching FAQs.")


class SearchFaq(QueryEnvelope):
    """Find FAQs whose question or keywords contain a keyword, case-insensitively."""

    result = SearchFaqResult
    rejections = ()
    example = {"keyword": "pin", "limit": 10}
    type: Literal["SearchFaq"] = "SearchFaq"
    payload: SearchFaqPayload
