"""The retry policy: attempts per outcome, the delay schedule, jitter, and the attempt header."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.topology import HEADER_ATTEMPTS
from worker.classify import Outcome
from worker.messaging.retry import JITTER, UNEXPECTED_ATTEMPTS, RetryPolicy, attempts_so_far

pytestmark = pytest.mark.unit


def policy(max_attempts: int = 5, delays: tuple[int, ...] = (1, 5, 30)) -> RetryPolicy:
    """A policy like the default settings unless told otherwise."""
    return RetryPolicy(max_attempts, delays)


# --- attempts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "max_attempts", "allowed"),
    [
        (Outcome.TRANSIENT, 5, 5),
        (Outcome.TRANSIENT, 1, 1),
        (Outcome.TRANSIENT, 100, 100),
        (Outcome.UNEXPECTED, 5, UNEXPECTED_ATTEMPTS),
        (Outcome.UNEXPECTED, 2, 2),
        (Outcome.UNEXPECTED, 1, 1),
        (Outcome.INVALID, 5, 1),
        (Outcome.REJECTED, 5, 1),
    ],
)
def test_each_outcome_gets_its_own_number_of_attempts(
    outcome: Outcome, max_attempts: int, allowed: int
) -> None:
    assert policy(max_attempts).attempts_allowed(outcome) == allowed


def test_unexpected_errors_get_a_few_attempts_only() -> None:
    assert 1 < UNEXPECTED_ATTEMPTS <= 5


@pytest.mark.parametrize("outcome", list(Outcome))
@pytest.mark.parametrize("max_attempts", [1, 2, 3, 5, 10])
def test_a_delivery_is_retried_until_its_last_allowed_attempt(
    outcome: Outcome, max_attempts: int
) -> None:
    p = policy(max_attempts)
    allowed = p.attempts_allowed(outcome)
    decisions = [p.should_retry(outcome, attempt) for attempt in range(1, allowed + 3)]
    assert decisions == [True] * (allowed - 1) + [False] * 3


@pytest.mark.parametrize("outcome", [Outcome.INVALID, Outcome.REJECTED])
def test_invalid_messages_and_rejections_are_never_retried(outcome: Outcome) -> None:
    assert not policy(100).should_retry(outcome, 1)


# --- delays -----------------------------------------------------------------------------------


def test_the_delay_follows_the_schedule_then_stays_at_its_last_step() -> None:
    p = policy(10, (1, 5, 30))
    assert [p.delay_for(attempt) for attempt in range(1, 8)] == [1, 5, 30, 30, 30, 30, 30]


def test_a_single_step_schedule_always_waits_that_long() -> None:
    p = policy(5, (7,))
    assert {p.delay_for(attempt) for attempt in range(1, 20)} == {7}


def test_every_retry_of_a_transient_failure_has_a_delay_from_the_schedule() -> None:
    p = policy(5, (1, 5, 30))
    retried = [a for a in range(1, 10) if p.should_retry(Outcome.TRANSIENT, a)]
    assert retried == [1, 2, 3, 4]
    assert {p.delay_for(a) for a in retried} <= set(p.delays)


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
