"""A delivery taken straight from aiormq reads and settles as aio-pika's message would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic
from pamqp.header import ContentHeader

from worker.messaging.consumer import to_delivery
from worker.messaging.incoming import RawDelivery

pytestmark = pytest.mark.unit


@dataclass
class RecordingChannel:
    """Records the acks and nacks sent on it."""

    sent: list[tuple[str, int, bool | None]] = field(default_factory=list)

    async def basic_ack(self, delivery_tag: int) -> None:
        self.sent.append(("ack", delivery_tag, None))

    async def basic_nack(self, delivery_tag: int, requeue: bool = True) -> None:
        self.sent.append(("nack", delivery_tag, requeue))


def delivered(channel: RecordingChannel, **properties: Any) -> DeliveredMessage:
    deliver = Basic.Deliver(
        consumer_tag="ctag", delivery_tag=42, redelivered=True, exchange="x", routing_key="p.3"
    )
    header = ContentHeader(body_size=2, properties=Basic.Properties(**properties))
    return DeliveredMessage(delivery=deliver, header=header, body=b"{}", channel=channel)  # type: ignore[arg-type]


def test_the_consumer_reads_what_the_properties_carry() -> None:
    message = RawDelivery(
        delivered(
            RecordingChannel(),
            headers={"fca-ordering-key": "customer:1", "traceparent": "00-abc"},
            message_id="m-1",
            correlation_id="c-1",
            reply_to="replies",
            content_type="application/json",
            message_type="CreateCustomer",
        )
    )

    delivery = to_delivery(message)

    assert delivery.body == b"{}"
    assert delivery.routing_key == "p.3"
    assert delivery.headers == {"fca-ordering-key": "customer:1", "traceparent": "00-abc"}
    assert (delivery.message_id, delivery.correlation_id, delivery.reply_to) == (
        "m-1",
        "c-1",
        "replies",
    )
    assert (delivery.content_type, delivery.type, delivery.redelivered) == (
        "application/json",
        "CreateCustomer",
        True,
    )


def test_a_message_without_properties_reads_as_empty() -> None:
    delivery = to_delivery(RawDelivery(delivered(RecordingChannel())))

    assert delivery.headers == {}
    assert delivery.message_id is None
    assert delivery.type is None


async def test_it_is_settled_by_its_delivery_tag_on_its_own_channel() -> None:
    channel = RecordingChannel()
    message = RawDelivery(delivered(channel))

    await message.ack()
    await message.nack(requeue=True)
    await message.nack(requeue=False)

    assert channel.sent == [("ack", 42, None), ("nack", 42, True), ("nack", 42, False)]
