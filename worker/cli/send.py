"""``worker send``: publish one command or query with ``fca_client``, optionally await its answer.

The message is checked against the contract first (unknown type, invalid payload, a query
without ``--reply``) and refused with exit code 2 before anything is published, unless
``--raw`` asks to publish it as given (to see how the worker handles bad input).

Exit codes: 0 published (or answered with an event or result), 1 the broker did not take
it, 2 refused locally, 3 answered with ``CommandRejected``, 4 no answer within
``--timeout``, 5 answered with ``CommandDeadLettered``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, NoReturn

import click

from contracts import (
    CommandDeadLettered,
    CommandEnvelope,
    CommandRejected,
    EventEnvelope,
    InvalidMessage,
    QueryEnvelope,
    dump_message,
    parse_message,
)
from fca_client import ClientError, FcaClient, RequestTimeout, new_message_id
from worker.cli.common import load_settings
from worker.settings import Settings

EXIT_REFUSED = 2
EXIT_REJECTED = 3
EXIT_NO_ANSWER = 4
EXIT_DEAD_LETTERED = 5


@click.command()
@click.argument("message_type")
@click.option("--payload", default="{}", help="The payload as a JSON object.")
@click.option("--message-id", default=None, help="Defaults to a fresh UUID.")
@click.option("--correlation-id", default=None)
@click.option("--actor", default=None, help="Who asks, e.g. agent:4711 (the envelope's actor).")
@click.option("--reply", is_flag=True, help="Wait for the outcome and print it.")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait with --reply.")
@click.option("--raw", is_flag=True, help="Publish without checking it against the contract first.")
def send(
    message_type: str,
    payload: str,
    message_id: str | None,
    correlation_id: str | None,
    actor: str | None,
    reply: bool,
    timeout: float,
    raw: bool,
) -> None:
    """Publish a command or query to fca.commands (queries need --reply).

    Exit codes: 2 refused locally (nothing published), 3 rejected, 4 no answer in time,
    5 dead-lettered.
    """
    body = _body(message_type, payload, message_id, correlation_id, actor)
    request = None if raw else _checked(body, reply=reply)
    settings = load_settings()
    try:
        answer = asyncio.run(_send(settings, body, request, reply=reply, timeout=timeout))
    except RequestTimeout as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_NO_ANSWER)
    except ClientError as exc:
        raise click.ClickException(f"could not publish: {exc}") from None
    if answer is None:
        click.echo(json.dumps({"published": body["message_id"]}))
        return
    click.echo(json.dumps(json.loads(dump_message(answer)), indent=2))
    if isinstance(answer, CommandRejected):
        sys.exit(EXIT_REJECTED)
    if isinstance(answer, CommandDeadLettered):
        sys.exit(EXIT_DEAD_LETTERED)


def _body(
    message_type: str,
    payload: str,
    message_id: str | None,
    correlation_id: str | None,
    actor: str | None,
) -> dict[str, Any]:
    """The envelope as the options give it (not validated yet)."""
    try:
        fields = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg}", param_hint="--payload") from None
    body: dict[str, Any] = {
        "message_id": message_id or new_message_id(),
        "type": message_type,
        "payload": fields,
    }
    if correlation_id:
        body["correlation_id"] = correlation_id
    if actor:
        body["actor"] = actor
    return body


def _checked(body: dict[str, Any], *, reply: bool) -> CommandEnvelope | QueryEnvelope:
    """The body as a valid request, or exit 2 with why (never quoting the values)."""
    try:
        request = parse_message(json.dumps(body).encode())
    except InvalidMessage as exc:
        _refuse(f"invalid message: {exc.reason}")
    if isinstance(request, QueryEnvelope) and not reply:
        _refuse(f"{request.type} is a query: its answer comes only with --reply")
    return request


def _refuse(reason: str) -> NoReturn:
    click.echo(f"Error: {reason} (nothing was published; --raw publishes it anyway)", err=True)
    sys.exit(EXIT_REFUSED)


async def _send(
    settings: Settings,
    body: dict[str, Any],
    request: CommandEnvelope | QueryEnvelope | None,
    *,
    reply: bool,
    timeout: float,
) -> EventEnvelope | None:
    """Publish through the client; with ``reply`` return the answer."""
    async with FcaClient(
        settings.amqp_urls, exchange=settings.commands_exchange, name="worker-send"
    ) as client:
        if request is None:
            encoded = json.dumps(body).encode()
            options: dict[str, Any] = {
                "routing_key": str(body["type"]),
                "message_id": str(body["message_id"]),
                "correlation_id": body.get("correlation_id"),
            }
            if reply:
                return await client.request_raw(encoded, timeout=timeout, **options)
            await client.send_raw(encoded, **options)
            return None
        if isinstance(request, QueryEnvelope):  # checked: only with --reply
            return await client.request(request, timeout=timeout)
        if reply:
            return await client.request(request, timeout=timeout)
        await client.send(request)
        return None
