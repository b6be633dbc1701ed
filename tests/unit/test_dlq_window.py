"""The replay window: a dead letter's age, and which ones a replay must refuse."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from worker.dlq.model import DeadLetter, parse_dead_letter
from worker.dlq.window import ReplayWindow, age_text
from worker.settings import Settings

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WINDOW = ReplayWindow(14, NOW)


def aged(
    headers: Mapping[str, object], properties: Mapping[str, object] | None = None
) -> DeadLetter:
    """A dead letter with these headers; body and AMQP property carry different ids."""
    body = json.dumps({"message_id": str(uuid.uuid4()), "type": "OpenAccount"}).encode()
    props = {"message_id": uuid.uuid4().hex, **(properties or {})}
    return parse_dead_letter(0, body, headers, props)


def failed(ago: timedelta) -> DeadLetter:
    """A dead letter the worker first failed ``ago`` before ``NOW``."""
    return aged({"fca-first-failed-at": (NOW - ago).isoformat()})


def broker_death(ago: timedelta) -> dict[str, object]:
    """The ``x-death`` header of a broker dead-lettering ``ago`` before ``NOW``."""
    return {"x-death": [{"reason": "delivery_limit", "queue": "q", "time": NOW - ago}]}


def test_a_dead_letter_inside_the_window_may_be_replayed() -> None:
    letter = failed(timedelta(days=13, hours=23))

    assert WINDOW.age(letter) == timedelta(days=13, hours=23)
    assert WINDOW.refusal(letter) is None
    assert WINDOW.describe(letter)["replayable"] is True


def test_a_dead_letter_older_than_the_window_is_refused_with_its_age() -> None:
    letter = failed(timedelta(days=15, hours=6))

    reason = WINDOW.refusal(letter)

    assert reason is not None
    assert "15.2 days ago" in reason
    assert "14-day replay window" in reason
    assert "WORKER_DLQ_REPLAY_WINDOW_DAYS" in reason
    described = WINDOW.describe(letter)
    assert described["replayable"] is False
    assert described["age_days"] == 15.25
    assert described["replayable_until"] == (NOW - timedelta(days=1, hours=6)).isoformat()


def test_the_broker_time_dates_a_broker_dead_letter() -> None:
    assert WINDOW.refusal(aged(broker_death(timedelta(days=20)))) is not None
    assert WINDOW.refusal(aged(broker_death(timedelta(days=2)))) is None


def test_the_first_failure_counts_not_the_last() -> None:
    headers = {
        "fca-first-failed-at": (NOW - timedelta(days=30)).isoformat(),
        "fca-last-failed-at": (NOW - timedelta(days=1)).isoformat(),
    }

    assert WINDOW.refusal(aged(headers)) is not None


def test_the_message_timestamp_dates_a_dead_letter_without_failure_records() -> None:
    old = aged({}, {"timestamp": NOW - timedelta(days=40)})
    recent = aged({}, {"timestamp": NOW - timedelta(days=1)})

    assert WINDOW.refusal(old) is not None
    assert WINDOW.refusal(recent) is None


def test_a_dead_letter_of_unknown_age_is_refused() -> None:
    letter = aged({"fca-first-failed-at": "garbled"})

    reason = WINDOW.refusal(letter)

    assert reason is not None
    assert "age unknown" in reason
    assert WINDOW.describe(letter)["age_days"] is None


def test_a_first_failure_in_the_future_counts_as_no_age() -> None:
    assert WINDOW.age(failed(-timedelta(hours=2))) == timedelta(0)


def test_the_window_comes_from_the_settings() -> None:
    settings = Settings(dlq_replay_window_days=3, inbox_retention_days=5)

    window = ReplayWindow.of(settings, NOW)

    assert (window.days, window.now) == (3, NOW)
    assert window.refusal(failed(timedelta(days=4))) is not None
    assert ReplayWindow.of(settings).now.tzinfo is not None


@pytest.mark.parametrize(
    ("age", "shown"),
    [
        (None, "-"),
        (timedelta(seconds=20), "<1m"),
        (timedelta(minutes=7, seconds=5), "7m"),
        (timedelta(hours=5, minutes=12), "5h 12m"),
        (timedelta(days=3, hours=4, minutes=59), "3d 4h"),
    ],
)
def test_age_text_is_short(age: timedelta | None, shown: str) -> None:
    assert age_text(age) == shown
