"""Field types shared by every message: identifiers, text, email, money and enumerations.

Every string type is strict (a JSON number is never turned into a string), forbids NUL and
other control characters (PostgreSQL cannot store NUL; headers and logs must stay one line)
and has a maximum length. Money is :class:`~decimal.Decimal` in Python and a JSON *string*
such as ``"12.50"`` on the wire: JSON numbers are rejected because they lose precision.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
    WithJsonSchema,
)

__all__ = [
    "AccountNumber",
    "AccountType",
    "Actor",
    "BusinessId",
    "Channel",
    "ConversationId",
    "ConversationStatus",
    "CorrelationId",
    "Currency",
    "Cursor",
    "Direction",
    "Email",
    "ErrorType",
    "FullName",
    "InterestRate",
    "Keyword",
    "MessageId",
    "Money",
    "Phone",
    "PositiveMoney",
    "Priority",
    "Reference",
    "Role",
    "Timestamp",
    "TypeName",
    "multi_line",
    "page_limit",
    "single_line",
]

# One visible character, no control characters anywhere.
_SINGLE_LINE = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
# Like _SINGLE_LINE, but tabs and line breaks are allowed.
_MULTI_LINE = (
    r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
)
_AMQP_SHORTSTR_BYTES = 255


def single_line(max_length: int, *, min_length: int = 1) -> StringConstraints:
    """Constraints for a strict one-line string of ``min_length..max_length`` chars, not blank."""
    return StringConstraints(
        strict=True, min_length=min_length, max_length=max_length, pattern=_SINGLE_LINE
    )


def multi_line(max_length: int, *, min_length: int = 1) -> StringConstraints:
    """Constraints for a strict string that may span lines, not blank."""
    return StringConstraints(
        strict=True, min_length=min_length, max_length=max_length, pattern=_MULTI_LINE
    )


def page_limit(default: int, maximum: int) -> Any:
    """A page-size field (``limit``) with the given default and maximum."""
    return Field(
        default=default,
        ge=1,
        le=maximum,
        strict=True,
        description=f"Maximum number of items (1..{maximum}, default {default}).",
    )


def _fits_amqp_shortstr(value: str) -> str:
    if len(value.encode("utf-8")) > _AMQP_SHORTSTR_BYTES:
        raise ValueError("must encode to at most 255 UTF-8 bytes (an AMQP short string)")
    return value


MessageId = Annotated[str, single_line(128), AfterValidator(_fits_amqp_shortstr)]
"""A message id: 1..128 chars, not blank, no control characters, fits an AMQP property."""

CorrelationId = MessageId
"""A correlation id: the same shape as a message id (it travels as an AMQP property)."""

Actor = Annotated[str, single_line(128)]
"""Who asked for a command, e.g. ``agent:4711`` or ``chat-agent``: one line, 1..128 chars."""

TypeName = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=128, pattern=r"^[!-~]+$")
]
"""A message type name as read from a body: printable ASCII without spaces, 1..128 chars."""

BusinessId = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"),
]
"""A business identifier (``CUST-000001``, ``ESC-000042``, ``FAQ-000007``, a product code)."""

AccountNumber = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9-]+$")
]
"""An account number: 1..16 letters, digits or hyphens."""

Reference = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=64, pattern=r"^[!-~]+$")
]
"""A transaction reference, unique per account: 1..64 printable ASCII chars, no spaces."""

Cursor = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=512, pattern=r"^[!-~]+$")
]
"""An opaque pagination cursor issued by the worker: 1..512 printable ASCII chars."""

Email = Annotated[
    str,
    Strict(),
    StringConstraints(
        min_length=3,
        max_length=254,
        pattern=r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f.]+(\.[^@\s\x00-\x1f\x7f.]+)+$",
    ),
]
"""An email address (a deliberately simple check: ``local@domain.tld``, at most 254 chars)."""

Currency = Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Z]{3}$")]
"""An ISO 4217 currency code such as ``GBP``."""

Keyword = Annotated[str, single_line(50)]
"""A search keyword or FAQ keyword: one line, 1..50 chars."""

FullName = Annotated[str, single_line(200)]
"""A person's full name: one line, 1..200 chars."""

Phone = Annotated[
    str, Strict(), StringConstraints(max_length=32, pattern=r"^\+?[0-9()][0-9 ().-]{2,31}$")
]
"""A phone number: digits with optional ``+``, spaces, dots, hyphens, parentheses; 3..32 chars."""

Timestamp = Annotated[AwareDatetime, Strict()]
"""A timezone-aware RFC 3339 timestamp (a JSON string; Unix numbers are rejected)."""

ConversationId = UUID
"""A conversation's UUID (a JSON string)."""

AccountType = Literal["current", "savings", "credit_card"]
Channel = Literal["chat", "email", "phone"]
Role = Literal["customer", "agent", "system"]
Priority = Literal["normal", "high", "urgent"]
Direction = Literal["credit", "debit"]
ConversationStatus = Literal["open", "escalated", "resolved", "closed"]


class ErrorType(StrEnum):
    """Why a command was dead-lettered (the ``fca-error-type`` header)."""

    INVALID_MESSAGE = "invalid_message"
    TRANSIENT = "transient"
    UNEXPECTED = "unexpected"


# ---------------------------------------------------------------------------------------------
# Money: Decimal in Python, a JSON string on the wire.

_MONEY = r"^-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,2})?$"
_POSITIVE_MONEY = r"^([1-9][0-9]{0,14}(\.[0-9]{1,2})?|0\.([1-9][0-9]?|0[1-9]))$"
_RATE = r"^(100(\.0{1,4})?|(0|[1-9][0-9]?)(\.[0-9]{1,4})?)$"
_CENT = Decimal("0.01")


def _decimal_from_string(pattern: str, shape: str) -> Any:
    compiled = re.compile(pattern)

    def parse(value: object) -> object:
        if isinstance(value, bool | int | float):
            raise ValueError(f"must be {shape}, not a JSON number (numbers lose precision)")
        if isinstance(value, str):
            if not compiled.fullmatch(value):
                raise ValueError(f"must be {shape}")
            return Decimal(value)
        return value

    return parse


def _check_places(value: Decimal, places: int, int_digits: int) -> None:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -places:
        raise ValueError(f"must have at most {places} decimal places")
    if abs(value) >= Decimal(10) ** int_digits:
        raise ValueError(f"must have at most {int_digits} integer digits")


def _money(value: Decimal) -> Decimal:
    _check_places(value, 2, 15)
    return value.quantize(_CENT) + 0  # "+ 0" turns -0.00 into 0.00


def _positive_money(value: Decimal) -> Decimal:
    value = _money(value)
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


def _rate(value: Decimal) -> Decimal:
    _check_places(value, 4, 3)
    if not Decimal(0) <= value <= Decimal(100):
        raise ValueError("must be between 0 and 100")
    return value


def _plain(value: Decimal) -> str:
    return format(value, "f")


_DIGITS = "at most 15 integer and 2 decimal digits"
_MONEY_SHAPE = f"a decimal string such as '-3.10' ({_DIGITS})"
_POSITIVE_SHAPE = f"a decimal string greater than zero such as '12.50' ({_DIGITS})"
_DECIMAL_SERIALIZER = PlainSerializer(_plain, return_type=str, when_used="json")

Money = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string(_MONEY, _MONEY_SHAPE)),
    AfterValidator(_money),
    _DECIMAL_SERIALIZER,
    WithJsonSchema({"type": "string", "pattern": _MONEY, "examples": ["12.50", "-3.10"]}),
]
"""A signed amount of money with two decimal places, e.g. a balance: ``"-3.10"``."""

PositiveMoney = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string(_POSITIVE_MONEY, _POSITIVE_SHAPE)),
    AfterValidator(_positive_money),
    _DECIMAL_SERIALIZER,
    WithJsonSchema({"type": "string", "pattern": _POSITIVE_MONEY, "examples": ["12.50"]}),
]
"""An amount greater than zero with at most two decimal places: ``"12.50"``."""

InterestRate = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string(_RATE, "a percentage string from '0' to '100'")),
    AfterValidator(_rate),
    _DECIMAL_SERIALIZER,
    WithJsonSchema({"type": "string", "pattern": _RATE, "examples": ["3.25", "0.0500"]}),
]
"""An annual interest rate in percent, 0..100 with at most four decimal places: ``"3.2500"``."""
