"""Every redaction rule, on real exception objects, through the processors the worker uses.

Lines are rendered by the same chain as production (``shared_processors`` for our own lines,
``stdlib_handler`` for the standard library's), to JSON. The driver errors are the drivers'
own classes built the way they build them (``asyncpg``'s ``PostgresError.new`` from the
server's fields; SQLAlchemy's asyncpg adapter and ``DBAPIError.instance``), raised so that
they carry real tracebacks. The property tests plant generated emails, phone numbers and
names wherever the rules promise to catch them and check that none survives.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import string
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

import asyncpg.exceptions
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import (
    AsyncAdapt_asyncpg_connection,
    AsyncAdapt_asyncpg_dbapi,
)

from contracts import body_digest_id, event_id
from contracts.customers import CreateCustomerPayload
from worker.observability.logging import log_uncaught, shared_processors, stdlib_handler
from worker.observability.redaction import MASK, SENSITIVE_KEYS, is_safe_id, pseudonym
from worker.observability.scrubbing import scrub
from worker.observability.tracebacks import describe, format_exception

pytestmark = pytest.mark.unit

NAME = "Alexandra Quinton-Smythe"
EMAIL = "alexandra.qs@example.com"
PHONE = "+44 7700 900461"
STATEMENT = "INSERT INTO customers (customer_id, email, full_name, phone) VALUES ($1, $2, $3, $4)"
DBAPI = AsyncAdapt_asyncpg_dbapi(asyncpg)


# --- rendering a line as the worker does ------------------------------------------------------


def render(**event: Any) -> dict[str, Any]:
    """One of our own lines through the production processors, as the JSON written."""
    processors = [*shared_processors(), structlog.processors.JSONRenderer()]
    result: Any = {"event": "test.line", **event}
    for processor in processors:
        result = processor(None, "error", result)
    return dict(json.loads(result))


def render_stdlib(emit: Callable[[logging.Logger], None]) -> dict[str, Any]:
    """A standard-library record (as aio-pika or SQLAlchemy write one), as the JSON written."""
    stream = io.StringIO()
    logger = logging.getLogger(f"test.redaction.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(stdlib_handler(stream, structlog.processors.JSONRenderer()))
    emit(logger)
    return dict(json.loads(stream.getvalue()))


def raised(exc: BaseException, cause: BaseException | None = None) -> BaseException:
    """``exc`` after being raised (``from cause``): it carries a traceback, as logged ones do."""
    try:
        raise exc from cause
    except BaseException as caught:
        return caught


# --- real driver errors -----------------------------------------------------------------------


def postgres_error(cls: type[Any], message: str, **fields: str) -> BaseException:
    """An asyncpg error built from server fields, as asyncpg builds it (``PostgresError.new``)."""
    codes = {"detail": "D", "hint": "H", "table": "t", "column": "c", "constraint": "n"}
    server = {"C": cls.sqlstate, "M": message, "s": "public"}
    server.update({codes[k]: v for k, v in fields.items()})
    return raised(cls.new(server))


def unique_violation(detail: str = f"Key (full_name)=({NAME}) already exists.") -> BaseException:
    """What PostgreSQL says when a unique index on customers(full_name) is violated."""
    return postgres_error(
        asyncpg.exceptions.UniqueViolationError,
        'duplicate key value violates unique constraint "uq_customers_full_name"',
        detail=detail,
        table="customers",
        constraint="uq_customers_full_name",
    )


def check_violation(row: str) -> BaseException:
    """What PostgreSQL says when a CHECK constraint rejects a row (it echoes the whole row)."""
    return postgres_error(
        asyncpg.exceptions.CheckViolationError,
        'new row for relation "customers" violates check constraint "ck_customers_name"',
        detail=f"Failing row contains ({row}).",
        table="customers",
        constraint="ck_customers_name",
    )


def through_sqlalchemy(driver_error: BaseException, statement: str = STATEMENT) -> BaseException:
    """``driver_error`` as SQLAlchemy raises it: its asyncpg adapter, then a ``DBAPIError``.

    Parameters are *not* hidden here: whatever SQLAlchemy would print, the log must not.
    """
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(DBAPI, driver_error)
    except Exception as adapted:
        wrapper = sa_exc.DBAPIError.instance(
            statement, ("CUST-1", EMAIL, NAME, PHONE), adapted, DBAPI.Error
        )
        return raised(wrapper, adapted)
    raise AssertionError("SQLAlchemy did not translate the driver error")


class Profile(BaseModel):
    """A model that, unlike the contract's, does not hide its input in errors (pydantic's
    default, as in settings or a library's own models)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")]
    full_name: Annotated[str, StringConstraints(max_length=200)]
    is_vip: bool = False


def validation_error(**payload: Any) -> ValidationError:
    """A real pydantic error, input included in its text."""
    try:
        Profile.model_validate(payload)
    except ValidationError as exc:
        return exc
    raise AssertionError(f"{payload} is valid")


def logged(exc: BaseException) -> str:
    """The ``exception`` text of an error line logged with ``exc``."""
    return str(render(exc_info=exc)["exception"])


# --- sensitive keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(SENSITIVE_KEYS))
def test_masks_every_sensitive_key_at_any_depth(key: str) -> None:
    line = render(**{key: "Jane Doe", "nested": {"inner": [{key: "Jane Doe"}]}})
    assert line[key] == MASK
    assert line["nested"] == {"inner": [{key: MASK}]}


def test_masks_a_sensitive_key_whatever_the_type_of_its_value() -> None:
    line = render(phone=7700900461, body=b"{}", payload={"a": 1}, email=None)
    assert line == {**line, "phone": MASK, "body": MASK, "payload": MASK, "email": None}


def test_masks_fields_of_models_and_dataclasses_by_their_keys() -> None:
    @dataclasses.dataclass
    class Delivery:
        body: bytes
        routing_key: str

    model = CreateCustomerPayload(email=EMAIL, full_name=NAME, phone=PHONE)
    line = render(customer=model, delivery=Delivery(b"secret", "command.create"))
    assert line["customer"]["full_name"] == MASK
    assert line["customer"]["email"] == MASK
    assert line["delivery"] == {"body": MASK, "routing_key": "command.create"}


def test_masks_bytes_under_any_key() -> None:
    assert render(raw=b"Jane Doe")["raw"] == MASK


def test_scrubs_the_keys_of_a_mapping() -> None:
    line = render(counts={EMAIL: 1})
    assert line["counts"] == {"[email]": 1}


# --- free text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"mail {EMAIL} now", "mail [email] now"),
        ("o'brien+tag@mail.example.co.uk", "[email]"),
        ("from '@a.as and ''@b.example", "from [email] and [email]"),
        (f"call {PHONE}.", "call [number]."),
        ("call 07700 900461 or (020) 7946 0958", "call [number] or ([number]"),
        ("card 4929 1234 5678 9012", "card [number]"),
        ("postgresql://fca:s3cr3t@db:5432/fca", "postgresql://fca:***@db:5432/fca"),
        ("password=hunter2 token: abc", "password=*** token=***"),
    ],
)
def test_scrubs_personal_shapes_and_secrets_from_free_text(text: str, expected: str) -> None:
    assert render(note=text)["note"] == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-01T06:45:59.933520Z",
        "10.0.0.1:5672",
        "a1b2c3d4-0000-4000-8000-123456789012",
        "took 12.5 ms, 42 rows, 16 partitions",
        "CUST-000000123 ACC-12345678",
        "fca.worker.commands.delay.5s",
    ],
)
def test_leaves_dates_addresses_ids_and_counts_alone(text: str) -> None:
    assert render(note=text)["note"] == text


def test_cuts_a_postgres_detail_and_pydantic_input_value_from_any_text() -> None:
    text = (
        'duplicate key value violates unique constraint "uq"\n'
        f"DETAIL:  Key (full_name)=({NAME}) already exists.\n"
        "HINT:  try another\n"
        f"  Input should be a valid string [type=string_type, input_value='{NAME}', input_type=int]"
    )
    scrubbed = render(error=text)["error"]
    assert NAME not in scrubbed
    assert "DETAIL: [redacted]" in scrubbed
    assert "HINT:  try another" in scrubbed
    assert "input_value=[redacted], input_type=int]" in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        f"Key (full_name)=({NAME}) already exists.",
        f"Failing row contains (1, CUST-1, {NAME}, null).",
    ],
)
def test_cuts_postgres_detail_sentences_even_without_their_label(text: str) -> None:
    assert NAME not in render(error=text)["error"]


# --- ids ----------------------------------------------------------------------------------


OUR_IDS = [
    str(uuid.uuid4()),
    str(uuid.uuid4()).upper(),
    uuid.uuid4().hex,
    event_id(str(uuid.uuid4()), "CustomerCreated"),
    body_digest_id(b"not json"),
]


# Named, not shown: the values are random, and test ids must be the same in every process
# collecting them (pytest-xdist compares them).
@pytest.mark.parametrize("value", OUR_IDS, ids=["uuid", "uuid-upper", "hex", "event-id", "digest"])
@pytest.mark.parametrize("key", ["message_id", "causation_id", "correlation_id"])
def test_keeps_ids_of_a_safe_shape_as_they_are(key: str, value: str) -> None:
    assert is_safe_id(value)
    assert render(**{key: value})[key] == value


@pytest.mark.parametrize(
    "value", ["chat-session-42", f"{NAME} <{EMAIL}>", "07700900461", "1" * 32, "deadbeef"]
)
def test_replaces_a_correlation_id_of_any_other_shape_by_a_stable_keyed_hash(value: str) -> None:
    first, second = render(correlation_id=value), render(correlation_id=value)
    assert first["correlation_id"] == second["correlation_id"] == pseudonym(value)
    assert first["correlation_id"].startswith("hashed:")
    assert value not in json.dumps(first)
    assert pseudonym(value) != pseudonym(value + " ")


def test_applies_the_correlation_rule_at_any_depth_and_to_prefixed_keys() -> None:
    line = render(request={"correlation_id": EMAIL}, original_correlation_id=NAME)
    assert line["request"]["correlation_id"] == pseudonym(EMAIL)
    assert line["original_correlation_id"] == pseudonym(NAME)


def test_keeps_a_message_id_of_another_shape_readable_but_scrubbed() -> None:
    line = render(message_id="order-2026-0042", command_message_id=EMAIL)
    assert line["message_id"] == "order-2026-0042"
    assert line["command_message_id"] == "[email]"


def test_scrubs_the_message_type_a_sender_chose() -> None:
    assert render(type=EMAIL)["type"] == "[email]"


# --- exceptions: asyncpg ----------------------------------------------------------------------


def test_withholds_the_detail_of_a_real_unique_violation() -> None:
    error = unique_violation()
    assert NAME in str(error)  # asyncpg itself puts the DETAIL in its message
    text = logged(error)
    assert NAME not in text
    assert "asyncpg.exceptions.UniqueViolationError: duplicate key value violates unique " in text
    assert '"uq_customers_full_name"' in text
    assert "sqlstate 23505; table customers; constraint uq_customers_full_name" in text
    assert "detail withheld" in text
    assert "Traceback (most recent call last):" in text
    assert "in raised" in text  # frames are kept: where it happened is not personal data


def test_withholds_the_failing_row_of_a_real_check_violation() -> None:
    text = logged(check_violation(f"1, CUST-1, {EMAIL}, {NAME}, {PHONE}, f"))
    for value in (EMAIL, NAME, PHONE):
        assert value not in text
    assert "CheckViolationError" in text
    assert '"ck_customers_name"' in text


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (
            asyncpg.exceptions.InvalidTextRepresentationError,
            f'invalid input syntax for type uuid: "{NAME}"',
        ),
        (asyncpg.exceptions.InvalidTextRepresentationError, f'"{NAME}" is not a valid number'),
        (
            asyncpg.exceptions.DataError,
            f"invalid input for query argument $1: '{NAME}' (expected int)",
        ),
        (asyncpg.exceptions.DataError, f"invalid input for query argument $1: '{NAME[:10]}..."),
        (asyncpg.exceptions.NumericValueOutOfRangeError, f'value "{NAME}" is out of range'),
    ],
)
def test_cuts_a_postgres_message_at_the_first_quoted_value(cls: type[Any], message: str) -> None:
    text = logged(postgres_error(cls, message))
    assert NAME[:10] not in text
    assert f"sqlstate {cls.sqlstate}" in text


def test_withholds_the_whole_message_of_a_trigger_that_raised() -> None:
    text = logged(postgres_error(asyncpg.exceptions.RaiseError, f"customer {NAME} is banned"))
    assert NAME not in text
    assert "RaiseError: [redacted] [sqlstate P0001]" in text


def test_withholds_an_asyncpg_interface_errors_detail() -> None:
    error = raised(asyncpg.exceptions.InterfaceError("cannot do that", detail=f"for {NAME}"))
    text = logged(error)
    assert NAME not in text
    assert "InterfaceError: cannot do that [detail withheld]" in text


# --- exceptions: SQLAlchemy -------------------------------------------------------------------


def test_describes_sqlalchemys_integrity_error_by_the_driver_error_inside() -> None:
    error = through_sqlalchemy(unique_violation())
    assert isinstance(error, sa_exc.IntegrityError)
    assert NAME in str(error)  # SQLAlchemy prints the parameters when not told to hide them
    text = logged(error)
    for value in (NAME, EMAIL, PHONE, "CUST-1"):
        assert value not in text
    assert "sqlalchemy.exc.IntegrityError: (sqlalchemy.dialects.postgresql.asyncpg." in text
    assert f"[SQL: {STATEMENT}]" in text
    assert "The above exception was the direct cause of the following exception" in text
    assert text.count("detail withheld") == 3  # asyncpg's error, the adapter's, the wrapper


def test_keeps_quoted_names_that_the_statement_itself_contains() -> None:
    missing = postgres_error(
        asyncpg.exceptions.UndefinedTableError, 'relation "customers" does not exist'
    )
    text = describe(through_sqlalchemy(missing))
    assert 'relation "customers" does not exist' in text


def test_a_quoted_value_outside_the_statement_is_still_cut() -> None:
    bad = postgres_error(
        asyncpg.exceptions.InvalidTextRepresentationError,
        f'invalid input syntax for type integer: "{NAME}"',
    )
    assert NAME not in describe(through_sqlalchemy(bad))


# --- exceptions: pydantic ---------------------------------------------------------------------


def test_a_pydantic_error_in_a_traceback_shows_locations_and_types_never_input() -> None:
    invalid = validation_error(email=NAME, full_name=NAME, nickname=f"{NAME} {PHONE}")
    assert "input_value" in str(invalid)
    assert NAME in str(invalid)
    text = logged(raised(RuntimeError("could not read the command"), invalid))
    for value in (NAME, PHONE, "nickname"):
        assert value not in text
    assert "2 validation errors for Profile" in text
    assert "email\n  String should match pattern" in text
    assert "[type=string_pattern_mismatch]" in text
    assert f"{MASK}\n  Extra inputs are not permitted [type=extra_forbidden]" in text
    assert "RuntimeError: could not read the command" in text


class Apple(BaseModel):
    kind: Literal["apple"]


class Pear(BaseModel):
    kind: Literal["pear"]


FRUIT: TypeAdapter[Apple | Pear] = TypeAdapter(Annotated[Apple | Pear, Field(discriminator="kind")])


def test_an_input_echoed_inside_a_pydantic_message_is_masked() -> None:
    with pytest.raises(ValidationError) as caught:
        FRUIT.validate_python({"kind": NAME})
    assert NAME in caught.value.errors(include_input=False)[0]["msg"]  # it quotes the tag
    assert NAME not in logged(raised(caught.value))


# --- exceptions: the rest ---------------------------------------------------------------------


def test_an_exception_given_as_a_value_is_described_not_printed() -> None:
    line = render(error=unique_violation(), errors=[check_violation(NAME)])
    assert NAME not in json.dumps(line)
    assert line["error"].startswith("asyncpg.exceptions.UniqueViolationError: duplicate key")


def test_other_exceptions_keep_their_message_scrubbed_and_their_notes() -> None:
    error = KeyError(EMAIL)
    error.add_note(f"while looking up {PHONE}")
    text = logged(raised(error))
    assert "KeyError: '[email]'\nwhile looking up [number]" in text


def test_exception_groups_are_described_member_by_member() -> None:
    group = raised(ExceptionGroup("two failed", [unique_violation(), ValueError(EMAIL)]))
    text = logged(group)
    assert NAME not in text
    assert EMAIL not in text
    assert "ExceptionGroup: two failed (2 sub-exceptions)" in text
    assert "| asyncpg.exceptions.UniqueViolationError" in text
    assert "| ValueError: [email]" in text


def test_a_chain_that_loops_is_printed_once() -> None:
    first, second = ValueError("first"), ValueError("second")
    first.__context__, second.__context__ = second, first
    assert format_exception(first).count("ValueError: first") == 1


def test_a_broken_str_does_not_lose_the_line() -> None:
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert "Broken: <str() failed>" in logged(raised(Broken()))


# --- the standard library's records -----------------------------------------------------------


def test_a_stdlib_record_with_an_exception_argument_and_exc_info_is_redacted() -> None:
    error = through_sqlalchemy(check_violation(f"1, {EMAIL}, {NAME}, {PHONE}"))
    line = render_stdlib(lambda log: log.error("reset failed: %s", error, exc_info=error))
    for value in (NAME, EMAIL, PHONE):
        assert value not in json.dumps(line)
    assert line["event"].startswith("reset failed: sqlalchemy.exc.IntegrityError: (")
    assert "CheckViolationError" in line["exception"]
    assert line["level"] == "error"


def test_a_stdlib_record_whose_text_carries_a_detail_is_cut() -> None:
    line = render_stdlib(lambda log: log.warning("%s", f"DETAIL:  Key (email)=({EMAIL})"))
    assert EMAIL not in line["event"]


def test_an_uncaught_exception_is_logged_through_the_processors() -> None:
    error = unique_violation()
    with structlog.testing.capture_logs() as captured:
        log_uncaught(type(error), error, error.__traceback__)
    assert captured[0]["event"] == "worker.crashed"
    assert captured[0]["log_level"] == "critical"
    assert captured[0]["exc_info"][1] is error


# --- properties -------------------------------------------------------------------------------


LETTERS = st.text(string.ascii_letters + "àéïøßÆ", min_size=3, max_size=12)
names = st.builds(lambda first, last: f"{first} {last}", LETTERS, LETTERS)
phones = st.builds(
    lambda prefix, area, number, sep: f"{prefix}{area}{sep}{number[:3]}{sep}{number[3:]}",
    st.sampled_from(["+44 ", "+44 (0)", "0", "(0", "+44"]),
    st.sampled_from(["7700", "20) 7946", "161", "1632"]),
    st.text("0123456789", min_size=6, max_size=6),
    st.sampled_from([" ", "-", ".", ""]),
)
contacts = st.one_of(st.emails(), phones)
SEPARATORS = st.sampled_from([" ", ", ", "\n", "(", ") ", "=", ": ", "'", '"', "<", "> "])
filler = st.text(string.ascii_letters + string.digits + " _", max_size=20)
keys = st.text(string.ascii_lowercase + "_", min_size=1, max_size=12)


@st.composite
def free_text_with(draw: st.DrawFn, planted: st.SearchStrategy[str]) -> tuple[str, str]:
    """Some text with a generated value somewhere in it, set apart as people write it."""
    value = draw(planted)
    before, after = draw(filler), draw(filler)
    text = f"{before}{draw(SEPARATORS)}{value}{draw(SEPARATORS)}{after}"
    return text, value


@given(free_text_with(contacts), keys, st.integers(0, 3))
def test_an_email_or_phone_in_any_field_at_any_depth_never_survives(
    planted: tuple[str, str], key: str, depth: int
) -> None:
    text, value = planted
    event: Any = text
    for level in range(depth):
        event = {f"level{level}": [event]}
    assert value not in json.dumps(render(**{key: event}), ensure_ascii=False)


@given(free_text_with(st.one_of(contacts, names)), st.sampled_from(sorted(SENSITIVE_KEYS)))
def test_anything_under_a_sensitive_key_never_survives(planted: tuple[str, str], key: str) -> None:
    text, value = planted
    assert value not in json.dumps(render(**{key: text}), ensure_ascii=False)


@given(free_text_with(st.one_of(contacts, names)))
def test_a_correlation_id_never_carries_personal_data_into_the_log(
    planted: tuple[str, str],
) -> None:
    text, value = planted
    assert value not in json.dumps(render(correlation_id=text), ensure_ascii=False)


@settings(max_examples=50)
@given(st.one_of(contacts, names), st.sampled_from(["unique", "check", "wrapped", "value"]))
def test_a_value_in_a_postgres_detail_never_survives_any_route(value: str, route: str) -> None:
    if route == "unique":
        error = unique_violation(f"Key (full_name)=({value}) already exists.")
    elif route == "check":
        error = check_violation(f"1, CUST-1, {value}, null")
    elif route == "wrapped":
        error = through_sqlalchemy(check_violation(f"7, {value}"))
    else:
        error = postgres_error(
            asyncpg.exceptions.InvalidTextRepresentationError,
            f'invalid input syntax for type integer: "{value}"',
        )
    assert value not in json.dumps(render(exc_info=error), ensure_ascii=False)
    assert value not in json.dumps(render(error=error), ensure_ascii=False)
    stdlib = render_stdlib(lambda log: log.error("failed: %s", error, exc_info=error))
    assert value not in json.dumps(stdlib, ensure_ascii=False)


@settings(max_examples=50)
@given(names, st.sampled_from(["full_name", "email", "is_vip", "unknown"]))
def test_a_name_given_to_pydantic_never_survives_its_traceback(value: str, field: str) -> None:
    payload: dict[str, Any] = {"email": "a@b.example", "full_name": "A"}
    if field == "unknown":
        payload[value] = value  # an extra key: both the key and its value are the sender's
    else:
        payload[field] = value if field != "full_name" else value * 40  # too long
    error = raised(RuntimeError("invalid"), validation_error(**payload))
    assert value not in json.dumps(render(exc_info=error), ensure_ascii=False)


def test_scrub_is_idempotent_on_its_own_output() -> None:
    once = scrub(f"DETAIL: {NAME}\n\nmail {EMAIL} {PHONE}")
    assert scrub(once) == once
