"""Money is Decimal in Python and a JSON string on the wire, never a float."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts import (
    RecordTransactionPayload,
    TransactionRecordedPayload,
    UpsertProductPayload,
    dump_message,
    example_message,
    example_result_payload,
    parse_event,
    parse_message,
)

pytestmark = pytest.mark.unit


def transaction(amount: Any) -> bytes:
    message = example_message("RecordTransaction")
    message["payload"]["amount"] = amount
    return json.dumps(message).encode()


def recorded(amount: Any, balance_after: Any) -> dict[str, Any]:
    return {
        "account_number": "40000001",
        "amount": amount,
        "direction": "credit",
        "reference": "R-1",
        "balance_after": balance_after,
    }


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        ("12.50", Decimal("12.50")),
        ("12.5", Decimal("12.50")),
        ("12", Decimal("12.00")),
        ("0.01", Decimal("0.01")),
        ("0.1", Decimal("0.10")),
        ("999999999999999.99", Decimal("999999999999999.99")),
    ],
)
def test_amount_string_becomes_an_exact_decimal_with_two_places(wire: str, value: Decimal) -> None:
    message = parse_message(transaction(wire))

    amount = message.payload.amount  # type: ignore[union-attr]
    assert isinstance(amount, Decimal)
    assert amount == value
    assert amount.as_tuple() == value.as_tuple()


@pytest.mark.parametrize(
    "wire",
    [
        "0",
        "0.00",
        "-1",
        "-0.01",
        "1.001",
        "1e2",
        "1E+2",
        "NaN",
        "Infinity",
        " 1",
        "1 ",
        "01",
        "+1",
        "1.",
        ".5",
        "",
        "1,00",
        "1_000",
        "1234567890123456",
        "١٢",
    ],
)
def test_malformed_or_non_positive_amount_strings_are_rejected(wire: str) -> None:
    with pytest.raises(ValueError, match=r"payload\.amount"):
        parse_message(transaction(wire))


@pytest.mark.parametrize("number", [12.5, 12, 0.1, 1e2])
def test_json_numbers_are_rejected_because_they_lose_precision(number: Any) -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        parse_message(transaction(number))


def test_decimals_are_serialised_back_as_strings() -> None:
    message = parse_message(transaction("0.10"))

    wire = json.loads(dump_message(message))

    assert wire["payload"]["amount"] == "0.10"
    assert message.model_dump(mode="json")["payload"]["amount"] == "0.10"
    assert message.model_dump()["payload"]["amount"] == Decimal("0.10")


def test_balance_may_be_negative_and_keeps_two_places() -> None:
    payload = TransactionRecordedPayload.model_validate(recorded("5", "-3.1"))

    assert payload.balance_after == Decimal("-3.10")
    assert payload.model_dump(mode="json")["balance_after"] == "-3.10"


def test_negative_zero_balance_is_written_as_zero() -> None:
    payload = TransactionRecordedPayload.model_validate(recorded("5", "-0.00"))

    assert payload.model_dump(mode="json")["balance_after"] == "0.00"


def test_python_code_may_pass_decimals_and_they_are_checked_the_same() -> None:
    payload = RecordTransactionPayload(
        account_number="40000001",
        amount=Decimal("7.1"),
        direction="credit",
        description="Refund",
        reference="R-2",
    )

    assert payload.model_dump(mode="json")["amount"] == "7.10"
    with pytest.raises(ValidationError, match="at most 2 decimal places"):
        RecordTransactionPayload.model_validate(
            {**payload.model_dump(), "amount": Decimal("1.001")}
        )
    with pytest.raises(ValidationError, match="greater than zero"):
        RecordTransactionPayload.model_validate({**payload.model_dump(), "amount": Decimal("0")})
    with pytest.raises(ValidationError, match="finite"):
        RecordTransactionPayload.model_validate({**payload.model_dump(), "amount": Decimal("NaN")})


def test_exponent_decimals_from_python_are_written_without_exponent() -> None:
    payload = TransactionRecordedPayload.model_validate(recorded(Decimal("1E+2"), Decimal("1E+3")))

    dumped = payload.model_dump(mode="json")
    assert (dumped["amount"], dumped["balance_after"]) == ("100.00", "1000.00")


@pytest.mark.parametrize(
    ("wire", "value"),
    [("0", "0"), ("3.25", "3.25"), ("3.2500", "3.2500"), ("100", "100"), ("100.0000", "100.0000")],
)
def test_interest_rate_is_a_percentage_string_up_to_four_places(wire: str, value: str) -> None:
    product = UpsertProductPayload.model_validate_json(
        json.dumps({**example_message("UpsertProduct")["payload"], "interest_rate": wire})
    )

    assert product.interest_rate == Decimal(value)
    assert product.model_dump(mode="json")["interest_rate"] == value


@pytest.mark.parametrize("wire", ["100.01", "101", "-1", "3.25001", "3,25", 3.25])
def test_interest_rate_outside_0_to_100_or_too_precise_is_rejected(wire: Any) -> None:
    with pytest.raises(ValidationError, match="interest_rate"):
        UpsertProductPayload.model_validate_json(
            json.dumps({**example_message("UpsertProduct")["payload"], "interest_rate": wire})
        )


def test_money_in_query_results_is_a_string_too() -> None:
    body = example_message("QueryResult", example_result_payload("ListCustomerAccounts"))
    result = parse_event(json.dumps(body).encode())

    assert json.loads(dump_message(result))["payload"]["items"][0]["balance"] == "1024.00"


@settings(max_examples=300, deadline=None, database=None)
@given(
    cents=st.integers(min_value=1, max_value=10**17 - 1),
    style=st.sampled_from(["full", "short"]),
)
def test_any_positive_two_place_amount_round_trips_exactly(cents: int, style: str) -> None:
    value = Decimal(cents).scaleb(-2)
    wire = format(value, "f") if style == "full" else format(value.normalize(), "f")

    message = parse_message(transaction(wire))

    dumped = json.loads(dump_message(message))["payload"]["amount"]
    assert Decimal(dumped) == value
    assert dumped == format(value, "f")
