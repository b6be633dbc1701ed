"""``worker send``: publish one command or query, and optionally wait for its outcome."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from typing import Any

import aio_pika
import click

from contracts import HEADER_ORDERING_KEY, InvalidMessage, ordering_key, parse_message
from worker.cli.common import load_settings
from worker.settings import Settings


@click.command()
@click.argument("message_type")
@click.option("--payload", default="{}", help="The payload as a JSON object.")
@click.option("--message-id", default=None, help="Defaults to a fresh UUID.")
@click.option("--correlation-id", default=None)
@click.option("--reply", is_flag=True, help="Wait for the outcome and print it.")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait with --reply.")
def send(
    message_type: str,
    payload: str,
    message_id: str | None,
    correlation_id: str | None,
    reply: bool,
    timeout: float,
) -> None:
    """Publish a command or query to fca.commands (queries need --reply)."""
    try:
        body: dict[str, Any] = {
            "message_id": message_id or str(uuid.uuid4()),
            "type": message_type,
            "payload": json.loads(payload),
        }
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg}", param_hint="--payload") from None
    if correlation_id:
        body["correlation_id"] = correlation_id
    settings = load_settings()
    try:
        answer = asyncio.run(send_message(settings, body, reply=reply, timeout=timeout))
    except TimeoutError:
        click.echo(
            f"no answer within {timeout:g}s (is a worker running? a message id it has "
            "already handled is acked without an answer)",
            err=True,
        )
        sys.exit(4)
    except Exception as exc:
        raise click.ClickException(f"could not publish: {type(exc).__name__}: {exc}") from None
    if answer is None:
        click.echo(json.dumps({"published": body["message_id"]}))
        return
    click.echo(json.dumps(answer, indent=2))
    if answer.get("type") == "CommandRejected":
        sys.exit(3)


async def send_message(
    settings: Settings, body: dict[str, Any], *, reply: bool, timeout: float
) -> dict[str, Any] | None:
    """Publish ``body`` to the commands exchange; with ``reply`` return the first answer."""
    connection = await aio_pika.connect(settings.amqp_urls[0])
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(settings.commands_exchange, ensure=True)
        reply_queue = (
            await channel.declare_queue(exclusive=True, auto_delete=True) if reply else None
        )
        encoded = json.dumps(body).encode()
        headers: dict[str, Any] = {}
        with contextlib.suppress(InvalidMessage):  # the worker will dead-letter it, keyless
            headers[HEADER_ORDERING_KEY] = ordering_key(parse_message(encoded))
        message = aio_pika.Message(
            encoded,
            headers=headers,
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
