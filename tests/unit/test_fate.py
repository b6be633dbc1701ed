"""A delivery's fate: one decision for every failure, the limits, the back-off and the header."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.fields import ErrorType
from contracts.topology import HEADER_ATTEMPTS
from tests.unit.test_errors import OURS, TRANSIENT, UNEXPECTED
from worker.errors import DomainError, TransientError
from worker.messaging.fate import (
    JITTER,
    UNEXPECTED_ATTEMPTS,
    Ack,
    DeadLetter,
    Retry,
    RetryPolicy,
    attempts_so_far,
    classify,
    outcome_of,
)

pytestmark = pytest.mark.unit


def policy(max_attempts: int = 5, delays: tuple[int, ...] = (1, 5, 30)) -> RetryPolicy:
    """A policy like the default settings unless told otherwise."""
    return RetryPolicy(max_attempts, delays)


# --- one decision for every failure -----------------------------------------------------------


def _values(params: list[Any]) -> list[BaseException]:
    return [param.values[0] for param in params]


EVERY_FAILURE = [
    *((e, ErrorType.TRANSIENT) for e in _values(TRANSIENT)),
    *((e, ErrorType.TRANSIENT) for e in _values(OURS) if isinstance(e, TransientError)),
    *((e, ErrorType.UNEXPECTED) for e in _values(UNEXPECTED)),
    *((e, ErrorType.UNEXPECTED) for e in _values(OURS) if isinstance(e, DomainError)),
]


@pytest.mark.parametrize(("error", "error_type"), EVERY_FAILURE, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6, 50])
def test_every_failure_we_can_meet_gets_exactly_one_decision(
    error: BaseException, error_type: ErrorType, attempt: int
) -> None:
    p = policy(5)
    decision = p.after_failure(error, attempt)

    assert decision.failure.error_type is error_type
    assert decision.failure.attempt == attempt
    allowed = 5 if error_type is ErrorType.TRANSIENT else UNEXPECTED_ATTEMPTS
    if attempt < allowed:
        assert isinstance(decision, Retry)
        assert decision.delay == p.delay_for(attempt)
    else:
        assert isinstance(decision, DeadLetter)


def test_the_table_covers_every_kind_of_failure() -> None:
    kinds = {error_type for _, error_type in EVERY_FAILURE}
    assert kinds == {ErrorType.TRANSIENT, ErrorType.UNEXPECTED}
    assert len(EVERY_FAILURE) > 50


@pytest.mark.parametrize("error", [p for p in OURS if isinstance(p.values[0], DomainError)])
def test_a_rejection_that_escapes_the_bus_is_a_bug_not_an_answer(error: DomainError) -> None:
    assert classify(error) is ErrorType.UNEXPECTED


def test_the_failure_message_names_the_class_and_never_the_message() -> None:
    error = ValueError("ada@example.com is not allowed")
    decision = policy().after_failure(error, 1)
    assert decision.failure.message == "unexpected: ValueError"


def test_an_invalid_message_is_dead_lettered_at_once_with_its_reason() -> None:
    decision = policy(100).invalid("payload.email: Field required", 1)
    assert isinstance(decision, DeadLetter)
    assert decision.failure.error_type is ErrorType.INVALID_MESSAGE
    assert decision.failure.message == "payload.email: Field required"


@pytest.mark.parametrize("outcome", ["applied", "duplicate", "rejected", "answered"])
def test_an_answer_is_logged_under_its_own_outcome(outcome: str) -> None:
    assert outcome_of(Ack(outcome)) == outcome  # type: ignore[arg-type]


def test_a_failure_is_logged_under_its_error_type() -> None:
    assert outcome_of(policy().after_failure(TimeoutError(), 1)) == "transient"
    assert outcome_of(policy().invalid("x", 1)) == "invalid_message"


# --- attempts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "max_attempts", "allowed"),
    [
        (ErrorType.TRANSIENT, 5, 5),
        (ErrorType.TRANSIENT, 1, 1),
        (ErrorType.TRANSIENT, 100, 100),
        (ErrorType.UNEXPECTED, 5, UNEXPECTED_ATTEMPTS),
        (ErrorType.UNEXPECTED, 2, 2),
        (ErrorType.UNEXPECTED, 1, 1),
        (ErrorType.INVALID_MESSAGE, 5, 1),
    ],
)
def test_each_error_type_gets_its_own_number_of_attempts(
    error_type: ErrorType, max_attempts: int, allowed: int
) -> None:
    assert policy(max_attempts).attempts_allowed(error_type) == allowed


@pytest.mark.parametrize(
    ("error", "error_type"),
    [(TimeoutError(), ErrorType.TRANSIENT), (RuntimeError("bug"), ErrorType.UNEXPECTED)],
)
@pytest.mark.parametrize("max_attempts", [1, 2, 3, 5, 10])
def test_a_delivery_is_retried_until_its_last_allowed_attempt(
    error: BaseException, error_type: ErrorType, max_attempts: int
) -> None:
    p = policy(max_attempts)
    allowed = p.attempts_allowed(error_type)
    retried = [isinstance(p.after_failure(error, a), Retry) for a in range(1, allowed + 3)]
    assert retried == [True] * (allowed - 1) + [False] * 3


# --- delays -----------------------------------------------------------------------------------


def test_the_delay_follows_the_schedule_then_stays_at_its_last_step() -> None:
    p = policy(10, (1, 5, 30))
    assert [p.delay_for(attempt) for attempt in range(1, 8)] == [1, 5, 30, 30, 30, 30, 30]


def test_a_single_step_schedule_always_waits_that_long() -> None:
    p = policy(5, (7,))
    assert {p.delay_for(attempt) for attempt in range(1, 20)} == {7}


def test_every_retry_of_a_transient_failure_has_a_delay_from_the_schedule() -> None:
    p = policy(5, (1, 5, 30))
    decisions = [p.after_failure(TimeoutError(), a) for a in range(1, 10)]
    retries = [d for d in decisions if isinstance(d, Retry)]
    assert [d.failure.attempt for d in retries] == [1, 2, 3, 4]
    assert {d.delay for d in retries} <= set(p.delays)


# --- jitter -----------------------------------------------------------------------------------


@given(
    delay=st.integers(min_value=1, max_value=24 * 3600),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_the_expiration_is_the_delay_within_ten_percent(delay: int, seed: int) -> None:
    expiration = policy().expiration_ms(delay, random.Random(seed))
    assert delay * 1000 * (1 - JITTER) - 1 <= expiration <= delay * 1000 * (1 + JITTER) + 1


@given(
    delay=st.integers(min_value=1, max_value=24 * 3600),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_the_expiration_never_exceeds_the_delay_queues_ttl_cap(delay: int, seed: int) -> None:
    """The retry queue's x-message-ttl (topology.declare) must not cut a jittered wait short."""
    cap = math.ceil(delay * 1000 * (1 + JITTER))
    assert 1 <= policy().expiration_ms(delay, random.Random(seed)) <= cap


def test_the_expiration_is_reproducible_with_a_seeded_random() -> None:
    first = [policy().expiration_ms(30, random.Random(42)) for _ in range(3)]
    assert len(set(first)) == 1


def test_jitter_spreads_failures_that_happen_together() -> None:
    rng = random.Random(7)
    expirations = {policy().expiration_ms(30, rng) for _ in range(200)}
    assert len(expirations) > 50
    assert min(expirations) < 29_000
    assert max(expirations) > 31_000


def test_the_expiration_works_without_a_random_of_our_own() -> None:
    assert 900 <= policy().expiration_ms(1) <= 1100


# --- the attempt header -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, 0, id="missing"),
        pytest.param({HEADER_ATTEMPTS: 2}, 2, id="int"),
        pytest.param({HEADER_ATTEMPTS: 0}, 0, id="zero"),
        pytest.param({HEADER_ATTEMPTS: b"3"}, 3, id="bytes"),
        pytest.param({HEADER_ATTEMPTS: "4"}, 4, id="str"),
        pytest.param({HEADER_ATTEMPTS: " 5 "}, 5, id="str-with-spaces"),
        pytest.param({HEADER_ATTEMPTS: "-2"}, 0, id="negative"),
        pytest.param({HEADER_ATTEMPTS: "three"}, 0, id="garbage"),
        pytest.param({HEADER_ATTEMPTS: b"\xff\xfe"}, 0, id="undecodable-bytes"),
        pytest.param({HEADER_ATTEMPTS: ""}, 0, id="empty"),
        pytest.param({HEADER_ATTEMPTS: None}, 0, id="none"),
        pytest.param({HEADER_ATTEMPTS: [1, 2]}, 0, id="list"),
        pytest.param({HEADER_ATTEMPTS: {"n": 1}}, 0, id="table"),
        pytest.param({"x-delivery-count": 7}, 0, id="broker-header-ignored"),
        pytest.param({"x-death": [{"count": 9}]}, 0, id="x-death-ignored"),
    ],
)
def test_attempts_so_far_reads_our_own_header_and_tolerates_garbage(
    headers: dict[str, object], expected: int
) -> None:
    assert attempts_so_far(headers) == expected


@given(st.dictionaries(st.text(max_size=20), st.from_type(object), max_size=5))
def test_attempts_so_far_never_raises(headers: dict[str, object]) -> None:
    assert attempts_so_far(headers) >= 0


@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True),
        st.text(),
        st.binary(),
        st.lists(st.integers(), max_size=3),
    )
)
def test_attempts_so_far_never_raises_on_any_header_value(value: object) -> None:
    assert attempts_so_far({HEADER_ATTEMPTS: value}) >= 0


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("1" + "0" * 20, id="str-1e20"),
        pytest.param(10**20, id="int-1e20"),
        pytest.param(str(2**63), id="str-2**63"),
        pytest.param(b"9" * 30, id="bytes-30-nines"),
    ],
)
def test_an_absurd_attempt_header_still_yields_a_count_the_broker_can_carry(value: object) -> None:
    """The next attempt number goes back into ``fca-attempts``: an AMQP table integer is at
    most a signed 64-bit value, so a larger count could never be republished."""
    assert 0 <= attempts_so_far({HEADER_ATTEMPTS: value}) + 1 < 2**63
