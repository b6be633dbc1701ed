"""The event collector fails the test when its consumer dies, instead of answering from a list
that stopped growing (which would make every "no duplicate event" check pass vacuously)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pika.exceptions
import pytest

from testkit.amqp import AmqpClient
from testkit.events import EventCollector, EventCollectorError
from testkit.sandbox import rabbitmqctl_manages, vhost_of
from testkit.services import NO_SERVICE

pytestmark = pytest.mark.integration


def _rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def close_its_connection(collector: EventCollector, amqp_url: str) -> None:
    """The broker closes the collector's connection (found by its client-provided name)."""
    listing = _rabbitmqctl("list_connections", "pid", "client_properties", "--no-table-headers")
    pids = [
        line.split("\t", 1)[0] for line in listing.splitlines() if collector.connection_name in line
    ]
    assert len(pids) == 1, listing
    _rabbitmqctl("close_connection", pids[0], "test: the collector's connection dies")


def delete_its_queue(collector: EventCollector, amqp_url: str) -> None:
    """The broker deletes the collector's queue, which cancels its consumer."""
    _rabbitmqctl("delete_queue", "-p", vhost_of(amqp_url), collector.queue)


Kill = Callable[[EventCollector, str], None]
KILLS: dict[str, tuple[Kill, type[Exception]]] = {
    "connection-closed-by-broker": (close_its_connection, pika.exceptions.ConnectionClosedByBroker),
    "queue-deleted-by-broker": (delete_its_queue, pika.exceptions.ConsumerCancelled),
}


@pytest.fixture
def collector(amqp_url: str, unique_name: Callable[[str], str]) -> Iterator[EventCollector]:
    """A collector on an exchange of its own; closed at teardown unless the test broke it."""
    events = EventCollector(amqp_url, exchange=unique_name("testkit.events"))
    yield events
    if events.failure is None:
        events.close()


def publish(amqp_url: str, exchange: str, routing_key: str) -> None:
    """One message on ``exchange``, confirmed by the broker."""
    with AmqpClient(amqp_url) as client:
        client.publish_raw(exchange, routing_key, b'{"type": "Probe"}')


def raises_collector_error(check: Callable[[], object]) -> bool:
    """Whether ``check()`` raised :class:`EventCollectorError` (anything else propagates)."""
    try:
        check()
    except EventCollectorError:
        return True
    return False


@pytest.mark.parametrize("way", list(KILLS))
def test_every_check_after_the_consumer_died_raises_instead_of_passing(
    way: str, collector: EventCollector, amqp_url: str
) -> None:
    if not rabbitmqctl_manages(amqp_url):
        pytest.skip(f"{NO_SERVICE} a local rabbitmqctl managing the test broker is needed")
    kill, cause = KILLS[way]
    publish(amqp_url, collector.exchange, "before")
    assert [m.routing_key for m in collector.wait_for(timeout=10)] == ["before"]

    killer = threading.Thread(target=kill, args=(collector, amqp_url))
    started = time.monotonic()
    killer.start()
    with pytest.raises(EventCollectorError, match="stopped consuming") as raised:
        collector.wait_for(lambda m: m.routing_key == "never", timeout=60)
    killer.join(60)
    assert time.monotonic() - started < 30, "woken by the failure, not by the timeout"
    assert isinstance(raised.value.__cause__, cause), repr(raised.value.__cause__)
    assert not isinstance(raised.value, AssertionError), "pytest.raises(AssertionError) hides it"

    publish(amqp_url, collector.exchange, "duplicate")  # what the collector can no longer see
    checks: dict[str, Callable[[], object]] = {
        "assert_quiet": lambda: collector.assert_quiet(lambda m: True, quiet=0.5),
        "messages": lambda: collector.messages,
        "events_of_type": lambda: collector.events_of_type("Probe"),
        "caused_by": lambda: collector.caused_by("any-id"),
        "wait_for": lambda: collector.wait_for(timeout=1),
        "wait_caused_by": lambda: collector.wait_caused_by("any-id", timeout=1),
        "clear": collector.clear,
        "close": collector.close,
        "close again": collector.close,
    }
    passed = [name for name, check in checks.items() if not raises_collector_error(check)]
    assert not passed, f"these passed although the collector is dead: {passed}"


def test_a_healthy_collector_closes_quietly_and_keeps_what_it_collected(
    collector: EventCollector, amqp_url: str
) -> None:
    publish(amqp_url, collector.exchange, "one")
    collector.wait_for(timeout=10)

    collector.close()

    assert collector.failure is None
    assert [m.routing_key for m in collector.messages] == ["one"]
