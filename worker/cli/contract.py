"""``worker contract``: print the wire contract in machine-readable and browsable forms."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group()
def contract() -> None:
    """Print the wire contract: AsyncAPI, JSON Schema, or an HTML page to browse."""


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


@contract.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the page to FILE (UTF-8) instead of standard output.",
)
def html(output: Path | None) -> None:
    """A self-contained HTML page of the contract, to browse offline.

    Every message with its fields, example, routing key, events, ordering key and rejection
    reasons, the topology and the headers; no script and nothing loaded from elsewhere.
    """
    from contracts.html import render_contract_html

    page = render_contract_html()
    if output is None:
        click.echo(page, nl=False)
        return
    try:
        output.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"wrote {output}", err=True)
