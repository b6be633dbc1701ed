"""``worker send``: publish one command or query and optionally wait for its outcome."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aio_pika

from worker.settings import Settings


async def send_message(
    settings: Settings, body: dict[str, Any], *, reply: bool, timeout: float
) -> dict[str, Any] | None:
    """Publish ``body`` to the commands exchange; with ``reply`` return the first answer."""
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value())
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(settings.commands_exchange, ensure=True)
        reply_queue = (
            await channel.declare_queue(exclusive=True, auto_delete=True) if reply else None
        )
        message = aio_pika.Message(
            json.dumps(body).encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=body["message_id"],
            type=body["type"],
            correlation_id=body.get("correlation_id"),
            reply_to=reply_queue.name if reply_queue else None,
        )
        await exchange.publish(message, routing_key=body["type"], mandatory=True)
        if reply_queue is None:
            return None
        async with asyncio.timeout(timeout):
            async with reply_queue.iterator() as replies:
                async for incoming in replies:
                    async with incoming.process():
                        answer: dict[str, Any] = json.loads(incoming.body)
                        return answer
    return None
