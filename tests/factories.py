"""Test-data factories: each returns a fresh, valid row as a dict; override any field.

Values that must be unique (emails, codes, business ids) are random, so factories can be
called any number of times in one test. Timestamps are timezone-aware UTC and whole seconds,
because SQLite keeps second precision.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from worker.repositories import NewEvent

EPOCH = datetime(2024, 1, 1, 9, 0, 0, tzinfo=UTC)
"""A fixed moment that explicit timestamps count from."""

_counter = itertools.count(1)


def _token(n_bytes: int = 4) -> str:
    return secrets.token_hex(n_bytes)


def random_email(domain: str = "example.test") -> str:
    """A lower-case email nobody else uses."""
    return f"user-{_token()}@{domain}"


def moments(
    count: int, *, start: datetime = EPOCH, step: timedelta | None = None
) -> list[datetime]:
    """``count`` increasing UTC timestamps, one minute apart unless ``step`` says otherwise."""
    step = step or timedelta(minutes=1)
    return [start + i * step for i in range(count)]


def customer_data(**overrides: Any) -> dict[str, Any]:
    """A customer row (``customer_id`` is a test-only ``TST-…`` business id)."""
    data: dict[str, Any] = {
        "customer_id": f"TST-{_token()}",
        "email": random_email(),
        "full_name": f"Customer {next(_counter)}",
        "phone": "+44 20 7946 0000",
    }
    return data | overrides


def customer_fields(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``CustomerService.create_customer``."""
    data: dict[str, Any] = {
        "email": random_email(),
        "full_name": f"Customer {next(_counter)}",
        "phone": "+44 20 7946 0001",
    }
    return data | overrides


def account_data(customer_pk: int, **overrides: Any) -> dict[str, Any]:
    """An account row of customer ``customer_pk`` (a random 12-digit number)."""
    data: dict[str, Any] = {
        "account_number": f"{secrets.randbelow(10**12):012d}",
        "customer_id": customer_pk,
        "account_type": "current",
    }
    return data | overrides


def transaction_data(account_pk: int, **overrides: Any) -> dict[str, Any]:
    """A 10.00 credit on account ``account_pk`` with a random reference."""
    data: dict[str, Any] = {
        "account_id": account_pk,
        "amount": Decimal("10.00"),
        "direction": "credit",
        "description": "test transaction",
        "reference": f"REF-{_token()}",
        "balance_after": Decimal("10.00"),
    }
    return data | overrides


def conversation_data(customer_pk: int, **overrides: Any) -> dict[str, Any]:
    """An open chat conversation of customer ``customer_pk`` with a fresh UUID."""
    data: dict[str, Any] = {
        "conversation_id": uuid.uuid4(),
        "customer_id": customer_pk,
        "channel": "chat",
        "subject": f"Question {next(_counter)}",
    }
    return data | overrides


def message_data(conversation_pk: int, sequence: int, **overrides: Any) -> dict[str, Any]:
    """Message number ``sequence`` of conversation ``conversation_pk``."""
    data: dict[str, Any] = {
        "conversation_id": conversation_pk,
        "sequence": sequence,
        "role": "customer",
        "content": f"message {sequence}",
    }
    return data | overrides


def product_data(**overrides: Any) -> dict[str, Any]:
    """An active savings product with a unique code (also ``upsert_product``'s arguments)."""
    data: dict[str, Any] = {
        "code": f"PRD-{_token()}",
        "name": f"Product {next(_counter)}",
        "category": "savings",
        "description": "A test product.",
        "interest_rate": Decimal("4.2500"),
    }
    return data | overrides


def faq_data(**overrides: Any) -> dict[str, Any]:
    """An FAQ row with a unique ``faq_id``."""
    data: dict[str, Any] = {
        "faq_id": f"FAQ-T{_token()}",
        "question": f"How do I do thing {next(_counter)}?",
        "answer": "Like this.",
        "keywords": "thing\nhow to",
        "category": "general",
    }
    return data | overrides


def faq_fields(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``CatalogService.upsert_faq``."""
    data: dict[str, Any] = {
        "question": f"How do I reset my PIN {next(_counter)}?",
        "answer": "In the app, under Cards.",
        "keywords": ["PIN", "  Reset ", "pin"],
        "category": "cards",
    }
    return data | overrides


def new_event(**overrides: Any) -> NewEvent:
    """An outbox event with a unique message id."""
    fields: dict[str, Any] = {
        "message_id": str(uuid.uuid4()),
        "event_type": "CustomerCreated",
        "routing_key": "customer.created",
        "body": '{"ok": true}',
    }
    return NewEvent(**(fields | overrides))
