"""The ``worker`` command line: run, db upgrade, send, contract."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

import click
from pydantic import ValidationError

from worker.dlq.cli import dlq
from worker.settings import Settings


def load_settings() -> Settings:
    """Settings from the environment, or one clear line naming the bad setting."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"WORKER_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors(include_input=False)
        )
        raise click.ClickException(f"invalid settings: {problems}") from None


@click.group()
def main() -> None:
    """fca-worker: applies commands from RabbitMQ and publishes their events."""


@main.command()
def run() -> None:
    """Consume commands until SIGTERM/SIGINT (a second signal exits at once)."""
    from worker.observability.logging import configure_logging
    from worker.runner import run_worker

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.event_loop == "uvloop":
        import uvloop

        sys.exit(uvloop.run(run_worker(settings)))
    sys.exit(asyncio.run(run_worker(settings)))


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command()
def upgrade() -> None:
    """Apply every migration (creates the schema on an empty database)."""
    from worker.db.migrate import upgrade as upgrade_schema
    from worker.observability.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        upgrade_schema(settings.database_url.get_secret_value())
    except Exception as exc:
        raise click.ClickException(f"migration failed: {type(exc).__name__}") from None
    click.echo("database is up to date", err=True)


@main.command()
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
    from worker.sender import send_message

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


@main.group()
def contract() -> None:
    """Print the wire contract."""


@contract.command()
def asyncapi() -> None:
    """The AsyncAPI 3.0 document of every channel and message."""
    from contracts.schema import asyncapi_document

    click.echo(json.dumps(asyncapi_document(), indent=2))


@contract.command()
def jsonschema() -> None:
    """The JSON Schema of every message type."""
    from contracts.schema import json_schemas

    click.echo(json.dumps(json_schemas(), indent=2))


main.add_command(dlq)
