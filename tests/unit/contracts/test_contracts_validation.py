"""Field rules of the payloads: required combinations, lengths, strictness, defaults."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import (
    AccountsFrozenPayload,
    CreateCustomer,
    CreateCustomerPayload,
    CustomerChanges,
    FreezeAccountsPayload,
    GetConversationTranscriptPayload,
    GetCustomerPayload,
    ListCustomerConversationsPayload,
    ListEscalatedConversationsPayload,
    ListRecentTransactionsPayload,
    OpenAccountPayload,
    ResolveConversationPayload,
    SearchFaqPayload,
    UpdateCustomerPayload,
    UpsertFaqPayload,
    example_payload,
)

pytestmark = pytest.mark.unit

CONVERSATION = uuid.UUID("0b6f3c52-8a1d-4f0e-9d8a-3f2b7c1e5a90")


def from_json(model: Any, data: dict[str, Any]) -> Any:
    return model.model_validate_json(json.dumps(data))


def test_update_customer_needs_at_least_one_field_to_change() -> None:
    with pytest.raises(ValidationError, match="at least one of"):
        from_json(UpdateCustomerPayload, {"customer_id": "CUST-000001"})


@pytest.mark.parametrize("field", ["email", "full_name", "is_vip"])
def test_update_customer_fields_other_than_phone_may_not_be_null(field: str) -> None:
    with pytest.raises(ValidationError, match=f"{field} may be omitted but not null"):
        from_json(UpdateCustomerPayload, {"customer_id": "CUST-000001", field: None})


def test_update_customer_may_clear_the_phone_with_null() -> None:
    payload = from_json(UpdateCustomerPayload, {"customer_id": "CUST-000001", "phone": None})

    assert payload.phone is None
    assert payload.model_fields_set == {"customer_id", "phone"}


def test_customer_changes_may_be_empty_and_serialise_as_an_empty_object() -> None:
    assert CustomerChanges().model_dump(mode="json") == {}
    assert CustomerChanges(is_vip=True).model_dump(mode="json") == {"is_vip": True}


@pytest.mark.parametrize(
    "targets",
    [{}, {"conversation_id": str(CONVERSATION), "escalation_id": "ESC-000042"}],
    ids=["neither", "both"],
)
def test_resolve_conversation_needs_exactly_one_target(targets: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of conversation_id or escalation_id"):
        from_json(ResolveConversationPayload, {"resolution": "done", **targets})


@pytest.mark.parametrize(
    "key", [{"customer_id": "CUST-000001"}, {"email": "ada@example.com"}], ids=["id", "email"]
)
def test_get_customer_takes_an_id_or_an_email(key: dict[str, str]) -> None:
    assert from_json(GetCustomerPayload, key).model_dump(exclude_none=True) == key


def test_get_customer_rejects_both_keys_or_none() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        from_json(GetCustomerPayload, {})
    with pytest.raises(ValidationError, match="exactly one"):
        from_json(GetCustomerPayload, {"customer_id": "CUST-1", "email": "a@example.com"})


@pytest.mark.parametrize(
    ("model", "fields", "default", "maximum"),
    [
        (SearchFaqPayload, {"keyword": "pin"}, 10, 50),
        (ListCustomerConversationsPayload, {"customer_id": "CUST-000001"}, 50, 100),
        (ListEscalatedConversationsPayload, {}, 100, 200),
        (ListRecentTransactionsPayload, {"account_number": "40000001"}, 20, 100),
        (GetConversationTranscriptPayload, {"conversation_id": str(CONVERSATION)}, 100, 500),
    ],
)
def test_query_limits_have_contract_defaults_and_maximums(
    model: Any, fields: dict[str, Any], default: int, maximum: int
) -> None:
    assert from_json(model, fields).limit == default
    assert from_json(model, {**fields, "limit": maximum}).limit == maximum
    for bad in (0, maximum + 1, -1, 1.0, "5"):
        with pytest.raises(ValidationError):
            from_json(model, {**fields, "limit": bad})


def test_cursor_is_an_opaque_string_of_at_most_512_chars() -> None:
    fields = {"customer_id": "CUST-000001"}
    assert from_json(ListCustomerConversationsPayload, {**fields, "cursor": "a" * 512}).cursor
    for bad in ("a" * 513, "", "has space", 5):
        with pytest.raises(ValidationError, match="cursor"):
            from_json(ListCustomerConversationsPayload, {**fields, "cursor": bad})


def test_create_customer_defaults() -> None:
    payload = from_json(CreateCustomerPayload, {"email": "a@example.com", "full_name": "A"})

    assert (payload.phone, payload.is_vip) == (None, False)


@pytest.mark.parametrize(
    "email",
    [
        "plainaddress",
        "@example.com",
        "a@",
        "a@example",
        "a b@example.com",
        "a@@example.com",
        "a@example..com",
        " a@example.com",
        "a@example.com ",
        "a\x00@example.com",
        f"{'a' * 65}@example.com",
        f"a@{'b' * 250}.com",
    ],
)
def test_implausible_emails_are_rejected(email: str) -> None:
    with pytest.raises(ValidationError, match="email"):
        from_json(CreateCustomerPayload, {"email": email, "full_name": "A"})


@pytest.mark.parametrize(
    "email", ["a@example.com", "first.last+tag@sub.example.co.uk", "zoë@bücher.example"]
)
def test_plausible_emails_are_accepted(email: str) -> None:
    assert from_json(CreateCustomerPayload, {"email": email, "full_name": "A"}).email == email


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("full_name", "x" * 201),
        ("full_name", ""),
        ("full_name", "  "),
        ("phone", "call me"),
        ("phone", "1" * 33),
        ("phone", "12"),
    ],
)
def test_customer_field_lengths_and_shapes_are_checked(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        from_json(CreateCustomerPayload, {"email": "a@example.com", "full_name": "A", field: value})


def test_open_account_currency_defaults_to_gbp_and_must_be_iso_4217() -> None:
    fields = {"customer_id": "CUST-000001", "account_type": "current"}
    assert from_json(OpenAccountPayload, fields).currency == "GBP"
    for bad in ("gbp", "GB", "POUND", 826):
        with pytest.raises(ValidationError, match="currency"):
            from_json(OpenAccountPayload, {**fields, "currency": bad})


def test_freeze_accounts_needs_one_to_a_thousand_numbers_but_the_event_may_list_none() -> None:
    payload = example_payload("FreezeAccounts")

    with pytest.raises(ValidationError, match="at least 1"):
        from_json(FreezeAccountsPayload, {**payload, "account_numbers": []})
    many = from_json(FreezeAccountsPayload, {**payload, "account_numbers": ["1"] * 1000})
    assert len(many.account_numbers) == 1000
    assert AccountsFrozenPayload(account_numbers=()).account_numbers == ()


def test_upsert_faq_keywords_are_bounded() -> None:
    payload = example_payload("UpsertFaq")
    assert from_json(UpsertFaqPayload, {**payload, "keywords": []}).keywords == ()
    with pytest.raises(ValidationError, match="keywords"):
        from_json(UpsertFaqPayload, {**payload, "keywords": ["k"] * 51})
    with pytest.raises(ValidationError, match="keywords"):
        from_json(UpsertFaqPayload, {**payload, "keywords": ["k" * 51]})


def test_multi_line_text_allows_line_breaks_but_not_other_control_characters() -> None:
    payload = {"resolution": "Line one\n\tLine two\r\n", "escalation_id": "ESC-1"}
    assert from_json(ResolveConversationPayload, payload).resolution.startswith("Line one")
    with pytest.raises(ValidationError, match="resolution"):
        from_json(ResolveConversationPayload, {**payload, "resolution": "bell\x07"})


def test_python_construction_is_strict_about_strings_and_bools() -> None:
    with pytest.raises(ValidationError):
        CreateCustomerPayload(email="a@example.com", full_name=5)
    with pytest.raises(ValidationError):
        CreateCustomerPayload(email="a@example.com", full_name="A", is_vip=1)


def test_envelope_type_defaults_to_the_class_and_cannot_be_another() -> None:
    payload = CreateCustomerPayload(email="a@example.com", full_name="A")
    assert CreateCustomer(message_id="m-1", payload=payload).type == "CreateCustomer"
    with pytest.raises(ValidationError, match="type"):
        CreateCustomer(message_id="m-1", type="DeleteCustomer", payload=payload)
