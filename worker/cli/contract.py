"""``worker contract``: print the wire contract in machine-readable forms."""

from __future__ import annotations

import json

import click


@click.group()
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
